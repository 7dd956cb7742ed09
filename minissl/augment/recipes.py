"""The augmentation recipes of SimCLR and MoCo v2, built from the single transforms."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from minissl.augment._base import _pair
from minissl.augment.ops import (
    ColorJitter,
    Compose,
    GaussianBlur,
    RandomGrayscale,
    RandomHorizontalFlip,
    RandomResizedCrop,
    Solarize,
)


def _colour_and_blur(
    s_jitter: tuple[float, float, float, float],
    blur_p: float,
    solarize_p: float = 0.0,
    generator: torch.Generator | None = None,
) -> list[nn.Module]:
    """The photometric half shared by the recipes: jitter p=0.8, grayscale p=0.2, blur, solarize."""
    ops: list[nn.Module] = [
        ColorJitter(*s_jitter, p=0.8, generator=generator),
        RandomGrayscale(p=0.2, generator=generator),
    ]
    if blur_p > 0:
        ops.append(GaussianBlur(None, (0.1, 2.0), p=blur_p, generator=generator))
    if solarize_p > 0:
        ops.append(Solarize(0.5, p=solarize_p, generator=generator))
    return ops


def _blur_default(size: tuple[int, int], blur: bool | None) -> bool:
    # SimCLR's CIFAR-10 setup drops blur (App. B.9): 32x32 images are too small for it.
    return blur if blur is not None else min(size) >= 64


class SimCLRAugment(Compose):
    """SimCLR's augmentation: crop, flip, colour distortion, grayscale, and blur on large images.

    Chen et al., "A Simple Framework for Contrastive Learning of Visual Representations",
    2020, arXiv:2002.05709, Appendix A: random resized crop (area 0.08-1, ratio 3/4-4/3),
    horizontal flip 0.5, colour jitter (0.8 s, 0.8 s, 0.8 s, 0.2 s) with p = 0.8, grayscale
    p = 0.2, Gaussian blur p = 0.5 (sigma 0.1-2.0, kernel 10% of the side). For CIFAR-10 the
    paper uses s = 0.5 and no blur (App. B.9), hence the defaults: ``s=0.5`` and blur only
    when ``size >= 64`` unless ``blur`` says otherwise. Call it twice (or wrap it in
    ``TwoViews``) for the two views.

    Args:
        size: output side (or ``(h, w)``).
        s: colour distortion strength (1.0 on ImageNet, 0.5 on CIFAR-10).
        blur: use Gaussian blur; ``None`` = only for ``size >= 64``.
        scale: crop area range.
        generator: default generator for every step.

    Shapes: ``(B, C, H, W) -> (B, C, size, size)`` with C in {1, 3}.

    Example:
        >>> aug = SimCLRAugment(32)
        >>> aug(torch.rand(4, 3, 32, 32)).shape
        torch.Size([4, 3, 32, 32])
    """

    def __init__(
        self,
        size: int | Sequence[int],
        s: float = 0.5,
        blur: bool | None = None,
        scale: tuple[float, float] = (0.08, 1.0),
        generator: torch.Generator | None = None,
    ) -> None:
        size = _pair(size)
        super().__init__(
            RandomResizedCrop(size, scale=scale, generator=generator),
            RandomHorizontalFlip(0.5, generator=generator),
            *_colour_and_blur(
                (0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s),
                blur_p=0.5 if _blur_default(size, blur) else 0.0,
                generator=generator,
            ),
        )


class MoCoV2Augment(Compose):
    """MoCo v2's augmentation: SimCLR's recipe with a milder crop and fixed-strength jitter.

    Chen et al., "Improved Baselines with Momentum Contrastive Learning", 2020,
    arXiv:2003.04297 (and its released code): crop area 0.2-1, colour jitter
    (0.4, 0.4, 0.4, 0.1) p = 0.8, grayscale p = 0.2, Gaussian blur p = 0.5 (sigma 0.1-2.0),
    flip 0.5. As for SimCLR, blur is on by default only for ``size >= 64``.

    Args:
        size: output side (or ``(h, w)``).
        blur: use Gaussian blur; ``None`` = only for ``size >= 64``.
        generator: default generator for every step.

    Shapes: ``(B, C, H, W) -> (B, C, size, size)``.

    Example:
        >>> MoCoV2Augment(16)(torch.rand(2, 3, 32, 32)).shape
        torch.Size([2, 3, 16, 16])
    """

    def __init__(
        self,
        size: int | Sequence[int],
        blur: bool | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        size = _pair(size)
        super().__init__(
            RandomResizedCrop(size, scale=(0.2, 1.0), generator=generator),
            *_colour_and_blur(
                (0.4, 0.4, 0.4, 0.1),
                blur_p=0.5 if _blur_default(size, blur) else 0.0,
                generator=generator,
            ),
            RandomHorizontalFlip(0.5, generator=generator),
        )
