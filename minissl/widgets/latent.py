"""The latent explorer: sliders on the coordinates of a code, and the image it decodes to."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from minissl.widgets.explorer import Explorer, slider_explorer


def _decode_fn(decoder: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """``codes (B, Z) -> images (B, C, H, W)`` without gradients, in eval mode, on the CPU."""
    module = decoder if isinstance(decoder, torch.nn.Module) else None
    fn = getattr(decoder, "decode", decoder)
    if not callable(fn):
        raise TypeError(f"decoder must be a model with .decode(z) (e.g. a VAE) or a callable "
                        f"mapping codes (B, Z) to images (B, C, H, W); got {type(decoder)}")

    def decode(z: torch.Tensor) -> torch.Tensor:
        params = list(module.parameters()) if module is not None else []
        device = params[0].device if params else z.device
        was_training = module.training if module is not None else False
        if module is not None:
            module.eval()  # batch norm must use its running statistics for one code
        try:
            with torch.no_grad():
                return fn(z.to(device)).float().cpu()
        finally:
            if module is not None:
                module.train(was_training)

    return decode


def latent_explorer(
    decoder: Any,
    latent_dim: int | None = None,
    dims: Any = None,
    base: Any = None,
    span: float = 3.0,
    step: float = 0.1,
    points: Any = None,
    labels: Any = None,
    *,
    static: bool | None = None,
    show: bool = True,
) -> Explorer:
    """Sliders on the coordinates of a latent code; the decoded image updates as they move.

    Each slider ``z<d>`` sets coordinate ``d`` of the code, the other coordinates keep the
    values of ``base`` (the prior mean, zeros, by default), and the figure shows the decoded
    image. Given the codes of real images (``points``), a second panel places them on the
    plane of the first two slider coordinates, coloured by ``labels``, with a star at the
    current code: one sees which region of the latent space decodes to what. The static
    figure shows the defaults (``base``).

    Args:
        decoder: a model with ``.decode(z)`` (e.g. :class:`minissl.methods.VAE`) or a callable
            mapping codes (B, Z) to images (B, C, H, W) in [0, 1]. A model is run in eval
            mode without gradients and left in the mode it was in.
        latent_dim: Z (default: ``decoder.latent_dim``).
        dims: the coordinates that get a slider (default: the first ``min(Z, 8)``).
        base: (Z,) the code the sliders start from, e.g. the code of an image (default zeros).
        span: the sliders run from ``-span`` to ``span`` (widened to include ``base``).
        step: the sliders' step.
        points: optional (N, Z) codes of real images for the map panel (needs 2+ ``dims``).
        labels: optional (N,) integer labels colouring ``points``.
        static: see :func:`slider_explorer`.
        show: display right away.

    Example:
        >>> def decode(z):  # a "decoder" whose image is the code's first coordinate
        ...     return torch.sigmoid(z[:, :1, None, None]).expand(-1, 1, 4, 4)
        >>> ex = latent_explorer(decode, latent_dim=3, static=True, show=False)
        >>> sorted(ex.values)
        ['z0', 'z1', 'z2']
        >>> fig = ex.render(z0=-100.0)
        >>> float(fig.axes[0].images[0].get_array().max())
        0.0
        >>> plt.close(fig)
    """
    decode = _decode_fn(decoder)
    Z = latent_dim if latent_dim is not None else getattr(decoder, "latent_dim", None)
    if Z is None:
        raise ValueError("give latent_dim=Z: the decoder has no .latent_dim attribute")
    Z = int(Z)
    dims = list(range(min(Z, 8))) if dims is None else [int(d) for d in dims]
    if not dims or any(not 0 <= d < Z for d in dims) or len(set(dims)) != len(dims):
        raise ValueError(f"dims must be distinct coordinates in [0, {Z}); got {dims}")
    base_z = torch.zeros(Z) if base is None else torch.as_tensor(base).detach().float().cpu()
    if base_z.numel() != Z:
        raise ValueError(f"base must be one code of shape ({Z},); got {tuple(base_z.shape)}")
    base_z = base_z.reshape(Z)  # a (1, Z) code, e.g. from encoder(x[None]), is fine too
    if span <= 0 or step <= 0:
        raise ValueError(f"span and step must be positive; got span={span}, step={step}")

    pts = lab = None
    if points is not None:
        pts = torch.as_tensor(points, dtype=torch.float32).detach().cpu()
        if pts.dim() != 2 or pts.shape[1] != Z:
            raise ValueError(f"points must have shape (N, {Z}); got {tuple(pts.shape)}")
        if len(dims) < 2:
            raise ValueError("the map of points needs at least two slider dims")
        if labels is not None:
            lab = torch.as_tensor(labels).reshape(-1).cpu()
            if len(lab) != len(pts):
                raise ValueError(f"labels must have one entry per point: {len(pts)} points, "
                                 f"{len(lab)} labels")

    sliders = {}
    for d in dims:
        v = float(base_z[d])
        sliders[f"z{d}"] = (min(-float(span), v), max(float(span), v), float(step), v)

    def render(**values: float) -> Figure:
        from minissl import viz
        from minissl.viz import _base

        z = base_z.clone()
        for d in dims:
            z[d] = float(values[f"z{d}"])
        image = _base._images(decode(z[None]), "decoded images")[0]  # (C, H, W) in [0, 1]
        ncols = 1 if pts is None else 2
        fig, axes = _base._figure(1, ncols, figsize=(3.2 * ncols + (1.0 if ncols == 2 else 0),
                                                   3.2))
        if pts is not None:
            ax = axes[0, 0]
            a, b = dims[0], dims[1]
            with viz.style():
                if lab is None:
                    ax.scatter(pts[:, a], pts[:, b], s=6, alpha=0.5, color="tab:blue",
                               linewidths=0)
                else:
                    cmap = plt.get_cmap("tab10")
                    for i, c in enumerate(lab.unique().tolist()):
                        m = lab == c
                        ax.scatter(pts[m, a], pts[m, b], s=6, alpha=0.6, linewidths=0,
                                   color=cmap(i % 10), label=str(c))
                    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), markerscale=2.5,
                              title="label")
                ax.scatter([z[a]], [z[b]], marker="*", s=260, color="black",
                           edgecolors="white", zorder=3, label="_current")
                ax.set_xlabel(f"z{a}")
                ax.set_ylabel(f"z{b}")
                ax.set_title("codes of real images")
        ax = axes[0, -1]
        _base._imshow(ax, image)
        ax.set_xticks([])
        ax.set_yticks([])
        shown = ", ".join(f"z{d}={float(z[d]):+.1f}" for d in dims[:4])
        more = ", ..." if len(dims) > 4 else ""
        ax.set_title("decoded image", fontsize=11)
        ax.set_xlabel(shown + more, fontsize=8)
        return fig

    return slider_explorer(render, static=static, show=show, title="Latent explorer",
                           **sliders)
