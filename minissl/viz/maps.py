"""Plots of representations: 2-D embeddings, similarity matrices, confusion matrices."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import ScalarFormatter

from minissl.utils import to_numpy
from minissl.viz._base import _axes, _styled


def _pca2(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project (N, D) onto its top two principal components; also return explained ratios."""
    x = x.astype(np.float64) - x.mean(0, keepdims=True)
    cov = x.T @ x / max(1, len(x) - 1)  # (D, D): cheaper than an SVD of (N, D) for N >> D
    evals, evecs = np.linalg.eigh(cov)
    order = np.argsort(evals)[::-1][:2]
    comps = evecs[:, order]  # (D, 2)
    # Fix each component's sign so the same data always gives the same picture.
    comps *= np.sign(comps[np.abs(comps).argmax(0), [0, 1]])
    total = evals.clip(min=0).sum()
    ratio = evals[order].clip(min=0) / total if total > 0 else np.zeros(2)
    return x @ comps, ratio


@_styled
def plot_embedding_2d(
    features: torch.Tensor | np.ndarray,
    labels: torch.Tensor | np.ndarray | Sequence | None = None,
    method: str = "pca",
    class_names: Sequence[str] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    seed: int = 0,
) -> Figure:
    """Scatter features in 2-D, coloured by label, with a legend of the classes.

    Args:
        features: (N, D). Two-dimensional features are drawn as they are.
        labels: (N,) class labels (ints or strings); None draws every point in one colour.
        method: "pca" (exact, fast) or "tsne" (scikit-learn; the features are first reduced to
            50 dimensions with PCA and the perplexity is capped for small N).
        class_names: names of the integer labels, for the legend.
        ax: axes to draw into; a new figure when None.
        title: the title (default names the method and the feature dimension).
        seed: random state of t-SNE.

    Example:
        >>> f = torch.randn(30, 5); y = torch.arange(30) % 3
        >>> fig = plot_embedding_2d(f, y, class_names=["a", "b", "c"])
        >>> [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        ['a', 'b', 'c']
        >>> plt.close(fig)
    """
    x = to_numpy(features).astype(np.float64)
    if x.ndim != 2 or x.shape[1] < 2:
        raise ValueError(f"features must have shape (N, D) with D >= 2; got {tuple(x.shape)}")
    n, d = x.shape
    if d == 2:
        xy, xl, yl = x, "dim 1", "dim 2"
        default_title = "2-D features"
    elif method == "pca":
        xy, ratio = _pca2(x)
        xl, yl = (f"PC {i + 1} ({100 * r:.0f}% of variance)" for i, r in enumerate(ratio))
        default_title = f"PCA of {d}-d features"
    elif method == "tsne":
        from sklearn.manifold import TSNE

        if d > 50:
            x = _pca_reduce(x, 50)
        perplexity = float(min(30.0, max(2.0, (n - 1) / 3)))
        xy = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed,
                  learning_rate="auto").fit_transform(x)
        xl, yl = "t-SNE 1", "t-SNE 2"
        default_title = f"t-SNE of {d}-d features"
    else:
        raise ValueError(f"method must be 'pca' or 'tsne'; got {method!r}")

    fig, ax = _axes(ax, (5.5, 4.5))
    size = float(np.clip(5000 / n, 4, 36))
    if labels is None:
        ax.scatter(xy[:, 0], xy[:, 1], s=size, alpha=0.8, color="tab:blue", linewidths=0)
    else:
        y = to_numpy(labels).reshape(-1)
        if len(y) != n:
            raise ValueError(f"labels must have one entry per feature row: {n} rows, {len(y)} "
                             "labels")
        classes = np.unique(y)
        cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
        for i, c in enumerate(classes):
            m = y == c
            name = str(c)
            if class_names is not None and np.issubdtype(y.dtype, np.integer):
                name = str(class_names[int(c)])
            ax.scatter(xy[m, 0], xy[m, 1], s=size, alpha=0.8, linewidths=0, label=name,
                       color=cmap(i % cmap.N))
        if len(classes) <= 20:
            ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), title="class",
                      markerscale=max(1.0, 6 / size**0.5))  # legend dots readable when tiny
    ax.set_xlabel(xl)
    ax.set_ylabel(yl)
    ax.set_title(title or default_title)
    return fig


def _pca_reduce(x: np.ndarray, k: int) -> np.ndarray:
    x = x - x.mean(0, keepdims=True)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    return x @ vt[:k].T


def _heatmap_ticks(ax: Axes, names: Sequence[Any] | None, n: int) -> None:
    if names is not None and n <= 40:
        ax.set_xticks(range(n), [str(s) for s in names], rotation=90 if n > 8 else 0)
        ax.set_yticks(range(n), [str(s) for s in names])
    elif n > 40:
        ax.set_xticks([])
        ax.set_yticks([])


@_styled
def plot_similarity_matrix(
    sim: torch.Tensor | np.ndarray,
    labels: Sequence[Any] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Heatmap of a square similarity matrix with a colour bar (e.g. SimCLR's 2N x 2N cosines).

    Values that go below zero are shown on a diverging map centred on 0. The colour bar's
    ticks are plain decimals without an offset, so a matrix whose entries all lie near 1
    reads 0.99996 to 1.00000 rather than as an offset and tiny differences.

    Args:
        sim: (N, N) similarities.
        labels: N tick labels (shown up to N = 40).
        ax: axes to draw into; a new figure when None.
        title: the title (default "similarity matrix").

    Example:
        >>> z = torch.nn.functional.normalize(torch.randn(6, 4), dim=1)
        >>> fig = plot_similarity_matrix(z @ z.T, labels=list("abcdef"))
        >>> len(fig.axes)  # the heatmap and its colour bar
        2
        >>> plt.close(fig)
    """
    s = to_numpy(sim).astype(np.float64)
    if s.ndim != 2 or s.shape[0] != s.shape[1]:
        raise ValueError(f"sim must have shape (N, N); got {tuple(s.shape)}")
    n = s.shape[0]
    side = float(np.clip(0.35 * n + 1.5, 3.5, 7.0))
    fig, ax = _axes(ax, (side + 1.0, side))
    finite = s[np.isfinite(s)]
    if finite.size and finite.min() < 0:
        lim = float(np.abs(finite).max()) or 1.0
        im = ax.imshow(s, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
    else:
        im = ax.imshow(s, cmap="viridis", interpolation="nearest")
    ax.grid(False)
    _heatmap_ticks(ax, labels, n)
    bar = fig.colorbar(im, ax=ax, shrink=0.85, label="similarity")
    # Plain numbers on the colour bar, never an offset such as "1e-6 + 9.9999e-1" above it:
    # an untrained network's cosines can all lie within a hair of 1.
    plain = ScalarFormatter(useOffset=False)
    plain.set_scientific(False)
    bar.ax.yaxis.set_major_formatter(plain)
    ax.set_title(title or "similarity matrix")
    ax.set_xlabel("column item")
    ax.set_ylabel("row item")
    return fig


@_styled
def plot_confusion_matrix(
    cm: torch.Tensor | np.ndarray,
    class_names: Sequence[str] | None = None,
    normalize: bool = False,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Confusion matrix heatmap: rows are true classes, columns predicted ones.

    Args:
        cm: (K, K) counts; ``cm[i, j]`` = examples of class i predicted as j.
        class_names: K names.
        normalize: divide each row by its total, so the diagonal reads as per-class recall.
        ax: axes to draw into; a new figure when None.
        title: the title (default "confusion matrix").

    Example:
        >>> fig = plot_confusion_matrix([[5, 1], [2, 7]], class_names=["cat", "dog"])
        >>> sorted(t.get_text() for t in fig.axes[0].texts)
        ['1', '2', '5', '7']
        >>> plt.close(fig)
    """
    m = to_numpy(cm).astype(np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"cm must have shape (K, K); got {tuple(m.shape)}")
    k = m.shape[0]
    if class_names is not None and len(class_names) != k:
        raise ValueError(f"class_names needs {k} names; got {len(class_names)}")
    if normalize:
        m = m / np.maximum(m.sum(1, keepdims=True), 1e-12)  # empty rows stay 0, not NaN
    side = float(np.clip(0.45 * k + 2.0, 3.5, 8.0))
    fig, ax = _axes(ax, (side + 1.0, side))
    im = ax.imshow(m, cmap="Blues", vmin=0, vmax=1 if normalize else None,
                   interpolation="nearest")
    ax.grid(False)
    if k <= 20:  # beyond that, numbers become unreadable: the colours carry the message
        hi = m.max() if m.size else 1.0
        for i in range(k):
            for j in range(k):
                v = m[i, j]
                text = f"{v:.2f}" if normalize else f"{v:.0f}"
                ax.text(j, i, text, ha="center", va="center", fontsize=8 if k > 10 else 9,
                        color="white" if v > 0.6 * hi else "0.15")
    names = class_names if class_names is not None else [str(i) for i in range(k)]
    _heatmap_ticks(ax, names, k)
    ax.tick_params(axis="x", labelrotation=45 if k > 6 else 0)
    fig.colorbar(im, ax=ax, shrink=0.85, label="fraction of row" if normalize else "count")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title or ("confusion matrix (row-normalised)" if normalize else
                           "confusion matrix"))
    return fig
