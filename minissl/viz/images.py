"""Image plots: a grid of images, and an image next to its augmented views."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from minissl.viz._base import _axes, _images, _imshow, _mosaic, _styled


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
        >>> import matplotlib.pyplot as plt
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
        >>> import matplotlib.pyplot as plt
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
