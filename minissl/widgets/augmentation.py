"""The augmentation explorer: a slider for every augmentation's strength, and its pipeline."""

from __future__ import annotations

from typing import Any

import torch
from matplotlib.figure import Figure

from minissl.widgets.explorer import Explorer, slider_explorer

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
        >>> import matplotlib.pyplot as plt; plt.close(fig)
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
