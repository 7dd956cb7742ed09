"""Plots for the book: image grids, training curves, embeddings, bar charts, heatmaps, diagrams.

Every function returns a matplotlib :class:`~matplotlib.figure.Figure` and never calls
``plt.show()``. In a notebook, leave the figure as the last expression of the cell, or call
``plt.show()``; either way it is drawn exactly once. Assigning it (``fig = plot_bars(...)``)
also draws it at the end of the cell. Functions that take ``ax=`` draw into your axes and
return its figure; that figure is yours, so finish such a cell with ``plt.show()``.

Inputs may be torch tensors or NumPy arrays. Images are (N, C, H, W) floats in [0, 1] with
C in {1, 3}. Categorical colours come from matplotlib's colour-blind-friendly ``tab10``.

Example:
    >>> import matplotlib.pyplot as plt
    >>> fig = plot_bars({"SimCLR": 0.81, "BYOL": 0.84}, chance=0.1)
    >>> len(fig.axes[0].patches)
    2
    >>> plt.close(fig)

The style and shared helpers live in ``_base``, the plots in ``images``, ``curves`` and
``maps``, the block diagrams of the method families in ``diagrams``; results tables in
:mod:`minissl.report` (``viz.results_table`` is the same function).
"""

from minissl.report import Table, results_table  # noqa: F401  (chapters call viz.results_table)
from minissl.viz._base import BookFigure, style
from minissl.viz.curves import plot_bars, plot_curves, plot_history
from minissl.viz.diagrams import (
    autoencoder_diagram,
    contrastive_diagram,
    cpc_diagram,
    gan_diagram,
    language_model_diagram,
    self_distillation_diagram,
    swav_diagram,
)
from minissl.viz.images import image_grid, show_views
from minissl.viz.maps import plot_confusion_matrix, plot_embedding_2d, plot_similarity_matrix

__all__ = [
    "BookFigure", "style", "image_grid", "show_views", "plot_history", "plot_embedding_2d",
    "plot_bars", "plot_similarity_matrix", "plot_confusion_matrix", "plot_curves",
    "contrastive_diagram", "self_distillation_diagram", "swav_diagram", "language_model_diagram",
    "autoencoder_diagram", "gan_diagram", "cpc_diagram",
]
