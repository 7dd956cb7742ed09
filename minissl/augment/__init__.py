"""Batched image augmentations with per-sample random parameters, on the batch's own device.

Every transform here takes a whole batch ``(B, C, H, W)`` of float images in [0, 1] and gives
each sample its own random draw (its own crop box, flip, jitter factors, blur width...), in a
handful of tensor operations instead of a Python loop over images. The same code runs on the
CPU and on CUDA: new tensors are created with ``device=x.device`` and nothing calls ``.cuda()``.

Conventions shared by every transform of this package:

* ``forward(x, generator=None)``: ``x`` is ``(B, C, H, W)`` floating point in [0, 1] with
  ``C`` 1 or 3 for colour transforms; the output keeps dtype and device (and shape, except
  for crops, which resample to their ``size``).
* Randomness. A ``generator`` may be given to the constructor or to ``forward`` (the latter
  wins); without one, torch's global RNG is used, so ``torch.manual_seed`` reproduces a run.
  The random *parameters* (a few numbers per sample) are drawn on the generator's device --
  the CPU by default -- and then moved to the images' device. That is why a CPU generator can
  drive augmentations of CUDA images, and why the same seed gives the same crop boxes and
  jitter factors on either device. No per-pixel randomness is needed by any transform.
* ``p`` is the probability that a sample is transformed; samples that are not chosen pass
  through bit-for-bit (the transform runs only on the chosen sub-batch).
* Everything runs under ``torch.no_grad()``: augmentations are data preparation, never part of
  the graph a loss differentiates, and skipping autograd bookkeeping saves time and memory.

Recipes (``SimCLRAugment``, ``BYOLAugment``, ``MoCoV2Augment``) and view makers (``TwoViews``,
``MultiCrop``) are built from the single transforms and quote the papers they follow. The
transforms live in ``ops``, the recipes in ``recipes``, the view makers in ``views``; every
name is importable from ``minissl.augment``.
"""

from minissl.augment.ops import (
    ColorJitter,
    Compose,
    GaussianBlur,
    RandomGrayscale,
    RandomHorizontalFlip,
    RandomResizedCrop,
    Solarize,
    adjust_hue,
)
from minissl.augment.recipes import MoCoV2Augment, SimCLRAugment
from minissl.augment.views import BYOLAugment, MultiCrop, TwoViews, default_augment

__all__ = [
    "RandomResizedCrop", "RandomHorizontalFlip", "ColorJitter", "RandomGrayscale", "GaussianBlur",
    "Solarize", "adjust_hue", "Compose", "SimCLRAugment", "BYOLAugment", "MoCoV2Augment",
    "TwoViews", "MultiCrop", "default_augment",
]
