"""The base of every random transform: input checks, per-sample draws, sub-batch updates."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from minissl.utils import check_shape


def _check_images(x: Tensor, name: str, colour: bool = False) -> None:
    check_shape(x, ("B", "C", "H", "W"), name)
    if not x.is_floating_point():
        raise TypeError(
            f"{name} must be a floating point tensor with values in [0, 1]; got dtype {x.dtype}. "
            "Convert with x.float() / 255 first."
        )
    if colour and x.shape[1] not in (1, 3):
        raise ValueError(
            f"{name} must have 1 (grey) or 3 (RGB) channels, shape (B, C, H, W); "
            f"got {tuple(x.shape)}"
        )


def _uniform(n: int, low: float, high: float, g: torch.Generator | None) -> Tensor:
    """``n`` uniform draws in [low, high) on the generator's device (CPU when ``g`` is None)."""
    dev = g.device if g is not None else torch.device("cpu")
    return torch.rand(n, generator=g, device=dev) * (high - low) + low


def _chosen(n: int, p: float, g: torch.Generator | None) -> Tensor:
    """Indices (on the generator's device) of the samples picked with probability ``p``."""
    if p >= 1.0:
        dev = g.device if g is not None else torch.device("cpu")
        # Still consume the draws, so a recipe's random stream does not depend on p == 1.
        torch.rand(n, generator=g, device=dev)
        return torch.arange(n, device=dev)
    return (_uniform(n, 0.0, 1.0, g) < p).nonzero().squeeze(1)


def _per_sample(v: Tensor, x: Tensor) -> Tensor:
    """Move (n,) parameters next to ``x`` and shape them (n, 1, 1, 1) for broadcasting."""
    return v.to(device=x.device, dtype=x.dtype).view(-1, 1, 1, 1)


def _apply_to(x: Tensor, idx: Tensor, fn: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
    """Return ``x`` with ``fn(x[idx], idx)`` written at rows ``idx``; other rows untouched.

    Running ``fn`` on the chosen sub-batch only (rather than on everything, then blending)
    keeps unchosen samples exact and does no wasted work.
    """
    n = idx.numel()
    if n == 0:
        return x
    if n == x.shape[0]:
        return fn(x, idx)
    dev_idx = idx.to(x.device)
    out = x.clone()
    out.index_copy_(0, dev_idx, fn(x.index_select(0, dev_idx), idx))
    return out


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    h, w = v
    return (int(h), int(w))


def _range(value: float | Sequence[float], name: str, centre: float, low: float = 0.0):
    """torchvision's convention: a number ``v`` means [centre - v, centre + v] clipped at low."""
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"{name} must be non-negative; got {value}")
        return (max(low, centre - value), centre + value)
    a, b = value
    if not low <= a <= b:
        raise ValueError(f"{name} must be a range (min, max) with {low} <= min <= max; got {value}")
    return (float(a), float(b))


class _RandomOp(nn.Module):
    """Base class: stores ``p`` and the default generator, validates input, disables autograd."""

    colour = False  # do the input checks require 1 or 3 channels?

    def __init__(self, p: float = 1.0, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be a probability in [0, 1]; got {p}")
        self.p = float(p)
        self.generator = generator

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        _check_images(x, type(self).__name__ + " input", colour=self.colour)
        g = generator if generator is not None else self.generator
        with torch.no_grad():
            return self._transform(x, g)

    def _transform(self, x: Tensor, g: torch.Generator | None) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"p={self.p}"
