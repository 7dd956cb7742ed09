"""Contrastive losses: SimCLR's NT-Xent and MoCo's InfoNCE with a queue of negatives."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from minissl import distributed


def _check(temperature: float, *pairs: tuple[str, torch.Tensor]) -> None:
    if not 0 < temperature < float("inf"):
        raise ValueError(f"temperature must be > 0 (it divides the logits); got {temperature}")
    (name0, a), *rest = pairs
    if a.dim() != 2:
        raise ValueError(f"{name0} must be (N, D); got shape {tuple(a.shape)}")
    if not a.is_floating_point():
        raise TypeError(f"{name0} must be a floating-point tensor; got dtype {a.dtype}")
    if a.shape[0] == 0:
        raise ValueError(f"{name0} is empty (shape {tuple(a.shape)}); the loss needs a batch")
    for name, b in rest:
        if b.shape != a.shape:
            raise ValueError(
                f"{name0} and {name} must have the same shape (N, D); "
                f"got {tuple(a.shape)} and {tuple(b.shape)}"
            )


def _nt_xent_logits(z1: torch.Tensor, z2: torch.Tensor, temperature: float):
    """Logits (2n, 2N) of this rank's 2n anchors against all 2N views, and the positives' index."""
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)  # (2n, D) this rank's views, unit length
    # Candidates come from every rank (negatives from the global batch); the local slice keeps
    # its gradient. Without a process group this is just z1, z2.
    z1_all = distributed.gather_with_grad(z[:n])  # (N, D), N = world * n
    z2_all = distributed.gather_with_grad(z[n:])  # (N, D)
    cand = torch.cat([z1_all, z2_all])  # (2N, D) rows 0..N-1 first views, N..2N-1 second views
    big_n = z1_all.shape[0]
    logits = z @ cand.T / temperature  # (2n, 2N) cosine similarities / tau
    # Where this rank's anchors sit among the 2N candidates.
    own = distributed.rank() * n + torch.arange(n, device=z.device)  # (n,)
    self_idx = torch.cat([own, own + big_n])  # (2n,) each anchor itself
    pos_idx = torch.cat([own + big_n, own])  # (2n,) each anchor's partner view
    rows = torch.arange(2 * n, device=z.device)
    # sim(z_i, z_i) = 1 is never a candidate: eq. 1 sums over k != i.
    logits[rows, self_idx] = float("-inf")
    return logits, pos_idx


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """SimCLR's normalized temperature-scaled cross-entropy (NT-Xent) over 2N views.

    Chen, Kornblith, Norouzi and Hinton, "A Simple Framework for Contrastive Learning of
    Visual Representations", 2020, arXiv:2002.05709, eq. 1:
    ``l(i, j) = -log exp(sim(z_i, z_j) / tau) / sum_{k != i} exp(sim(z_i, z_k) / tau)``
    with ``sim`` the cosine similarity. Every one of the 2N views is an anchor; its positive
    is the other view of the same image and the remaining 2N - 2 views are its negatives. The
    loss is the mean over all 2N anchors ("computed across all positive pairs, both (i, j)
    and (j, i)").

    Under ``torchrun`` the candidates are gathered from every process (gradient kept for the
    local part, see :func:`minissl.distributed.gather_with_grad`), so negatives come from the
    global batch while each process averages over its own anchors.

    Args:
        z1: (N, D) embeddings of the first views; need not be normalized.
        z2: (N, D) embeddings of the second views; row i is the partner of ``z1[i]``.
        temperature: tau > 0; smaller values weigh the hardest negatives more.

    Returns:
        A scalar tensor.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> z = torch.randn(4, 8)
        >>> nt_xent(z, z + 0.01 * torch.randn(4, 8)) < nt_xent(z, torch.randn(4, 8))
        tensor(True)
    """
    _check(temperature, ("z1", z1), ("z2", z2))
    if z1.shape[0] * distributed.world_size() < 2:
        # The other images of the batch are each view's negatives; with one image there are
        # none and the loss would be a constant 0.
        raise ValueError(f"nt_xent needs at least 2 pairs (z1, z2 of shape (N, D) with N >= 2); "
                         f"got N={z1.shape[0]}")
    logits, pos = _nt_xent_logits(z1, z2, temperature)  # (2n, 2N), (2n,)
    return F.cross_entropy(logits, pos)


@torch.no_grad()
def nt_xent_accuracy(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """How often a view's partner is its most similar of the other 2N - 1 views (for logging).

    Args:
        z1, z2: (N, D) embeddings of the two views.

    Returns:
        A 0-d float tensor in [0, 1].

    Example:
        >>> z = torch.eye(3)
        >>> nt_xent_accuracy(z, z)
        tensor(1.)
    """
    logits, pos = _nt_xent_logits(z1, z2, 1.0)
    return (logits.argmax(dim=1) == pos).float().mean()


def info_nce(
    q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, temperature: float = 0.2
) -> torch.Tensor:
    """MoCo's InfoNCE loss: each query against its key (positive) and a queue of negatives.

    He, Fan, Wu, Xie and Girshick, "Momentum Contrast for Unsupervised Visual Representation
    Learning", 2020, arXiv:1911.05722, eq. 1:
    ``L_q = -log exp(q.k+ / tau) / (exp(q.k+ / tau) + sum_i exp(q.k_i / tau))``, computed as
    a (K+1)-way cross-entropy with the positive at index 0. ``tau = 0.2`` is MoCo v2's value
    (Chen, Fan, Girshick and He, "Improved Baselines with Momentum Contrastive Learning",
    2020, arXiv:2003.04297).

    ``q`` and ``k`` are normalized here. ``k`` and ``queue`` are detached: the keys come from
    the momentum encoder, which is updated by EMA, never by back-propagation ("no gradient
    ... to the key encoder", Algorithm 1), so only ``q`` receives a gradient.

    Args:
        q: (N, D) queries (query encoder + head).
        k: (N, D) keys of the same images under other views; row i is the positive of q[i].
        queue: (K, D) keys of earlier batches, already normalized.
        temperature: tau > 0.

    Returns:
        A scalar tensor, the mean over the N queries.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> q, queue = torch.randn(4, 8), torch.nn.functional.normalize(torch.randn(16, 8), dim=1)
        >>> info_nce(q, q, queue) < info_nce(q, torch.randn(4, 8), queue)
        tensor(True)
    """
    _check(temperature, ("q", q), ("k", k))
    if queue.dim() != 2 or queue.shape[1] != q.shape[1]:
        raise ValueError(
            f"queue must be (K, D) with D = {q.shape[1]} like q; got {tuple(queue.shape)}"
        )
    q = F.normalize(q, dim=1)  # (N, D)
    k = F.normalize(k.detach(), dim=1)  # (N, D) no gradient into the key encoder
    l_pos = (q * k).sum(dim=1, keepdim=True)  # (N, 1)
    l_neg = q @ queue.detach().T  # (N, K)
    logits = torch.cat([l_pos, l_neg], dim=1) / temperature  # (N, 1+K)
    labels = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)  # positives at 0
    return F.cross_entropy(logits, labels)


def alignment(z1: torch.Tensor, z2: torch.Tensor, alpha: float = 2.0) -> torch.Tensor:
    """How far apart the two views of an image land: ``E ||f(x) - f(y)||^alpha`` on the sphere.

    Wang and Isola, "Understanding Contrastive Representation Learning through Alignment and
    Uniformity on the Hypersphere", 2020, arXiv:2005.10242, eq. 4. The embeddings are
    l2-normalized first, so the value lies in [0, 2**alpha]; lower is better aligned
    (0: both views of every image map to the same point).

    Args:
        z1, z2: (N, D) embeddings of two views; row i of each comes from the same image.
        alpha: the exponent (2 in the paper's experiments).

    Returns:
        A 0-d tensor.

    Example:
        >>> z = torch.randn(5, 3)
        >>> float(alignment(z, 2 * z))  # the same directions: perfectly aligned
        0.0
    """
    _check(1.0, ("z1", z1), ("z2", z2))
    z1, z2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    return (z1 - z2).norm(dim=1).pow(alpha).mean()


def uniformity(z: torch.Tensor, t: float = 2.0) -> torch.Tensor:
    """How evenly embeddings cover the sphere: ``log E exp(-t ||f(x) - f(y)||^2)`` over pairs.

    Wang and Isola, 2020, arXiv:2005.10242, eq. 5 (the log of the average pairwise Gaussian
    potential, t = 2 in the paper). The embeddings are l2-normalized first. Lower is more
    uniform; 0 means every embedding is the same point (complete collapse); points spread
    over a sphere of dimension D reach about ``-2 t`` for large D and N.

    Args:
        z: (N, D) embeddings, N >= 2; all N (N - 1) / 2 distinct pairs are used.
        t: the potential's scale.

    Returns:
        A 0-d tensor.

    Example:
        >>> float(uniformity(torch.ones(4, 3)))  # everything in one point: no uniformity
        0.0
        >>> float(uniformity(torch.eye(3))) < -3  # three orthogonal directions: spread out
        True
    """
    if z.dim() != 2 or z.shape[0] < 2:
        raise ValueError(f"uniformity needs (N, D) embeddings with N >= 2; got {tuple(z.shape)}")
    z = F.normalize(z, dim=1)
    return torch.pdist(z, p=2).pow(2).mul(-t).exp().mean().log()
