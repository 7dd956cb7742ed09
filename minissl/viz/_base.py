"""The book's plot style, and the helpers every plot uses: figures, arrays, image mosaics."""

from __future__ import annotations

import contextlib
import functools
import io
import math
from collections.abc import Iterator
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from minissl.utils import to_numpy

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


def _styled(fn):
    """Run a plotting function under the book's rcParams (text takes them when it is made)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with style():
            return fn(*args, **kwargs)

    return wrapper


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
    arr = to_numpy(images).astype(np.float32, copy=False)
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
