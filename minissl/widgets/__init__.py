"""Interactive explorers for the book (ipywidgets), with a static figure that always shows.

A live slider needs a running kernel and a frontend; the rendered book and nbval have
neither. So every explorer follows one rule:

* it always displays a picture of its default settings (what the static book shows and
  what nbval checks), and
* when widgets can work, that picture travels in the same output as the live explorer: one
  display bundle holds the widget view, the PNG and a text stand-in. Jupyter and Colab
  show the live explorer; the book (whose ``_config.yml`` ranks the PNG above the widget
  view) shows the picture, with the cell's caption and alt text.

``static=True`` (or the environment variable ``MINISSL_STATIC_WIDGETS=1``, which wins)
shows only the figure. Without ipywidgets installed the figure is shown with a one-line note.
Either way the call returns an :class:`Explorer`, whose :meth:`Explorer.render` draws the
figure for any slider values, so the explorer can be tested without a frontend.

Example:
    >>> import matplotlib.pyplot as plt
    >>> from minissl import viz
    >>> def bars(a=1.0, b=2.0):
    ...     return viz.plot_bars({"a": a, "b": b})
    >>> ex = slider_explorer(bars, a=(0.0, 5.0, 0.5, 1.0), b=(0.0, 5.0, 0.5, 2.0), show=False)
    >>> fig = ex.render(a=4.0)
    >>> [float(p.get_height()) for p in fig.axes[0].patches]
    [4.0, 2.0]
    >>> plt.close(fig)
"""

from minissl.widgets.augmentation import (
    AUGMENTATION_SLIDERS,
    augmentation_explorer,
    build_augmentation,
)
from minissl.widgets.explorer import ENV_VAR, Explorer, slider_explorer
from minissl.widgets.latent import latent_explorer

__all__ = ["ENV_VAR", "Explorer", "slider_explorer", "augmentation_explorer",
           "build_augmentation", "latent_explorer", "AUGMENTATION_SLIDERS"]
