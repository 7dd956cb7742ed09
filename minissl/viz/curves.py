"""Curves and bars: training histories, scores per method, scores against a budget."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from minissl.utils import to_numpy
from minissl.viz._base import _axes, _figure, _fmt, _styled


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
    vals = [to_numpy(v).astype(np.float64).reshape(-1) for v in results.values()]
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
    xs = to_numpy(x).astype(np.float64).reshape(-1)
    fig, ax = _axes(ax, (5.5, 3.6))
    for i, (name, y) in enumerate(ys.items()):
        arr = to_numpy(y).astype(np.float64)
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
