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
    >>> from minissl import viz
    >>> def bars(a=1.0, b=2.0):
    ...     return viz.plot_bars({"a": a, "b": b})
    >>> ex = slider_explorer(bars, a=(0.0, 5.0, 0.5, 1.0), b=(0.0, 5.0, 0.5, 2.0), show=False)
    >>> fig = ex.render(a=4.0)
    >>> [float(p.get_height()) for p in fig.axes[0].patches]
    [4.0, 2.0]
    >>> plt.close(fig)
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

__all__ = ["ENV_VAR", "Explorer", "slider_explorer", "augmentation_explorer",
           "build_augmentation", "latent_explorer"]

ENV_VAR = "MINISSL_STATIC_WIDGETS"  # "1" forces static figures everywhere (CI, the book)


@dataclass(frozen=True)
class _Spec:
    """One control: a numeric slider (lo, hi, step, default) or a checkbox (bool default)."""

    name: str
    lo: float = 0.0
    hi: float = 1.0
    step: float = 0.01
    default: Any = 0.0

    @property
    def is_bool(self) -> bool:
        return isinstance(self.default, bool)

    @property
    def is_int(self) -> bool:
        vals = (self.lo, self.hi, self.step, self.default)
        return all(isinstance(v, int) and not isinstance(v, bool) for v in vals)


def _parse_spec(name: str, spec: Any) -> _Spec:
    if isinstance(spec, bool):
        return _Spec(name, default=spec)
    if not isinstance(spec, (tuple, list)) or not 2 <= len(spec) <= 4:
        raise ValueError(f"slider {name!r} must be (min, max), (min, max, step), "
                         f"(min, max, step, default) or a bool; got {spec!r}")
    lo, hi = spec[0], spec[1]
    step = spec[2] if len(spec) > 2 else (hi - lo) / 100
    default = spec[3] if len(spec) > 3 else lo
    if not lo < hi or step <= 0 or not lo <= default <= hi:
        raise ValueError(f"slider {name!r} needs min < max, step > 0 and min <= default <= "
                         f"max; got {spec!r}")
    return _Spec(name, lo, hi, step, default)


def _static_requested(static: bool | None) -> bool:
    if os.environ.get(ENV_VAR, "").strip().lower() in ("1", "true", "yes"):
        return True
    return bool(static)


def _ipython():
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)  # a figure left open in pyplot would resurface in a later cell
    return buf.getvalue()


class Explorer:
    """Sliders driving a figure; built by :func:`slider_explorer`.

    Attributes:
        values: the current control values (the defaults until a slider moves).
        seed: the seed passed to the render function (None without a resample button).
        static: True when only the static figure is shown.
        widget: the ipywidgets container, or None in static mode.
        controls: control name -> ipywidget (empty in static mode).
        note: why the explorer is static, when it is.
    """

    def __init__(
        self,
        render_fn: Callable[..., Figure],
        specs: dict[str, _Spec],
        *,
        static: bool | None = None,
        title: str | None = None,
        seed: int | None = None,
    ) -> None:
        self.render_fn = render_fn
        self.specs = specs
        self.defaults = {k: s.default for k, s in specs.items()}
        self.values = dict(self.defaults)
        self.seed = seed
        self.title = title
        self.static = _static_requested(static)
        self.note: str | None = "static mode was requested" if self.static else None
        self.widget = None
        self.controls: dict[str, Any] = {}
        self._shown_at: int | None = None
        if not self.static:
            try:
                import ipywidgets  # noqa: F401
            except ImportError:
                self.static = True
                self.note = ("ipywidgets is not installed, so this is a static figure "
                             "(pip install ipywidgets for the interactive explorer)")
            else:
                self._build()

    # ------------------------------------------------------------------ rendering
    def render(self, values: dict[str, Any] | None = None, **overrides: Any) -> Figure:
        """The figure for the current values, changed by ``values`` and ``overrides``.

        Unknown names raise a ``ValueError`` listing the valid ones. ``seed=`` may be
        overridden when the explorer has a resample button.
        """
        changes = {**(values or {}), **overrides}
        valid = set(self.specs) | ({"seed"} if self.seed is not None else set())
        unknown = sorted(set(changes) - valid)
        if unknown:
            raise ValueError(f"unknown control(s) {unknown}; valid: {sorted(valid)}")
        kwargs = {**self.values, **changes}
        if self.seed is not None:
            kwargs.setdefault("seed", self.seed)
        return self.render_fn(**kwargs)

    def set(self, **values: Any) -> None:
        """Move controls to new values (and redraw the live view, when there is one)."""
        unknown = sorted(set(values) - set(self.specs))
        if unknown:
            raise ValueError(f"unknown control(s) {unknown}; valid: {sorted(self.specs)}")
        for name, v in values.items():
            if name in self.controls:
                self.controls[name].value = v  # the observer updates self.values and redraws
            else:
                self.values[name] = v

    def resample(self) -> None:
        """Draw new random samples: the next seed (what the resample button does)."""
        if self.seed is None:
            raise ValueError("this explorer has no seed; build it with seed=... to resample")
        self.seed += 1
        self._refresh()

    # ------------------------------------------------------------------ widgets
    def _build(self) -> None:
        import ipywidgets as w

        style = {"description_width": "initial"}
        for name, s in self.specs.items():
            label = name.replace("_", " ")
            if s.is_bool:
                c = w.Checkbox(value=s.default, description=label, style=style)
            else:
                cls = w.IntSlider if s.is_int else w.FloatSlider
                # continuous_update=False: redraw on release, a figure takes ~0.1 s to draw
                c = cls(value=s.default, min=s.lo, max=s.hi, step=s.step, description=label,
                        continuous_update=False, style=style,
                        layout=w.Layout(width="320px"))
            c.observe(self._on_change(name), names="value")
            self.controls[name] = c
        rows = list(self.controls.values())
        if self.seed is not None:
            button = w.Button(description="resample", icon="refresh",
                              tooltip="draw new random samples")
            button.on_click(lambda _: self.resample())
            rows.append(button)
        self._status = w.HTML()
        self._image = w.Image(format="png")
        header = [w.HTML(f"<b>{self.title}</b>")] if self.title else []
        self.widget = w.VBox(header + [
            w.HBox([w.VBox(rows), self._image], layout=w.Layout(flex_flow="row wrap")),
            self._status,
        ])
        self._refresh()

    def _on_change(self, name: str) -> Callable[[dict], None]:
        def handler(change: dict) -> None:
            self.values[name] = change["new"]
            self._refresh()
        return handler

    def _refresh(self) -> None:
        if self.widget is None:
            return
        try:
            self._image.value = _png(self.render())
            self._status.value = ""
        except Exception as e:  # a callback's exception would vanish into the kernel log
            self._status.value = f"<span style='color:#b00'>{type(e).__name__}: {e}</span>"

    # ------------------------------------------------------------------ display
    def show(self) -> None:
        """Display the static figure of the defaults, then the live explorer when there is one."""
        from IPython.display import display

        ip = _ipython()
        self._shown_at = getattr(ip, "execution_count", None)
        if self.note and self.note.startswith("ipywidgets"):
            print(self.note)
        fig = self.render(self.defaults)
        bundle = None
        if self.widget is not None:
            try:  # one output: the live widget, its picture for static pages, a text stand-in
                bundle = dict(self.widget._repr_mimebundle_())
                bundle["image/png"] = base64.b64encode(_png(fig)).decode("ascii")
                bundle["text/plain"] = "(interactive explorer: run the notebook to use it)"
            except Exception:  # an ipywidgets without mime bundles: figure, then widget
                bundle = None
        if bundle:
            display(bundle, raw=True)
        else:
            display(fig)
            if self.widget is not None:
                display(self.widget)
        plt.close(fig)  # displayed once; pyplot must not draw it again at the end of the cell

    def _ipython_display_(self) -> None:
        # The call that built the explorer already displayed it in this cell; showing it
        # again as the cell's value would duplicate it.
        ip = _ipython()
        if ip is not None and self._shown_at == ip.execution_count:
            return
        self.show()

    def __repr__(self) -> str:
        mode = "static" if self.static else "live"
        return f"Explorer({mode}; controls: {', '.join(self.specs)})"


def slider_explorer(
    render_fn: Callable[..., Figure],
    /,
    *,
    static: bool | None = None,
    show: bool = True,
    title: str | None = None,
    seed: int | None = None,
    **sliders: Any,
) -> Explorer:
    """Build an explorer whose sliders feed ``render_fn(**values) -> Figure``.

    Displays the static figure of the defaults and, when widgets can work, the live explorer
    (see the module docstring for the rule).

    Args:
        render_fn: draws a figure from keyword arguments named like the sliders (plus
            ``seed`` when ``seed`` is given). It should create a new figure each call.
        static: None: figure + live explorer; True: only the figure. ``MINISSL_STATIC_WIDGETS=1``
            forces True.
        show: display right away (False builds the explorer silently, e.g. in tests).
        title: a heading over the live explorer.
        seed: when given, a "resample" button increments it and ``render_fn`` receives it.
        **sliders: ``name=(min, max, step, default)`` (ints throughout give an integer
            slider; ``(min, max)`` and ``(min, max, step)`` default to ``min``), or
            ``name=True/False`` for a checkbox. The names ``static``, ``show``, ``title`` and
            ``seed`` are taken by the options above.

    Example:
        >>> from minissl import viz
        >>> ex = slider_explorer(lambda n: viz.plot_bars({"x": n}), n=(1, 10, 1, 3),
        ...                      static=True, show=False)
        >>> ex.static, ex.widget is None
        (True, True)
        >>> plt.close(ex.render(n=5))
    """
    if not sliders:
        raise ValueError("give at least one slider, e.g. slider_explorer(fn, k=(1, 10, 1, 3))")
    specs = {name: _parse_spec(name, s) for name, s in sliders.items()}
    ex = Explorer(render_fn, specs, static=static, title=title, seed=seed)
    if show:
        ex.show()
    return ex


# --------------------------------------------------------------------------- augmentations

# name -> (min, max, step, default); the defaults are SimCLR-like strengths.
AUGMENTATION_SLIDERS: dict[str, tuple[float, float, float, float]] = {
    "crop_min_scale": (0.05, 1.0, 0.05, 0.2),
    "flip_p": (0.0, 1.0, 0.1, 0.5),
    "brightness": (0.0, 1.0, 0.05, 0.4),
    "contrast": (0.0, 1.0, 0.05, 0.4),
    "saturation": (0.0, 1.0, 0.05, 0.4),
    "hue": (0.0, 0.5, 0.02, 0.1),
    "grayscale_p": (0.0, 1.0, 0.1, 0.2),
    "blur_sigma": (0.0, 3.0, 0.1, 0.0),
    "solarize_threshold": (0.0, 1.0, 0.05, 1.0),
}


def build_augmentation(
    size: int,
    crop_min_scale: float = 0.2,
    flip_p: float = 0.5,
    brightness: float = 0.4,
    contrast: float = 0.4,
    saturation: float = 0.4,
    hue: float = 0.1,
    grayscale_p: float = 0.2,
    blur_sigma: float = 0.0,
    solarize_threshold: float = 1.0,
) -> torch.nn.Module:
    """The explorer's pipeline: crop, flip, jitter, grayscale, blur, solarize (SimCLR's order).

    Strengths are applied every time they are non-zero ("what you set is what you see"):
    colour jitter with p = 1, blur with exactly ``blur_sigma`` (off at 0) and solarization of
    every image when ``solarize_threshold`` < 1 (off at 1).

    Args:
        size: side of the output crops.
        crop_min_scale: smallest crop area, as a fraction of the image.
        flip_p: probability of a horizontal flip.
        brightness, contrast, saturation, hue: colour jitter strengths (hue in turns).
        grayscale_p: probability of dropping colour.
        blur_sigma: Gaussian blur width in pixels.
        solarize_threshold: pixels at or above it are inverted.

    Example:
        >>> aug = build_augmentation(8, blur_sigma=1.0)
        >>> aug(torch.rand(2, 3, 12, 12), generator=torch.Generator().manual_seed(0)).shape
        torch.Size([2, 3, 8, 8])
    """
    from minissl import augment as A

    ops: list[torch.nn.Module] = [A.RandomResizedCrop(size, scale=(crop_min_scale, 1.0))]
    if flip_p > 0:
        ops.append(A.RandomHorizontalFlip(p=flip_p))
    if brightness or contrast or saturation or hue:
        ops.append(A.ColorJitter(brightness, contrast, saturation, hue, p=1.0))
    if grayscale_p > 0:
        ops.append(A.RandomGrayscale(p=grayscale_p))
    if blur_sigma > 0:
        # Kernel wide enough for +-3 sigma; the op shrinks it on images that are too small.
        k = 2 * int(3 * blur_sigma + 0.5) + 1
        ops.append(A.GaussianBlur(k, sigma=(blur_sigma, blur_sigma), p=1.0))
    if solarize_threshold < 1.0:
        ops.append(A.Solarize(solarize_threshold, p=1.0))
    return A.Compose(*ops)


def augmentation_explorer(
    images: Any,
    size: int | None = None,
    seed: int = 0,
    n_images: int = 6,
    n_views: int = 3,
    *,
    static: bool | None = None,
    show: bool = True,
) -> Explorer:
    """Sliders for every augmentation's strength, showing originals and augmented views.

    Moving a slider rebuilds the pipeline (:func:`build_augmentation`) and redraws;
    "resample" draws new random views. The static figure shows the default settings.

    Args:
        images: (N, C, H, W) in [0, 1] (tensor or array), or a data set with ``.images``;
            the first ``n_images`` are used.
        size: side of the augmented crops (default: the images' height).
        seed: seed of the first draw of views.
        n_images: examples shown (columns).
        n_views: augmented views per example (rows under the originals).
        static: see :func:`slider_explorer`.
        show: display right away.

    Example:
        >>> ex = augmentation_explorer(torch.rand(3, 3, 16, 16), n_views=2, static=True, show=False)
        >>> fig = ex.render(solarize_threshold=0.5)
        >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
        ['original', 'view 1', 'view 2']
        >>> plt.close(fig)
    """
    from minissl import viz

    x = getattr(images, "images", images)
    x = torch.as_tensor(x, dtype=torch.float32)[:n_images]
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"images must have shape (N, C, H, W) with C in {{1, 3}}; "
                         f"got {tuple(x.shape)}")
    size = size or x.shape[-2]

    def render(seed: int, **strengths: float) -> Figure:
        aug = build_augmentation(size, **strengths)
        g = torch.Generator().manual_seed(seed)
        views = [aug(x, generator=g) for _ in range(n_views)]  # one generator: new draw each
        return viz.show_views(x, views, title="augmented views")

    return slider_explorer(render, static=static, show=show, seed=seed,
                           title="Augmentation explorer", **AUGMENTATION_SLIDERS)


# --------------------------------------------------------------------------- latent codes


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
