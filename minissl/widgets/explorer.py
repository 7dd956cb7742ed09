"""The Explorer: sliders that drive a figure, whose static picture always shows.

:func:`slider_explorer` builds one from a render function; the rule it follows (a static
figure always, the live explorer in the same output when widgets can work) is described in
:mod:`minissl.widgets`.
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

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
    (see :mod:`minissl.widgets` for the rule).

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
