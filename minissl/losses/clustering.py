"""Clustering losses: SwAV's equal-partition codes (Sinkhorn-Knopp) and its swapped prediction.

SwAV (Caron et al., "Unsupervised Learning of Visual Features by Contrasting Cluster
Assignments", 2020, arXiv:2006.09882) compares views through their *codes*: soft assignments
of a batch to K prototypes. The codes are computed under the constraint that every prototype
gets an equal share of the batch (Sec. 3.1, eq. 3), which is what stops the trivial solution
where every image lands in the same cluster; the loss then asks each view to predict the code
of another view (eq. 1-2).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from minissl import distributed
from minissl.utils import check_shape


def _global_logsumexp_rows(log_q: torch.Tensor) -> torch.Tensor:
    """(1, K) log of the column sums of exp(log_q) over the batch of *every* process.

    The max is all-reduced first (MAX) so that the exponentials stay in range, then the sums
    (SUM): the same answer as one process holding the whole global batch.
    """
    m = log_q.max(dim=0, keepdim=True).values  # (1, K)
    if distributed.is_distributed():
        torch.distributed.all_reduce(m, op=torch.distributed.ReduceOp.MAX)
    s = (log_q - m).exp().sum(dim=0, keepdim=True)  # (1, K)
    if distributed.is_distributed():
        torch.distributed.all_reduce(s, op=torch.distributed.ReduceOp.SUM)
    return m + s.log()


@torch.no_grad()
def sinkhorn(scores: torch.Tensor, epsilon: float = 0.05, iterations: int = 3) -> torch.Tensor:
    """SwAV's codes: an (approximately) equal partition of the batch over the prototypes.

    Caron et al., "Unsupervised Learning of Visual Features by Contrasting Cluster
    Assignments", 2020, arXiv:2006.09882, Sec. 3.1. The codes ``Q`` maximise
    ``Tr(Q^T C^T Z) + epsilon H(Q)`` over the transportation polytope where each of the K
    prototypes receives ``B / K`` samples and each sample has total mass 1 (eq. 3). The
    solution is ``diag(u) exp(scores / epsilon) diag(v)`` (eq. 4); the scaling vectors come
    from a few Sinkhorn-Knopp iterations (Cuturi, "Sinkhorn Distances", 2013,
    arXiv:1306.0895), alternately normalising the prototype sums and the sample sums. SwAV
    uses 3 iterations and epsilon 0.05.

    The iterations run in the log domain (a ``logsumexp`` instead of a sum of exponentials),
    in float32 whatever the input dtype, so they neither overflow nor divide by zero however
    large ``scores / epsilon`` is. Under ``torch.distributed`` the sums over the batch are
    all-reduced, so every process gets its rows of the codes of the *global* batch, as in the
    paper's multi-GPU code. No gradient flows through the codes: they are targets.

    Args:
        scores: (B, K) scores of B samples against K prototypes (cosine similarities).
        epsilon: entropic regularisation; smaller gives harder (closer to one-hot) codes.
        iterations: Sinkhorn-Knopp iterations.

    Returns:
        (B, K) float32 codes: each row sums to 1 and each column to about ``B / K`` (exactly,
        up to the last row normalisation, the more iterations are run).

    Example:
        >>> s = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4]])
        >>> q = sinkhorn(s, epsilon=0.05, iterations=10)
        >>> [round(r, 4) for r in q.sum(1).tolist()]
        [1.0, 1.0, 1.0, 1.0]
        >>> [round(c, 2) for c in q.sum(0).tolist()]  # two samples' worth per prototype
        [2.0, 2.0]
        >>> q.argmax(1).tolist()  # though every sample scores prototype 0 higher
        [0, 0, 1, 1]
    """
    check_shape(scores, ("B", "K"), "sinkhorn scores")
    if not epsilon > 0:
        raise ValueError(f"epsilon must be > 0; got {epsilon}")
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1; got {iterations}")
    b, k = scores.shape
    b_global = b * distributed.world_size()  # every process holds a batch of the same size
    log_q = scores.float() / epsilon  # (B, K) log of the unnormalised codes
    for _ in range(iterations):
        # every prototype (column) gets a total mass of 1/K over the global batch
        log_q = log_q - _global_logsumexp_rows(log_q) - math.log(k)
        # every sample (row) gets a total mass of 1/B
        log_q = log_q - torch.logsumexp(log_q, dim=1, keepdim=True) - math.log(b_global)
    return (log_q + math.log(b_global)).exp()  # rows rescaled to sum to 1: (B, K)


def swav_loss(
    scores_per_view: Sequence[torch.Tensor],
    codes_per_view: Sequence[torch.Tensor],
    temperature: float = 0.1,
) -> torch.Tensor:
    """SwAV's swapped prediction: every view predicts the code of every *other* coded view.

    Caron et al., "Unsupervised Learning of Visual Features by Contrasting Cluster
    Assignments", 2020, arXiv:2006.09882, eq. 1-2 and Sec. 3.2 (multi-crop). For two views
    ``L(z_t, z_s) = l(z_t, q_s) + l(z_s, q_t)`` with
    ``l(z, q) = -sum_k q_k log softmax(z^T c / tau)_k``. With V views of which the first
    ``len(codes_per_view)`` are coded (the global crops; codes are never computed for the
    small crops), the loss is, as in the paper's code, the mean over coded views ``i`` of the
    mean over the other ``V - 1`` views ``v`` of ``l(z_v, q_i)``, averaged over the batch.
    With two views it is half of eq. 1 and symmetric in the two views.

    Args:
        scores_per_view: V tensors (B, K): each view's scores against the prototypes
            (cosine similarities between normalised embeddings and normalised prototypes).
        codes_per_view: the codes (B, K) of the first views (each row a distribution over
            the prototypes, e.g. from :func:`sinkhorn`); no gradient flows into them.
        temperature: tau of the softmax over the prototypes (0.1 in the paper).

    Returns:
        Scalar tensor.

    Example:
        >>> s1, s2 = torch.eye(2), torch.eye(2).flip(0)  # the views disagree completely
        >>> q1, q2 = torch.eye(2), torch.eye(2).flip(0)
        >>> round(float(swav_loss([s1, s2], [q1, q2])), 3)
        10.0
        >>> float(swav_loss([s1, s1], [q1, q1])) < 1e-4  # they agree: a small loss
        True
    """
    if not 0 < temperature < math.inf:
        raise ValueError(f"temperature must be a finite number > 0; got {temperature}")
    v, n_coded = len(scores_per_view), len(codes_per_view)
    if v < 2 or not 1 <= n_coded <= v:
        raise ValueError(
            "swav_loss needs at least 2 views and between 1 and that many codes (for the first "
            f"views); got {v} views and {n_coded} codes"
        )
    shape = tuple(scores_per_view[0].shape)
    for name, group in (("scores_per_view", scores_per_view), ("codes_per_view", codes_per_view)):
        for j, t in enumerate(group):
            check_shape(t, ("B", "K"), f"{name}[{j}]")
            if tuple(t.shape) != shape:
                raise ValueError(
                    f"{name}[{j}] must have the shape of scores_per_view[0], {shape}; "
                    f"got {tuple(t.shape)}"
                )
            if t.numel() == 0:
                raise ValueError(f"{name}[{j}] is empty (shape {shape}); swav_loss needs a "
                                 "batch of at least one example and at least one prototype")
            if not t.is_floating_point():
                raise TypeError(f"{name}[{j}] must be a floating-point tensor; got dtype "
                                f"{t.dtype}")
    # log p(prototype | view) for every view, (B, K) each
    log_p = [F.log_softmax(s.float() / temperature, dim=1) for s in scores_per_view]
    total = scores_per_view[0].new_zeros((), dtype=torch.float32)
    for i, q in enumerate(codes_per_view):
        q = q.detach().float()
        cross = sum(-(q * log_p[j]).sum(dim=1).mean() for j in range(v) if j != i)
        total = total + cross / (v - 1)
    return total / n_coded
