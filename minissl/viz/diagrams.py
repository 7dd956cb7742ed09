"""Block diagrams of the method families, drawn with boxes and arrows: one function per family.

Each function draws its diagram from a small table of boxes and arrows and returns a
:class:`~matplotlib.figure.Figure`. Boxes are coloured by role: grey for data, blue for
trained networks, green for networks that get no gradient (moving averages), orange for
heads and operations, red for the loss.

Example:
    >>> import matplotlib.pyplot as plt
    >>> fig = contrastive_diagram()
    >>> [ax.get_title() for ax in fig.axes]
    ['SimCLR', 'MoCo']
    >>> plt.close(fig)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.text import Text

from minissl.viz._base import _figure, _styled

# Edge colours by role (tab10); the fill is the same colour, faint.
ROLES = {"data": "tab:gray", "net": "tab:blue", "ema": "tab:green", "op": "tab:orange",
         "loss": "tab:red"}


def _box(ax: Axes, x: float, y: float, text: str, role: str = "net") -> Text:
    """A rounded box of ``text`` centred on (x, y), sized to the text."""
    colour = ROLES[role]
    return ax.text(x, y, text, ha="center", va="center", fontsize=9, zorder=3,
                   multialignment="center",
                   bbox=dict(boxstyle="round,pad=0.45", fc=to_rgba(colour, 0.15), ec=colour,
                             lw=1.2))


def _arrow(ax: Axes, start: Any, end: Any, label: str | None = None, dashed: bool = False,
           rad: float = 0.0, at: tuple[float, float] | None = None, both: bool = False) -> None:
    """An arrow between two boxes (or points); ``label`` sits at its middle or at ``at``."""
    def where(end):
        return end.get_position() if isinstance(end, Text) else end

    def patch(end):
        return end.get_bbox_patch() if isinstance(end, Text) else None

    (x0, y0), (x1, y1) = where(start), where(end)
    ax.annotate("", xy=(x1, y1), xytext=(x0, y0), zorder=2, arrowprops=dict(
        arrowstyle="<|-|>" if both else "-|>", color="0.25", lw=1.1, mutation_scale=11,
        linestyle="--" if dashed else "-", patchA=patch(start), patchB=patch(end),
        shrinkA=1, shrinkB=1, connectionstyle=f"arc3,rad={rad}"))
    if label:
        lx, ly = at if at is not None else ((x0 + x1) / 2, (y0 + y1) / 2)
        ax.text(lx, ly, label, ha="center", va="center", fontsize=8, color="0.15", zorder=4,
                style="italic", bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none"))


def _panel(ax: Axes, title: str, size: tuple[float, float], boxes: dict[str, tuple],
           arrows: list[tuple], notes: list[tuple] = ()) -> dict[str, Text]:
    """Draw ``boxes`` {key: (x, y, text[, role])} and ``arrows`` (a, b[, label[, options]])
    on a blank axes of ``size`` data units; ``notes`` are free texts (x, y, text)."""
    ax.set_xlim(0, size[0])
    ax.set_ylim(0, size[1])
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title)
    drawn = {key: _box(ax, *spec) for key, spec in boxes.items()}
    for a, b, *rest in arrows:
        label = rest[0] if rest else None
        options = rest[1] if len(rest) > 1 else {}
        _arrow(ax, drawn.get(a, a), drawn.get(b, b), label, **options)
    for x, y, text, *align in notes:
        ax.text(x, y, text, ha=align[0] if align else "center", va="center", fontsize=8,
                color="0.3", zorder=4,
                bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none"))
    return drawn


def _panels(rows: int, cols: int, figsize: tuple[float, float]) -> tuple[Figure, list[Axes]]:
    fig, axes = _figure(rows, cols, figsize=figsize)
    return fig, list(axes.flat)


@_styled
def contrastive_diagram() -> Figure:
    """SimCLR and MoCo as block diagrams: two views, encoders, and where the negatives come from.

    Example:
        >>> import matplotlib.pyplot as plt
        >>> fig = contrastive_diagram()
        >>> any("queue" in t.get_text() for t in fig.axes[1].texts)
        True
        >>> plt.close(fig)
    """
    fig, (left, right) = _panels(2, 1, (9, 7.0))
    _panel(left, "SimCLR", (10, 4), boxes={
        "x": (0.6, 2, "image\n$x$", "data"),
        "v1": (2.2, 3.2, r"view $\tilde x_i$", "data"),
        "v2": (2.2, 0.8, r"view $\tilde x_j$", "data"),
        "f1": (4.3, 3.2, "encoder $f$"),
        "f2": (4.3, 0.8, "encoder $f$"),
        "g1": (6.4, 3.2, "projection\nhead $g$", "op"),
        "g2": (6.4, 0.8, "projection\nhead $g$", "op"),
        "loss": (8.8, 2, "NT-Xent over\nthe batch:\npartner among\n$2N-1$ views", "loss"),
    }, arrows=[
        ("x", "v1", "$t$"), ("x", "v2", "$t'$"), ("v1", "f1"), ("v2", "f2"),
        ("f1", "f2", "shared weights", {"dashed": True, "both": True}),
        ("f1", "g1", "$h_i$"), ("f2", "g2", "$h_j$"),
        ("g1", "loss", "$z_i$"), ("g2", "loss", "$z_j$"),
    ])
    _panel(right, "MoCo", (10, 4), boxes={
        "x": (0.6, 2, "image\n$x$", "data"),
        "vq": (2.2, 3.3, r"view $x^q$", "data"),
        "vk": (2.2, 0.7, r"view $x^k$", "data"),
        "fq": (4.4, 3.3, "query\nencoder $f_q$"),
        "fk": (4.4, 0.7, "momentum\nencoder $f_k$", "ema"),
        "queue": (6.9, 0.7, "queue of $K$\nearlier keys", "data"),
        "loss": (8.8, 2.4, "InfoNCE:\n$q$ finds $k$\namong the\nqueued keys", "loss"),
    }, arrows=[
        ("x", "vq"), ("x", "vk"), ("vq", "fq"), ("vk", "fk"),
        ("fq", "fk", "EMA: $\\theta_k \\leftarrow m\\theta_k + (1-m)\\theta_q$",
         {"dashed": True, "at": (4.4, 2.0)}),
        ("fq", "loss", "$q$"), ("fk", "loss", "$k$"),
        ("fk", "queue", "enqueue"), ("queue", "loss", "negatives"),
    ])
    return fig


@_styled
def self_distillation_diagram() -> Figure:
    """BYOL and SimSiam as block diagrams: a predictor on one branch, a stop-gradient on the other.

    Example:
        >>> import matplotlib.pyplot as plt
        >>> fig = self_distillation_diagram()
        >>> [ax.get_title() for ax in fig.axes]
        ['BYOL', 'SimSiam']
        >>> plt.close(fig)
    """
    fig, (left, right) = _panels(2, 1, (9, 7.0))
    _panel(left, "BYOL", (10.4, 4), boxes={
        "v1": (0.6, 3.2, "view\n$v_1$", "data"),
        "v2": (0.6, 0.8, "view\n$v_2$", "data"),
        "f": (2.5, 3.2, r"online" "\n" r"encoder $f_\theta$"),
        "g": (4.7, 3.2, r"online" "\n" r"projector $g_\theta$"),
        "q": (6.9, 3.2, r"predictor $q_\theta$", "op"),
        "ft": (2.5, 0.8, r"target" "\n" r"encoder $f_\xi$", "ema"),
        "gt": (4.7, 0.8, r"target" "\n" r"projector $g_\xi$", "ema"),
        "sg": (6.9, 0.8, "stop-gradient", "op"),
        "loss": (9.2, 2, "negative\ncosine\n$\\mathcal{D}(p_1, z_2)$", "loss"),
    }, arrows=[
        ("v1", "f"), ("f", "g"), ("g", "q"), ("q", "loss", "$p_1$"),
        ("v2", "ft"), ("ft", "gt"), ("gt", "sg", "$z_2$"), ("sg", "loss"),
        ("g", "gt", "EMA: $\\xi \\leftarrow m\\xi + (1-m)\\theta$",
         {"dashed": True}),
    ])
    _panel(right, "SimSiam", (10.4, 4), boxes={
        "x": (0.6, 2, "image\n$x$", "data"),
        "v1": (2.1, 3.2, "view $v_1$", "data"),
        "v2": (2.1, 0.8, "view $v_2$", "data"),
        "f1": (4.3, 3.2, "encoder $f$\n(with projector)"),
        "f2": (4.3, 0.8, "encoder $f$\n(with projector)"),
        "h": (6.7, 3.2, "predictor $h$", "op"),
        "sg": (6.7, 0.8, "stop-gradient", "op"),
        "loss": (9.2, 2, "negative\ncosine\n$\\mathcal{D}(p_1, z_2)$", "loss"),
    }, arrows=[
        ("x", "v1"), ("x", "v2"), ("v1", "f1"), ("v2", "f2"),
        ("f1", "f2", "shared weights", {"dashed": True, "both": True}),
        ("f1", "h", "$z_1$"), ("f2", "sg", "$z_2$"), ("h", "loss", "$p_1$"), ("sg", "loss"),
    ], notes=[(5.2, -0.05, "no negatives, no moving average")])
    return fig


@_styled
def swav_diagram() -> Figure:
    """SwAV as a block diagram: prototype scores, Sinkhorn codes, and the swapped prediction.

    Example:
        >>> import matplotlib.pyplot as plt
        >>> fig = swav_diagram()
        >>> any("Sinkhorn" in t.get_text() for t in fig.axes[0].texts)
        True
        >>> plt.close(fig)
    """
    fig, (ax,) = _panels(1, 1, (10, 4.1))
    _panel(ax, "SwAV", (12.6, 4.9), boxes={
        "x": (0.6, 2.3, "image\n$x$", "data"),
        "v1": (2.1, 3.7, "view $v_1$", "data"),
        "v2": (2.1, 0.9, "view $v_2$", "data"),
        "f1": (4.0, 3.7, "encoder $f$"),
        "f2": (4.0, 0.9, "encoder $f$"),
        "s1": (6.2, 3.7, "prototype scores\n$s_1 = z_1^\\top C$", "op"),
        "s2": (6.2, 0.9, "prototype scores\n$s_2 = z_2^\\top C$", "op"),
        "q1": (8.7, 3.7, "Sinkhorn\ncodes $q_1$", "op"),
        "q2": (8.7, 0.9, "Sinkhorn\ncodes $q_2$", "op"),
        "l1": (11.4, 3.7, "predict $q_2$\nfrom $p_1$", "loss"),
        "l2": (11.4, 0.9, "predict $q_1$\nfrom $p_2$", "loss"),
    }, arrows=[
        ("x", "v1"), ("x", "v2"), ("v1", "f1"), ("v2", "f2"),
        ("f1", "f2", "shared", {"dashed": True, "both": True}),
        ("f1", "s1", "$z_1$"), ("f2", "s2", "$z_2$"),
        ("s1", "s2", "shared prototypes $C$", {"dashed": True, "both": True}),
        ("s1", "q1"), ("s2", "q2"),
        ("s1", "l1", r"$p_1 = \mathrm{softmax}(s_1/\tau)$", {"rad": -0.35, "at": (8.8, 4.5)}),
        ("s2", "l2", r"$p_2 = \mathrm{softmax}(s_2/\tau)$", {"rad": 0.35, "at": (8.8, 0.1)}),
        ("q1", "l2"), ("q2", "l1"),
    ], notes=[(10.05, 2.3, "swapped\nprediction", "center")])
    return fig


def _attention_mask(ax: Axes, x0: float, y0: float, allowed: np.ndarray, tokens: list[str],
                    cell: float = 0.42) -> None:
    """A small matrix: row i (a query token) may attend to column j where ``allowed[i, j]``."""
    n = len(tokens)
    for i in range(n):
        for j in range(n):
            ax.add_patch(Rectangle((x0 + j * cell, y0 - (i + 1) * cell), cell, cell,
                                   fc=to_rgba(ROLES["net"], 0.75 if allowed[i, j] else 0.0),
                                   ec="0.6", lw=0.6))
        ax.text(x0 - 0.08, y0 - (i + 0.5) * cell, tokens[i], ha="right", va="center",
                fontsize=7.5)
        ax.text(x0 + (i + 0.5) * cell, y0 + 0.08, tokens[i], ha="left", va="bottom",
                fontsize=7.5, rotation=50, rotation_mode="anchor")
    ax.text(x0 + n * cell / 2, y0 - n * cell - 0.12, "attention mask:\nrow attends to column",
            ha="center", va="top", fontsize=8, color="0.3")


@_styled
def language_model_diagram() -> Figure:
    """BERT and GPT side by side: masked tokens with full attention, next tokens with a causal mask.

    Example:
        >>> import matplotlib.pyplot as plt
        >>> fig = language_model_diagram()
        >>> [ax.get_title() for ax in fig.axes]
        ['BERT: masked language model', 'GPT: next-token prediction']
        >>> plt.close(fig)
    """
    fig, axes = _panels(2, 1, (9, 8.2))
    models = [
        ("BERT: masked language model", ["the", "[MASK]", "sat", "on", "[MASK]"],
         ["", "cat", "", "", "mat"], "Transformer\n(bidirectional\nattention)",
         np.ones((5, 5), dtype=bool), "predict the masked tokens\nfrom both sides"),
        ("GPT: next-token prediction", ["the", "cat", "sat", "on", "the"],
         ["cat", "sat", "on", "the", "mat"], "Transformer\n(causal\nattention)",
         np.tri(5, dtype=bool), "predict each next token\nfrom the tokens before it"),
    ]
    for ax, (title, inputs, targets, net, allowed, note) in zip(axes, models):
        boxes = {f"in{i}": (0.6 + i * 1.15, 3.9, tok, "data") for i, tok in enumerate(inputs)}
        boxes["net"] = (2.9, 2.3, net)
        boxes |= {f"out{i}": (0.6 + i * 1.15, 0.8, tok, "loss")
                  for i, tok in enumerate(targets) if tok}
        arrows = [(f"in{i}", "net") for i in range(len(inputs))]
        arrows += [("net", f"out{i}") for i, tok in enumerate(targets) if tok]
        _panel(ax, title, (9.6, 4.4), boxes, arrows, notes=[(6.0, 0.45, note, "left")])
        _attention_mask(ax, 7.0, 3.7, allowed, inputs)
    return fig


@_styled
def autoencoder_diagram() -> Figure:
    """The denoising autoencoder, the VAE and the masked autoencoder as three block diagrams.

    Example:
        >>> import matplotlib.pyplot as plt
        >>> fig = autoencoder_diagram()
        >>> [ax.get_title() for ax in fig.axes]
        ['Denoising autoencoder', 'Variational autoencoder', 'Masked autoencoder']
        >>> plt.close(fig)
    """
    fig, axes = _panels(3, 1, (10, 6.2))
    _panel(axes[0], "Denoising autoencoder", (13, 2.2), boxes={
        "x": (0.6, 1.5, "clean\n$x$", "data"),
        "c": (2.4, 1.5, "corrupt\n" r"$\tilde x \sim q(\tilde x \mid x)$", "op"),
        "f": (4.9, 1.5, r"encoder $f_\theta$"),
        "g": (7.4, 1.5, r"decoder $g_\phi$"),
        "xh": (9.5, 1.5, r"output $\hat x$", "data"),
        "loss": (11.9, 1.5, "$\\Vert \\hat x - x \\Vert^2$\nagainst the\nclean $x$", "loss"),
    }, arrows=[
        ("c", "f", r"$\tilde x$"), ("x", "c"), ("f", "g", "code $h$"), ("g", "xh"),
        ("xh", "loss"), ("x", "loss", "clean target", {"rad": 0.22, "at": (6.2, 0.25)}),
    ])
    _panel(axes[1], "Variational autoencoder", (13, 2.2), boxes={
        "x": (0.6, 1.1, "image\n$x$", "data"),
        "f": (2.4, 1.1, "encoder\n$q_\\phi(z \\mid x)$"),
        "mu": (4.4, 1.75, r"mean $\mu$", "op"),
        "sd": (4.4, 0.45, r"std $\sigma$", "op"),
        "z": (6.6, 1.1, "sample\n$z = \\mu + \\sigma \\odot \\epsilon$", "op"),
        "g": (8.9, 1.1, "decoder\n$p_\\theta(x \\mid z)$"),
        "loss": (11.6, 1.1, "ELBO =\nreconstruction\n$-$ KL to $\\mathcal{N}(0, I)$", "loss"),
    }, arrows=[
        ("x", "f"), ("f", "mu"), ("f", "sd"), ("mu", "z"), ("sd", "z"), ("z", "g"),
        ("g", "loss", r"$\hat x$"),
    ], notes=[(6.6, 0.35, r"$\epsilon \sim \mathcal{N}(0, I)$")])
    _panel(axes[2], "Masked autoencoder", (13, 2.2), boxes={
        "x": (0.7, 1.1, "image as\npatches", "data"),
        "m": (2.7, 1.1, "mask most\npatches", "op"),
        "f": (5.0, 1.1, "encoder on the\nvisible patches"),
        "t": (7.3, 1.1, "add mask\ntokens", "op"),
        "g": (9.3, 1.1, "decoder"),
        "loss": (11.6, 1.1, "pixel error\non the masked\npatches only", "loss"),
    }, arrows=[("x", "m"), ("m", "f"), ("f", "t"), ("t", "g"), ("g", "loss")])
    return fig


@_styled
def gan_diagram() -> Figure:
    """GANs as block diagrams: the real/fake game, BigGAN's conditioning and StyleGAN's mapping.

    Example:
        >>> import matplotlib.pyplot as plt
        >>> fig = gan_diagram()
        >>> [ax.get_title() for ax in fig.axes]
        ['GAN', 'BigGAN', 'StyleGAN']
        >>> plt.close(fig)
    """
    fig, axes = _panels(3, 1, (10, 7.0))
    _panel(axes[0], "GAN", (13, 2.4), boxes={
        "z": (0.7, 1.7, "noise $z$", "data"),
        "G": (3.0, 1.7, "generator $G$"),
        "fake": (5.6, 1.7, "fake $G(z)$", "data"),
        "real": (5.6, 0.4, "real $x$", "data"),
        "D": (8.3, 1.05, "discriminator $D$"),
        "out": (11.4, 1.05, "real or fake?\nthe label is free", "loss"),
    }, arrows=[("z", "G"), ("G", "fake"), ("fake", "D"), ("real", "D"), ("D", "out")])
    _panel(axes[1], "BigGAN", (13, 2.6), boxes={
        "z": (0.7, 2.1, "noise $z$", "data"),
        "y": (0.7, 0.5, "class $y$", "data"),
        "e": (2.6, 0.5, "shared class\nembedding $e_y$", "op"),
        "G": (5.2, 1.7, "residual blocks with\nclass-conditional BN:\n"
                        r"$\gamma, \beta$ linear in $[z, e_y]$"),
        "img": (7.8, 1.7, "image", "data"),
        "h": (9.6, 1.7, "features\n$h(x)$"),
        "y2": (9.6, 0.4, "class $y$", "data"),
        "D": (11.8, 1.1, "projection\n" r"$\psi(h) + e'^{\top}_y h$", "loss"),
    }, arrows=[("z", "G"), ("y", "e"), ("e", "G"), ("G", "img"), ("img", "h"), ("h", "D"),
               ("y2", "D", "$e'_y$")])
    _panel(axes[2], "StyleGAN", (13, 2.6), boxes={
        "z": (0.7, 1.9, "noise $z$", "data"),
        "map": (2.9, 1.9, "mapping\nnetwork (MLP)"),
        "A": (5.4, 1.9, "affine $A$:\nstyle $s$", "op"),
        "const": (5.4, 0.5, "learned\nconstant", "data"),
        "syn": (8.4, 1.2, "synthesis network:\nmodulated convolutions\n(weights scaled by $s$)"),
        "noise": (8.4, 2.45, "per-pixel noise", "data"),
        "img": (11.6, 1.2, "image", "data"),
    }, arrows=[("z", "map"), ("map", "A", "$w$"), ("A", "syn"), ("const", "syn"),
               ("noise", "syn"), ("syn", "img")])
    return fig


@_styled
def cpc_diagram() -> Figure:
    """Contrastive Predictive Coding: encoder, autoregressive context, and InfoNCE on the future.

    Example:
        >>> import matplotlib.pyplot as plt
        >>> fig = cpc_diagram()
        >>> any("InfoNCE" in t.get_text() for t in fig.axes[0].texts)
        True
        >>> plt.close(fig)
    """
    fig, (ax,) = _panels(1, 1, (10, 5.2))
    steps = ["t-3", "t-2", "t-1", "t", "t+1", "t+2", "t+3"]
    xs = [0.9 + 1.35 * i for i in range(len(steps))]
    past = steps.index("t") + 1
    boxes = {f"enc{i}": (x, 1.35, r"$g_{\mathrm{enc}}$") for i, x in enumerate(xs)}
    boxes |= {f"z{i}": (x, 2.55, f"$z_{{{s}}}$", "data") for i, (x, s) in enumerate(zip(xs, steps))}
    boxes |= {f"ar{i}": (xs[i], 3.75, r"$g_{\mathrm{ar}}$") for i in range(past)}
    boxes["c"] = (xs[past - 1], 5.0, "context $c_t$", "op")
    boxes["loss"] = (10.9, 5.0, "InfoNCE: $W_k c_t$ must\npick the true $z_{t+k}$\n"
                                "among the batch's latents", "loss")
    arrows = [(f"enc{i}", f"z{i}") for i in range(len(xs))]
    arrows += [((x, 0.62), f"enc{i}") for i, x in enumerate(xs)]
    arrows += [(f"z{i}", f"ar{i}") for i in range(past)]
    arrows += [(f"ar{i}", f"ar{i + 1}") for i in range(past - 1)]
    arrows += [(f"ar{past - 1}", "c")]
    arrows += [("c", f"z{past + k - 1}", f"$W_{k} c_t$" if k == 1 else None,
                {"rad": -0.25, "dashed": True, "at": (6.2, 3.7)})
               for k in range(1, len(xs) - past + 1)]
    arrows += [("c", "loss")]
    _panel(ax, "CPC: predict future latents from the past", (12.6, 5.6), boxes, arrows,
           notes=[(xs[-1] + 0.9, 2.55, "future\nlatents", "left"),
                  (xs[-1] + 0.9, 0.3, "signal", "left")])
    t = np.linspace(xs[0] - 0.6, xs[-1] + 0.6, 600)
    ax.plot(t, 0.3 + 0.22 * np.sin(7 * t) * np.sin(0.9 * t + 0.5), color="0.35", lw=1)
    for x in xs[:-1]:
        ax.axvline(x + 0.675, ymin=0.0, ymax=0.6 / 5.6, color="0.7", lw=0.6)
    return fig
