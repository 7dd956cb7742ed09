"""View makers: two views of a batch (BYOL's asymmetric pair among them) and multi-crop."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from minissl.augment._base import _pair
from minissl.augment.ops import Compose, RandomHorizontalFlip, RandomResizedCrop
from minissl.augment.recipes import _blur_default, _colour_and_blur


def default_augment(current: nn.Module | None, make, x: Tensor) -> nn.Module:
    """A method's augmentation: ``current``, or ``make(size)`` built for ``x`` on its device.

    The two-view methods take an ``augment`` argument and, when it is ``None``, build their
    paper's augmentation on the first batch, at that batch's image size and on its device
    (an augmentation may hold tensors, e.g. a blur kernel).

    Example:
        >>> from minissl.augment import SimCLRAugment
        >>> aug = default_augment(None, SimCLRAugment, torch.rand(2, 3, 16, 16))
        >>> default_augment(aug, SimCLRAugment, torch.rand(2, 3, 16, 16)) is aug
        True
    """
    if current is not None:
        return current
    return make(tuple(x.shape[-2:])).to(x.device)


class TwoViews(nn.Module):
    """Make two independently augmented views of a batch: ``(aug1(x), aug2(x))``.

    Args:
        aug1: augmentation of the first view.
        aug2: augmentation of the second view; ``None`` reuses ``aug1`` (fresh random draws).

    Shapes: ``(B, C, H, W) -> ((B, C, h, w), (B, C, h, w))``.

    Example:
        >>> from minissl.augment import SimCLRAugment
        >>> v1, v2 = TwoViews(SimCLRAugment(16))(torch.rand(2, 3, 32, 32))
        >>> v1.shape, bool(torch.equal(v1, v2))
        (torch.Size([2, 3, 16, 16]), False)
    """

    def __init__(self, aug1: nn.Module, aug2: nn.Module | None = None) -> None:
        super().__init__()
        self.aug1 = aug1
        self.aug2 = aug2 if aug2 is not None else aug1

    def forward(
        self, x: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        return self.aug1(x, generator=generator), self.aug2(x, generator=generator)


class BYOLAugment(TwoViews):
    """BYOL's two asymmetric view distributions; calling it returns ``(view1, view2)``.

    Grill et al., "Bootstrap Your Own Latent: A New Approach to Self-Supervised Learning",
    2020, arXiv:2006.07733, Table 6: both views use random resized crop (area 0.08-1), flip
    0.5, colour jitter (0.4, 0.4, 0.2, 0.1) with p = 0.8 and grayscale p = 0.2; Gaussian blur
    (sigma 0.1-2.0) has p = 1.0 in view 1 and 0.1 in view 2; solarization has p = 0.0 in view
    1 and 0.2 in view 2. The two distributions are ``self.aug1`` and ``self.aug2``.

    Args:
        size: output side (or ``(h, w)``).
        blur: keep Gaussian blur; ``None`` = only for ``size >= 64`` (as for SimCLR, blurring
            32x32 images mostly destroys them); ``True`` keeps the paper's probabilities.
        generator: default generator for every step.

    Shapes: ``(B, C, H, W) -> ((B, C, size, size), (B, C, size, size))``.

    Example:
        >>> v1, v2 = BYOLAugment(32)(torch.rand(2, 3, 32, 32))
        >>> v1.shape == v2.shape == (2, 3, 32, 32)
        True
    """

    def __init__(
        self,
        size: int | Sequence[int],
        blur: bool | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        size = _pair(size)
        use_blur = _blur_default(size, blur)

        def view(blur_p: float, solarize_p: float) -> Compose:
            return Compose(
                RandomResizedCrop(size, generator=generator),
                RandomHorizontalFlip(0.5, generator=generator),
                *_colour_and_blur(
                    (0.4, 0.4, 0.2, 0.1),
                    blur_p=blur_p if use_blur else 0.0,
                    solarize_p=solarize_p,
                    generator=generator,
                ),
            )

        super().__init__(view(1.0, 0.0), view(0.1, 0.2))


class MultiCrop(nn.Module):
    """SwAV's multi-crop: a few large global crops plus several small local ones.

    Caron et al., "Unsupervised Learning of Visual Features by Contrasting Cluster
    Assignments", 2020, arXiv:2006.09882, Sec. 3.2: 2 crops of 224 px covering 14-100% of the
    image and 6 (here 4 by default) of 96 px covering 5-14%, each then colour-augmented
    independently.

    Args:
        global_size, local_size: output sides of the global and local crops.
        n_global, n_local: how many of each.
        global_scale, local_scale: crop area ranges.
        base: augmentation applied to every crop after cropping; ``None`` uses flip, colour
            jitter (0.8, 0.8, 0.8, 0.2) p = 0.8, grayscale p = 0.2 and, when
            ``global_size >= 64``, blur p = 0.5 -- SwAV's colour distortion.
        generator: default generator for every step.

    Returns:
        list of ``n_global`` tensors ``(B, C, global_size, global_size)`` followed by
        ``n_local`` tensors ``(B, C, local_size, local_size)``.

    Example:
        >>> views = MultiCrop(32, 16, n_global=2, n_local=3)(torch.rand(2, 3, 32, 32))
        >>> [tuple(v.shape[-2:]) for v in views]
        [(32, 32), (32, 32), (16, 16), (16, 16), (16, 16)]
    """

    def __init__(
        self,
        global_size: int | Sequence[int],
        local_size: int | Sequence[int],
        n_global: int = 2,
        n_local: int = 4,
        global_scale: tuple[float, float] = (0.14, 1.0),
        local_scale: tuple[float, float] = (0.05, 0.14),
        base: nn.Module | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if n_global < 0 or n_local < 0 or n_global + n_local == 0:
            raise ValueError(f"need at least one crop; got n_global={n_global}, n_local={n_local}")
        global_size, local_size = _pair(global_size), _pair(local_size)
        self.n_global, self.n_local = n_global, n_local
        self.global_crop = RandomResizedCrop(global_size, global_scale, generator=generator)
        self.local_crop = RandomResizedCrop(local_size, local_scale, generator=generator)
        if base is None:
            base = Compose(
                RandomHorizontalFlip(0.5, generator=generator),
                *_colour_and_blur(
                    (0.8, 0.8, 0.8, 0.2),
                    blur_p=0.5 if _blur_default(global_size, None) else 0.0,
                    generator=generator,
                ),
            )
        self.base = base

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> list[Tensor]:
        crops = [self.global_crop] * self.n_global + [self.local_crop] * self.n_local
        return [self.base(crop(x, generator=generator), generator=generator) for crop in crops]
