"""k-means in torch, and the two scores that compare a clustering with true labels.

Clustering is unsupervised, so its output is a set of arbitrary cluster ids: cluster 3 may
well be the digit "7". To score it against labels we either measure how much information the
two labellings share (:func:`nmi`) or find the best one-to-one matching of clusters to classes
and count what it gets right (:func:`cluster_accuracy`). DeepCluster reuses all three.

Paper: Lloyd, "Least squares quantization in PCM", 1982 (the k-means iteration);
Arthur & Vassilvitskii, "k-means++: The Advantages of Careful Seeding", 2007 (the seeding).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from minissl.utils import draw


@dataclass
class KMeansResult:
    """What :func:`kmeans` returns."""

    centroids: torch.Tensor  # (K, D) on x's device
    assignments: torch.Tensor  # (N,) int64: the centroid each point belongs to
    inertia: float  # sum over points of the squared distance to their centroid
    history: list[float] = field(default_factory=list)  # inertia after each assignment step

    def predict(self, x: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
        """(M,) index of the nearest centroid of each row of x (M, D), e.g. for test points."""
        return _nearest(x.float().to(self.centroids.device), self.centroids, chunk)[1]


def _nearest(x: torch.Tensor, c: torch.Tensor, chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Squared distance to, and index of, the nearest centroid; `chunk` rows at a time."""
    c_sq = (c * c).sum(1)  # (K,)
    dists, idx = [], []
    for start in range(0, x.shape[0], chunk):
        xb = x[start : start + chunk]  # (n, D)
        # ||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2, one matrix product for the whole chunk
        d2 = (xb * xb).sum(1, keepdim=True) - 2 * xb @ c.T + c_sq  # (n, K)
        d, i = d2.clamp_min_(0).min(1)
        dists.append(d)
        idx.append(i)
    return torch.cat(dists), torch.cat(idx)


def _kmeans_pp(x: torch.Tensor, k: int, g: torch.Generator, chunk: int) -> torch.Tensor:
    """k-means++ seeding: each new centroid is a point drawn with probability ~ D(x)^2."""
    n = x.shape[0]
    first = int(torch.randint(n, (1,), generator=g))
    centroids = [x[first]]
    d2, _ = _nearest(x, x[first : first + 1], chunk)  # (N,) distance to the nearest centroid
    for _ in range(1, k):
        p = d2.double().cpu()
        # all points already covered (duplicates): fall back to a uniform draw
        j = int(torch.multinomial(p if p.sum() > 0 else torch.ones(n), 1, generator=g))
        centroids.append(x[j])
        d2 = torch.minimum(d2, _nearest(x, x[j : j + 1], chunk)[0])
    return torch.stack(centroids)  # (K, D)


def _fill_empty(x, c, d2, assign, k):
    """Give every empty cluster the point that is farthest from its own centroid.

    Only points from clusters with at least two members are taken, so no cluster is emptied
    by the move. The moved point's distance drops to 0, so the inertia never goes up.
    """
    counts = torch.bincount(assign, minlength=k)
    for j in torch.nonzero(counts == 0).flatten().tolist():
        movable = torch.where(counts[assign] > 1, d2, torch.full_like(d2, -1.0))
        p = int(movable.argmax())
        counts[assign[p]] -= 1
        counts[j] += 1
        assign[p], d2[p], c[j] = j, 0.0, x[p]
    return c, d2, assign


def _split_empty(x, c, d2, assign, k, g):
    """Give every empty cluster half of a large cluster, as DeepCluster does.

    Caron et al., "Deep Clustering for Unsupervised Learning of Visual Features", 2018,
    arXiv:1807.05520, Sec. 3.3: "when a cluster becomes empty, we randomly select a non-empty
    cluster and use its centroid with a small random perturbation as the centroid for the empty
    cluster. We then reassign the points belonging to the non-empty cluster to the two
    resulting clusters." The cluster to split is drawn with probability proportional to its
    size minus one, so large clusters are split most often and single points never. Two
    centroids ``m +/- delta`` around the mean ``m`` of its points cut them by the hyperplane
    through ``m`` orthogonal to ``delta``; since the offsets from a mean sum to zero, both
    sides get points unless all of them coincide (then each side gets half by index). Both
    centroids move to the means of their halves, which can only lower the inertia.
    """
    counts = torch.bincount(assign, minlength=k)
    for j in torch.nonzero(counts == 0).flatten().tolist():
        weights = (counts - 1).clamp_min(0).double().cpu()  # (K,) singletons are never split
        i = int(torch.multinomial(weights, 1, generator=g))
        members = torch.nonzero(assign == i).flatten()  # (n_i,) on x's device
        xm = x[members]  # (n_i, D)
        delta = draw(torch.randn, (x.shape[1],), g, device=x.device)  # a random direction
        side = (xm - xm.mean(0)) @ delta > 0  # (n_i,) True: goes to the new cluster j
        if bool(side.all()) or not bool(side.any()):  # every point on the hyperplane
            side = torch.arange(len(members), device=x.device) < len(members) // 2
        assign[members[side]] = j
        c[j], c[i] = xm[side].mean(0), xm[~side].mean(0)
        d2[members] = ((xm - c[assign[members]]) ** 2).sum(1)
        counts[j], counts[i] = int(side.sum()), int((~side).sum())
    return c, d2, assign


def kmeans(
    x: torch.Tensor,
    k: int,
    iters: int = 50,
    seed: int = 0,
    generator: torch.Generator | None = None,
    init: str = "k-means++",
    chunk: int = 4096,
    empty: str = "farthest",
) -> KMeansResult:
    """Lloyd's k-means on x's device: assign each point to its nearest centroid, move each
    centroid to the mean of its points, repeat until the assignments stop changing.

    An assignment step can leave a cluster without points. By default (``empty="farthest"``)
    it is re-seeded with the point farthest from its centroid (see ``_fill_empty``);
    ``empty="split"`` splits a large cluster in two instead, as DeepCluster does (see
    ``_split_empty``). Either way every cluster ends with at least one point.
    ``empty="keep"`` leaves empty clusters empty (their centroids stay where they were): the
    naive variant, to see what goes wrong without a fix.

    Args:
        x: (N, D) points, N >= k.
        k: number of clusters.
        iters: maximum number of assign/update rounds.
        seed: seeds the initialisation when no ``generator`` is given.
        generator: a CPU ``torch.Generator`` for the initialisation.
        init: ``"k-means++"`` or ``"random"`` (k distinct points drawn uniformly).
        chunk: rows of x whose distances to all centroids are computed at once.
        empty: what to do with empty clusters: ``"farthest"``, ``"split"`` or ``"keep"``.

    Example:
        >>> x = torch.tensor([[0.0, 0.0], [0.0, 0.1], [5.0, 5.0], [5.0, 5.1]])
        >>> r = kmeans(x, 2)
        >>> bool(r.assignments[0] == r.assignments[1]), bool(r.assignments[0] != r.assignments[2])
        (True, True)
        >>> round(r.inertia, 4)
        0.01
        >>> bool(r.predict(torch.tensor([[4.0, 4.0]]))[0] == r.assignments[2])
        True
    """
    if x.dim() != 2:
        raise ValueError(f"x must have shape (N, D); got {tuple(x.shape)}")
    if not 1 <= k <= x.shape[0]:
        raise ValueError(f"k must be between 1 and the number of points ({x.shape[0]}); got {k}")
    if init not in ("k-means++", "random"):
        raise ValueError(f"init must be 'k-means++' or 'random'; got {init!r}")
    if empty not in ("farthest", "split", "keep"):
        raise ValueError(f"empty must be 'farthest', 'split' or 'keep'; got {empty!r}")

    def fix(x, c, d2, assign, k):  # the empty-cluster rule chosen by `empty`
        if empty == "farthest":
            return _fill_empty(x, c, d2, assign, k)
        if empty == "split":
            return _split_empty(x, c, d2, assign, k, g)
        return c, d2, assign
    g = generator if generator is not None else torch.Generator().manual_seed(seed)
    x = x.float()
    if init == "k-means++":
        c = _kmeans_pp(x, k, g, chunk)
    else:
        c = x[torch.randperm(x.shape[0], generator=g)[:k].to(x.device)].clone()

    history: list[float] = []
    assign = None
    for _ in range(iters):
        d2, new_assign = _nearest(x, c, chunk)  # assignment step
        c, d2, new_assign = fix(x, c, d2, new_assign, k)
        history.append(float(d2.sum()))
        converged = assign is not None and torch.equal(new_assign, assign)
        assign = new_assign
        if converged:  # the centroids below would equal the current ones
            break
        # update step: each centroid becomes the mean of its points (no loop over points)
        sums = torch.zeros_like(c).index_add_(0, assign, x)  # (K, D)
        counts = torch.bincount(assign, minlength=k).unsqueeze(1)  # (K, 1)
        # an empty cluster (only with empty="keep") keeps its centroid
        c = torch.where(counts > 0, sums / counts.clamp_min(1), c)
    else:  # out of iterations: one last assignment so that assignments match the centroids
        d2, assign = _nearest(x, c, chunk)
        c, d2, assign = fix(x, c, d2, assign, k)
        history.append(float(d2.sum()))
    return KMeansResult(centroids=c, assignments=assign, inertia=history[-1], history=history)


def pca_whiten(x: torch.Tensor, dim: int | None = None, eps: float = 1e-5,
               normalize: bool = True) -> torch.Tensor:
    """Project features on their top principal directions, whiten them, l2-normalise them.

    DeepCluster's preprocessing before k-means (Caron et al., "Deep Clustering for
    Unsupervised Learning of Visual Features", 2018, arXiv:1807.05520, Sec. 4: "the features
    are PCA-reduced to 256 dimensions, whitened and l2-normalized"): whitening gives every
    kept direction unit variance, so k-means is not ruled by the few directions where a
    network's features vary most. Computed on x's device from the (D, D) covariance.

    Args:
        x: (N, D) features.
        dim: number of principal directions kept (default: all, at most min(N, D)).
        eps: added to each variance before dividing by its square root, as a fraction of the
            largest variance (directions with almost no variance are not blown up).
        normalize: l2-normalise each output row.

    Returns:
        (N, dim) float32.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(500, 3, generator=g) * torch.tensor([10.0, 1.0, 0.1])
        >>> y = pca_whiten(x, dim=2, normalize=False)
        >>> y.shape, [round(v, 2) for v in y.var(0).tolist()]
        (torch.Size([500, 2]), [1.0, 1.0])
    """
    if x.dim() != 2:
        raise ValueError(f"x must have shape (N, D); got {tuple(x.shape)}")
    x = x.float()
    n, d = x.shape
    dim = min(dim or d, d, n)
    xc = x - x.mean(0)  # (N, D)
    cov = xc.T @ xc / max(n - 1, 1)  # (D, D)
    var, vec = torch.linalg.eigh(cov)  # ascending order
    var, vec = var.flip(0)[:dim], vec.flip(1)[:, :dim]  # the top `dim` directions
    y = xc @ vec / (var.clamp_min(0) + eps * var[0].clamp_min(1e-12)).sqrt()  # (N, dim)
    return torch.nn.functional.normalize(y, dim=1) if normalize else y


def _contingency(a, b) -> torch.Tensor:
    """(number of ids in a, number of ids in b) table of co-occurrence counts, float64."""
    a = torch.as_tensor(a).flatten().long().cpu()
    b = torch.as_tensor(b).flatten().long().cpu()
    if a.shape != b.shape:
        raise ValueError(f"labellings must have the same length; got {len(a)} and {len(b)}")
    _, a = torch.unique(a, return_inverse=True)
    _, b = torch.unique(b, return_inverse=True)
    na, nb = int(a.max()) + 1, int(b.max()) + 1
    return torch.bincount(a * nb + b, minlength=na * nb).reshape(na, nb).double()


def nmi(a, b) -> float:
    """Normalized mutual information, I(a; b) / mean(H(a), H(b)): 1 when one labelling is a
    renaming of the other, about 0 when they are independent. Same value as scikit-learn's
    ``normalized_mutual_info_score`` (arithmetic normalisation).

    Args:
        a, b: (N,) integer labellings (tensors, arrays or lists); the ids themselves do not matter.

    Example:
        >>> nmi([0, 0, 1, 1], [5, 5, 2, 2])
        1.0
    """
    joint = _contingency(a, b)
    p = joint / joint.sum()  # (A, B) joint distribution
    pa, pb = p.sum(1), p.sum(0)
    h_a = -(pa * pa.log()).sum()
    h_b = -(pb * pb.log()).sum()
    if h_a == 0 and h_b == 0:  # both are a single cluster: identical labellings
        return 1.0
    nz = p > 0
    mi = (p[nz] * (p[nz] / (pa[:, None] * pb[None, :])[nz]).log()).sum()
    return float((mi / ((h_a + h_b) / 2)).clamp(0.0, 1.0))


def match_clusters(assignments, labels) -> dict[int, int]:
    """The one-to-one map cluster id -> class that agrees with the most points.

    Uses the Hungarian algorithm (``scipy.optimize.linear_sum_assignment``) when SciPy is
    installed; otherwise a greedy matching that takes the largest remaining count first.
    With more clusters than classes, the extra clusters stay unmatched.

    Example:
        >>> match_clusters([2, 2, 0, 0, 1], [0, 0, 1, 1, 1])
        {0: 1, 2: 0}
    """
    a = torch.as_tensor(assignments).flatten().long().cpu()
    y = torch.as_tensor(labels).flatten().long().cpu()
    a_ids, y_ids = torch.unique(a), torch.unique(y)
    table = _contingency(a, y)  # rows follow a_ids, columns y_ids (both sorted)
    try:
        from scipy.optimize import linear_sum_assignment

        rows, cols = linear_sum_assignment(table.numpy(), maximize=True)
        pairs = list(zip(rows.tolist(), cols.tolist()))
    except ImportError:
        pairs, t = [], table.clone()
        for _ in range(min(t.shape)):
            r, c = divmod(int(t.argmax()), t.shape[1])
            pairs.append((r, c))
            t[r, :], t[:, c] = -1, -1
    return {int(a_ids[r]): int(y_ids[c]) for r, c in sorted(pairs)}


def cluster_accuracy(assignments, labels) -> float:
    """Accuracy of a clustering after the best one-to-one matching of clusters to classes.

    Args:
        assignments: (N,) cluster ids.
        labels: (N,) true class ids.

    Example:
        >>> cluster_accuracy([1, 1, 0, 0], [0, 0, 1, 1])
        1.0
    """
    mapping = match_clusters(assignments, labels)
    a = torch.as_tensor(assignments).flatten().long().cpu()
    y = torch.as_tensor(labels).flatten().long().cpu()
    mapped = torch.tensor([mapping.get(int(i), -1) for i in a.unique()])
    predicted = mapped[torch.searchsorted(a.unique(), a)]  # (N,) class predicted for each point
    return float((predicted == y).double().mean())
