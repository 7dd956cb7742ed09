"""Plots for the book: image grids, training curves, embeddings, bar charts, heatmaps, tables.

Every function returns a matplotlib :class:`~matplotlib.figure.Figure` and never calls
``plt.show()``. In a notebook, leave the figure as the last expression of the cell, or call
``plt.show()``; either way it is drawn exactly once. Assigning it (``fig = plot_bars(...)``)
also draws it at the end of the cell. Functions that take ``ax=`` draw into your axes and
return its figure; that figure is yours, so finish such a cell with ``plt.show()``.

Inputs may be torch tensors or NumPy arrays. Images are (N, C, H, W) floats in [0, 1] with
C in {1, 3}. Categorical colours come from matplotlib's colour-blind-friendly ``tab10``.

Example:
    >>> fig = plot_bars({"SimCLR": 0.81, "BYOL": 0.84}, chance=0.1)
    >>> len(fig.axes[0].patches)
    2
    >>> plt.close(fig)
"""

from __future__ import annotations

import contextlib
import functools
import html
import io
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = [
    "BookFigure", "style", "image_grid", "show_views", "plot_history", "plot_embedding_2d",
    "plot_bars", "plot_similarity_matrix", "plot_confusion_matrix", "plot_curves",
    "results_table", "Table",
]

# One look for the whole book: readable sizes, no top/right spines, faint grid, tab10.
RC: dict[str, Any] = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "axes.prop_cycle": plt.cycler(color=plt.get_cmap("tab10").colors),
    "image.cmap": "viridis",
    "figure.dpi": 100,
    "savefig.bbox": "tight",
}


@contextlib.contextmanager
def style() -> Iterator[None]:
    """Use the book's plot style inside a ``with`` block (for a chapter's own plots).

    Example:
        >>> with style():
        ...     plt.rcParams["axes.spines.top"]
        False
    """
    # Unlike plt.rc_context, restore only our keys: Jupyter's inline backend may switch
    # interactive mode on while we draw, and resetting it would stop figures showing.
    old = {k: plt.rcParams[k] for k in RC}
    plt.rcParams.update(RC)
    try:
        yield
    finally:
        plt.rcParams.update(old)


class BookFigure(Figure):
    """A Figure that Jupyter draws once: returned, assigned or shown with ``plt.show()``.

    Figures made through pyplot are drawn by Jupyter at the end of the cell *and* again when
    they are the cell's last expression. When IPython displays this figure itself, it first
    hands it back from pyplot, so the end-of-cell pass skips it.
    """

    def _ipython_display_(self) -> None:
        from IPython.display import display

        plt.close(self)  # otherwise the inline backend would draw it a second time
        buf = io.BytesIO()
        self.savefig(buf, format="png", bbox_inches="tight")
        display({"image/png": buf.getvalue(), "text/plain": repr(self)}, raw=True)


# --------------------------------------------------------------------------- helpers


def _styled(fn):
    """Run a plotting function under the book's rcParams (text takes them when it is made)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with style():
            return fn(*args, **kwargs)

    return wrapper


def _np(x: Any) -> np.ndarray:
    """A NumPy copy of a tensor, array or (nested) list."""
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float32 if x.is_floating_point() else x.dtype).numpy()
    if isinstance(x, (list, tuple)) and x and isinstance(x[0], torch.Tensor):
        return np.stack([_np(t) for t in x])
    return np.asarray(x)


def _figure(nrows: int = 1, ncols: int = 1,
            figsize: tuple | None = None) -> tuple[Figure, np.ndarray]:
    with style():
        fig, axes = plt.subplots(nrows, ncols, figsize=figsize, squeeze=False,
                                 layout="constrained", FigureClass=BookFigure)
    return fig, axes


def _axes(ax: Axes | None, figsize: tuple | None = None) -> tuple[Figure, Axes]:
    """The given axes (tidied to the book's look) or a fresh single-axes figure."""
    if ax is None:
        fig, axes = _figure(1, 1, figsize)
        return fig, axes[0, 0]
    ax.spines[["top", "right"]].set_visible(False)
    return ax.figure, ax


def _images(images: Any, name: str = "images") -> np.ndarray:
    """(N, C, H, W) float array in [0, 1] from a tensor/array/list; a single (C, H, W) is N=1."""
    arr = _np(images).astype(np.float32, copy=False)
    if arr.ndim == 3 and arr.shape[0] in (1, 3):
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[1] not in (1, 3):
        raise ValueError(f"{name} must have shape (N, C, H, W) with C in {{1, 3}}; "
                         f"got {tuple(arr.shape)}")
    return np.clip(arr, 0.0, 1.0)


def _mosaic(tiles: list[np.ndarray], ncols: int, pad: int, gap: int = 0) -> np.ndarray:
    """Tile (C, H, W) images on a white canvas, row-major; ``gap`` extra pixels above rows.

    Tiles of different sizes are centred in a cell of the largest size, so crops of another
    resolution still line up with the originals.
    """
    C = max(t.shape[0] for t in tiles)
    H = max(t.shape[1] for t in tiles)
    W = max(t.shape[2] for t in tiles)
    nrows = math.ceil(len(tiles) / ncols)
    cell_h, cell_w = H + pad + gap, W + pad
    canvas = np.ones((C, nrows * cell_h + pad, ncols * cell_w + pad), dtype=np.float32)
    for i, t in enumerate(tiles):
        r, c = divmod(i, ncols)
        y = r * cell_h + pad + gap + (H - t.shape[1]) // 2
        x = c * cell_w + pad + (W - t.shape[2]) // 2
        canvas[:, y:y + t.shape[1], x:x + t.shape[2]] = t  # broadcasts gray onto RGB
    return canvas


def _imshow(ax: Axes, canvas: np.ndarray) -> None:
    if canvas.shape[0] == 1:
        ax.imshow(canvas[0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(canvas.transpose(1, 2, 0), interpolation="nearest")
    ax.grid(False)


def _fmt(v: float) -> str:
    return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"


# --------------------------------------------------------------------------- images


@_styled
def image_grid(
    images: torch.Tensor | np.ndarray,
    nrow: int = 8,
    titles: Sequence[Any] | None = None,
    title: str | None = None,
    ax: Axes | None = None,
    pad: int = 1,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Show a batch of images as a grid (grayscale in a gray colour map), clipped to [0, 1].

    Args:
        images: (N, C, H, W) with C in {1, 3}, values in [0, 1]; a single (C, H, W) works too.
        nrow: images per row.
        titles: N short captions drawn above the images (class names, pseudo-labels, ...).
        title: a title for the whole grid.
        ax: axes to draw into; a new figure when None.
        pad: white pixels between images.
        figsize: figure size in inches (default: about 1.1 inch per image).

    Example:
        >>> fig = image_grid(torch.rand(6, 3, 8, 8), nrow=3, titles=list("abcdef"))
        >>> fig.axes[0].images[0].get_array().shape[:2], len(fig.axes[0].texts)
        ((23, 28), 6)
        >>> plt.close(fig)
    """
    arr = _images(images)
    n, _, H, W = arr.shape
    ncols = max(1, min(nrow, n))
    if titles is not None and len(titles) != n:
        raise ValueError(f"titles must have one entry per image: {n} images, {len(titles)} titles")
    # A caption needs about a third of a tile's height above it at the default figure size.
    gap = max(2, round(0.3 * H)) if titles is not None else 0
    canvas = _mosaic(list(arr), ncols, pad, gap)
    if figsize is None and ax is None:
        scale = 1.1 / max(H, W)  # inches per pixel
        figsize = (max(2.0, canvas.shape[2] * scale), max(1.2, canvas.shape[1] * scale + 0.4))
    fig, ax = _axes(ax, figsize)
    _imshow(ax, canvas)
    ax.set_axis_off()
    if titles is not None:
        for i, t in enumerate(titles):
            r, c = divmod(i, ncols)
            ax.text(c * (W + pad) + pad + W / 2, r * (H + pad + gap) + pad + gap - 0.5, str(t),
                    ha="center", va="bottom", fontsize=8, clip_on=False)
    if title:
        ax.set_title(title)
    return fig


@_styled
def show_views(
    images: torch.Tensor | np.ndarray,
    views: Sequence[torch.Tensor | np.ndarray],
    names: Sequence[str] | None = None,
    title: str | None = None,
    pad: int = 1,
) -> Figure:
    """Show images and their augmented views: one row per version, one column per example.

    Args:
        images: (N, C, H, W) originals in [0, 1].
        views: a list of V batches, each (N, C, H', W') (crops may have another size).
        names: V + 1 row labels; default "original", "view 1", ...
        title: a title for the figure.
        pad: white pixels between images.

    Example:
        >>> x = torch.rand(4, 1, 8, 8)
        >>> fig = show_views(x, [x.flip(-1), 1 - x])
        >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
        ['original', 'view 1', 'view 2']
        >>> plt.close(fig)
    """
    rows = [_images(images)] + [_images(v, f"views[{i}]") for i, v in enumerate(views)]
    n = rows[0].shape[0]
    for i, v in enumerate(rows[1:]):
        if v.shape[0] != n:
            raise ValueError(f"views[{i}] has {v.shape[0]} images; expected {n}, as many "
                             "as the originals")
    names = list(names) if names is not None else ["original"] + [
        f"view {i + 1}" for i in range(len(views))]
    if len(names) != len(rows):
        raise ValueError(f"names needs {len(rows)} entries (original + each view); "
                         f"got {len(names)}")
    tiles = [t for row in rows for t in row]
    canvas = _mosaic(tiles, n, pad)
    H = max(t.shape[1] for t in tiles)
    scale = 1.1 / H
    fig, ax = _axes(None, (max(2.5, canvas.shape[2] * scale + 1.0),
                           max(1.2, canvas.shape[1] * scale + 0.4)))
    _imshow(ax, canvas)
    # Row names as y tick labels: they sit neatly left of each row with no extra artists.
    ax.set_yticks([pad + r * (H + pad) + H / 2 - 0.5 for r in range(len(rows))], names)
    ax.set_xticks([])
    ax.tick_params(left=False)
    for side in ("left", "bottom", "top", "right"):
        ax.spines[side].set_visible(False)
    if title:
        ax.set_title(title)
    return fig


# --------------------------------------------------------------------------- training curves


def _ema(values: np.ndarray, smooth: float) -> np.ndarray:
    """Exponential moving average, bias-corrected so the start is not pulled towards 0."""
    out = np.empty_like(values)
    avg, weight = 0.0, 0.0
    for i, v in enumerate(values):
        if not math.isnan(v):  # a missing value keeps the running average
            avg = smooth * avg + (1 - smooth) * v
            weight = smooth * weight + (1 - smooth)
        out[i] = avg / weight if weight > 0 else math.nan
    return out


def _series(history: Any, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of one logged quantity; x is the optimizer step when the history knows it."""
    y = np.asarray(history[key], dtype=np.float64)
    if hasattr(history, "steps_of"):  # minissl.train.History: quantities logged now and then
        x = np.asarray(history.steps_of(key), dtype=np.float64)
        if len(x) == len(y):
            return x, y
    steps = getattr(history, "steps", None)
    if steps is None and isinstance(history, Mapping):
        steps = history.get("steps", history.get("step"))
    if steps is not None and len(steps) == len(y):
        return np.asarray(steps, dtype=np.float64), y
    return np.arange(len(y), dtype=np.float64), y


@_styled
def plot_history(
    history: Any,
    keys: Sequence[str] | None = None,
    smooth: float = 0.0,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Plot training curves: one panel per logged quantity, or ``keys`` on one shared axis.

    Args:
        history: what :func:`minissl.train.fit` returns, or any mapping from a name to a list
            of floats. Its ``.steps`` (or a ``"steps"`` entry) gives the x axis; otherwise the
            index of each value is used.
        keys: quantities to plot together on one axis (default: every quantity, one panel each).
        smooth: exponential smoothing in [0, 1); when > 0 the raw curve is drawn faintly behind.
        ax: axes for a shared plot; implies one axis.
        title: a title (the shared axis' title, or the figure's).

    Example:
        >>> fig = plot_history({"loss": [3.0, 2.0, 1.5, 1.2], "lr": [1.0, 0.5, 0.2, 0.0]})
        >>> [a.get_title() for a in fig.axes]
        ['loss', 'lr']
        >>> plt.close(fig)
    """
    if not 0.0 <= smooth < 1.0:
        raise ValueError(f"smooth must be in [0, 1); got {smooth}")
    available = [k for k in history.keys() if k not in ("step", "steps")]
    if keys is not None:
        missing = [k for k in keys if k not in available]
        if missing:
            raise KeyError(f"{missing} not in the history; logged quantities: {available}")
    shared = keys is not None or ax is not None
    keys = list(keys) if keys is not None else available
    if not keys:
        raise ValueError("the history holds no logged quantities to plot")
    has_steps = hasattr(history, "steps") or (
        isinstance(history, Mapping) and ("steps" in history or "step" in history))
    xlabel = "step" if has_steps else "log entry"

    def draw(a: Axes, key: str, color: Any) -> None:
        x, y = _series(history, key)
        if smooth > 0 and len(y) >= 10:  # a few evaluation points are not worth smoothing
            a.plot(x, y, color=color, alpha=0.25, linewidth=1)
            a.plot(x, _ema(y, smooth), color=color, linewidth=1.8, label=key)
        else:
            a.plot(x, y, color=color, linewidth=1.5, label=key,
                   marker="o" if len(y) <= 20 else None, markersize=3)

    colors = plt.get_cmap("tab10").colors
    if shared:
        fig, a = _axes(ax, (6, 3.5))
        for i, k in enumerate(keys):
            draw(a, k, colors[i % 10])
        a.set_xlabel(xlabel)
        a.set_ylabel(keys[0] if len(keys) == 1 else "value")
        a.set_title(title or ", ".join(keys))
        if len(keys) > 1:
            a.legend()
        return fig
    ncols = min(3, len(keys))
    nrows = math.ceil(len(keys) / ncols)
    fig, axes = _figure(nrows, ncols, (4.0 * ncols, 2.8 * nrows))
    for i, (k, a) in enumerate(zip(keys, axes.flat)):
        draw(a, k, colors[i % 10])
        a.set_title(k)
        a.set_xlabel(xlabel)
        a.set_ylabel(k)
    for a in list(axes.flat)[len(keys):]:
        fig.delaxes(a)
    if title:
        fig.suptitle(title, fontweight="bold")
    return fig


# --------------------------------------------------------------------------- embeddings


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
    x = _np(features).astype(np.float64)
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
        y = _np(labels).reshape(-1)
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


# --------------------------------------------------------------------------- bars and curves


@_styled
def plot_bars(
    results: Mapping[str, float] | Mapping[str, Sequence[float]],
    ylabel: str = "accuracy",
    title: str | None = None,
    ax: Axes | None = None,
    chance: float | None = None,
    sort: bool = False,
) -> Figure:
    """A bar per entry with its value written on it; lists of runs give mean ± std error bars.

    Args:
        results: name -> value, or name -> values of several runs (seeds).
        ylabel: what the values are.
        title: the title (default: "<ylabel> by method").
        ax: axes to draw into; a new figure when None.
        chance: draws a dashed line at this level (e.g. 1 / num_classes).
        sort: order the bars from best to worst.

    Example:
        >>> fig = plot_bars({"kNN": [0.80, 0.82], "linear": [0.85, 0.86]}, chance=0.1)
        >>> ax = fig.axes[0]
        >>> len(ax.patches), [t.get_text() for t in ax.texts]
        (2, ['0.810', '0.855', 'chance\\n0.100'])
        >>> plt.close(fig)
    """
    if not results:
        raise ValueError("results is empty: pass a dict such as {'SimCLR': 0.81}")
    names = [str(k) for k in results]
    vals = [_np(v).astype(np.float64).reshape(-1) for v in results.values()]
    means = np.array([v.mean() for v in vals])
    stds = np.array([v.std(ddof=1) if len(v) > 1 else 0.0 for v in vals])
    has_err = any(len(v) > 1 for v in vals)
    order = np.argsort(-means, kind="stable") if sort else np.arange(len(names))
    names = [names[i] for i in order]
    means, stds = means[order], stds[order]

    width = max(3.5, 0.75 * len(names) + 1.5)
    fig, ax = _axes(ax, (width, 3.6))
    colors = [plt.get_cmap("tab10")(i % 10) for i in order]  # colour follows the name
    bars = ax.bar(names, means, color=colors, width=0.65,
                  yerr=stds if has_err else None, capsize=4 if has_err else 0,
                  error_kw={"elinewidth": 1.2, "ecolor": "0.25"})
    ax.bar_label(bars, labels=[_fmt(m) for m in means], padding=3, fontsize=9)
    top = float(np.max(means + stds)) if len(means) else 1.0
    if chance is not None:
        ax.axhline(chance, color="0.35", linestyle="--", linewidth=1.2, zorder=0)
        # Label at the right end, outside the bars, so it never covers one.
        ax.text(len(names) - 0.45, chance, f"chance\n{_fmt(chance)}", ha="left", va="center",
                fontsize=8, color="0.35", clip_on=False)
        top = max(top, chance)
    bottom = min(0.0, float(np.min(means - stds)))
    ax.set_ylim(bottom, top * 1.15 if top > 0 else 1.0)
    ax.grid(axis="x", visible=False)
    ax.set_axisbelow(True)
    if max(len(n) for n in names) * len(names) > 60:  # long names would overlap
        ax.tick_params(axis="x", labelrotation=30)
        for lab in ax.get_xticklabels():
            lab.set_horizontalalignment("right")
    ax.set_ylabel(ylabel)
    ax.set_title(title or f"{ylabel} by method")
    return fig


@_styled
def plot_curves(
    x: Sequence[float] | np.ndarray | torch.Tensor,
    ys: Mapping[str, Sequence[float]],
    xlabel: str,
    ylabel: str,
    logx: bool = False,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Line plot of several named series over a shared x (e.g. accuracy vs labels per class).

    Args:
        x: (P,) x values.
        ys: name -> (P,) values, or name -> (R, P) values of R runs: drawn as the mean with a
            shaded ± std band.
        xlabel: label of the x axis.
        ylabel: label of the y axis.
        logx: logarithmic x axis, with ticks at the given x values.
        ax: axes to draw into; a new figure when None.
        title: the title (default: "<ylabel> vs <xlabel>").

    Example:
        >>> ys = {"SimCLR": [0.3, 0.6, 0.8], "supervised": [0.2, 0.5, 0.9]}
        >>> fig = plot_curves([1, 10, 100], ys, "labels per class", "accuracy", logx=True)
        >>> len(fig.axes[0].get_legend().get_texts())
        2
        >>> plt.close(fig)
    """
    xs = _np(x).astype(np.float64).reshape(-1)
    fig, ax = _axes(ax, (5.5, 3.6))
    for i, (name, y) in enumerate(ys.items()):
        arr = _np(y).astype(np.float64)
        runs = arr.reshape(-1, arr.shape[-1]) if arr.ndim > 1 else arr[None]
        if runs.shape[1] != len(xs):
            raise ValueError(f"ys[{name!r}] has {runs.shape[1]} points per run; x has {len(xs)}")
        color = plt.get_cmap("tab10")(i % 10)
        mean = np.nanmean(runs, 0)
        ax.plot(xs, mean, marker="o", markersize=4, linewidth=1.8, color=color, label=str(name))
        if len(runs) > 1:
            std = np.nanstd(runs, 0, ddof=1)
            ax.fill_between(xs, mean - std, mean + std, color=color, alpha=0.2, linewidth=0)
    if logx:
        ax.set_xscale("log")
        ax.set_xticks(xs, [f"{v:g}" for v in xs])
        ax.minorticks_off()
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title or f"{ylabel} vs {xlabel}")
    if ys:
        ax.legend()
    return fig


# --------------------------------------------------------------------------- heatmaps


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

    Values that go below zero are shown on a diverging map centred on 0.

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
    s = _np(sim).astype(np.float64)
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
    fig.colorbar(im, ax=ax, shrink=0.85, label="similarity")
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
    m = _np(cm).astype(np.float64)
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


# --------------------------------------------------------------------------- tables


class Table:
    """A small results table: HTML in Jupyter, aligned markdown text everywhere else.

    Build it with :func:`results_table`. ``columns`` holds the header, ``rows`` the raw cells.
    """

    def __init__(self, columns: list[str], rows: list[list[Any]], floatfmt: str = ".3f"):
        self.columns = columns
        self.rows = rows
        self.floatfmt = floatfmt

    def _cell(self, v: Any) -> str:
        if isinstance(v, torch.Tensor) and v.numel() == 1:
            v = v.item()
        if v is None:
            return ""
        if isinstance(v, (bool, np.bool_)):
            return str(bool(v))
        if isinstance(v, (int, np.integer)):
            return str(int(v))
        if isinstance(v, (float, np.floating)):
            return "" if math.isnan(v) else format(float(v), self.floatfmt)
        if isinstance(v, (list, tuple, np.ndarray, torch.Tensor)) and len(v) > 0:
            # Several runs of one number: report mean ± std, as the book does everywhere.
            a = _np(v).astype(np.float64).reshape(-1)
            mean = format(a.mean(), self.floatfmt)
            return mean if len(a) == 1 else f"{mean} ± {format(a.std(ddof=1), self.floatfmt)}"
        return str(v)

    @staticmethod
    def _numeric(v: Any) -> bool:
        return isinstance(v, (int, float, np.number, list, tuple, np.ndarray, torch.Tensor)) \
            and not isinstance(v, bool)

    def _text_cells(self) -> list[list[str]]:
        return [[self._cell(v) for v in row] for row in self.rows]

    def _right(self) -> list[bool]:
        # A column is right-aligned when every filled cell in it is a number.
        return [all(self._numeric(r[j]) for r in self.rows if r[j] is not None) and
                any(r[j] is not None for r in self.rows) for j in range(len(self.columns))]

    def to_markdown(self) -> str:
        """The table as aligned GitHub-flavoured markdown."""
        cells = self._text_cells()
        right = self._right()
        widths = [max([len(c)] + [len(r[j]) for r in cells]) for j, c in enumerate(self.columns)]

        def line(items: list[str]) -> str:
            return "| " + " | ".join(s.rjust(w) if r else s.ljust(w)
                                     for s, w, r in zip(items, widths, right)) + " |"

        rule = "|" + "|".join("-" * (w + 1) + ":" if r else ":" + "-" * (w + 1)
                              for w, r in zip(widths, right)) + "|"
        return "\n".join([line(self.columns), rule] + [line(r) for r in cells])

    def _repr_html_(self) -> str:
        right = self._right()
        align = ["right" if r else "left" for r in right]
        head = "".join(f'<th style="text-align:{a}">{html.escape(c)}</th>'
                       for c, a in zip(self.columns, align))
        body = "".join(
            "<tr>" + "".join(f'<td style="text-align:{a}">{html.escape(s)}</td>'
                             for s, a in zip(r, align)) + "</tr>"
            for r in self._text_cells())
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def __repr__(self) -> str:
        return self.to_markdown()

    __str__ = __repr__

    def __len__(self) -> int:
        return len(self.rows)


def results_table(
    rows: Sequence[Mapping[str, Any]] | Mapping[str, Any],
    floatfmt: str = ".3f",
) -> Table:
    """A results table that shows as HTML in Jupyter and as aligned text when printed.

    Args:
        rows: a list of dicts (one per row; columns in order of first appearance), or a dict
            of dicts (row name -> row), or a dict name -> value. A list of numbers in a cell
            is shown as mean ± std of runs.
        floatfmt: format spec of floats.

    Example:
        >>> rows = [{"method": "SimCLR", "knn": 0.8123}, {"method": "BYOL", "knn": 0.84}]
        >>> print(results_table(rows))
        | method |   knn |
        |:-------|------:|
        | SimCLR | 0.812 |
        | BYOL   | 0.840 |
    """
    if isinstance(rows, Mapping):
        vals = list(rows.values())
        if vals and all(isinstance(v, Mapping) for v in vals):
            rows = [{"name": k, **v} for k, v in rows.items()]
        else:  # name -> value, or name -> runs (shown as mean ± std, like plot_bars)
            rows = [{"name": k, "value": v} for k, v in rows.items()]
    columns: list[str] = []
    for r in rows:
        columns += [str(k) for k in r if str(k) not in columns]
    table = [[{str(k): v for k, v in r.items()}.get(c) for c in columns] for r in rows]
    return Table(columns, table, floatfmt)
