"""scikit-learn's handwritten digits: 1,797 real 8x8 grayscale images that ship offline."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from .dataset import ImageDataset

SPLITS = ("train", "test")
TEST_FRACTION = 0.25
SPLIT_SEED = 0  # fixed: the train/test split never changes, whatever seed `load` gets


def _stratified_test_mask(labels: torch.Tensor) -> torch.Tensor:
    # Per class, a fixed permutation puts round(25%) of its images in the test split, so
    # both splits keep the class proportions of the whole set.
    g = torch.Generator().manual_seed(SPLIT_SEED)
    test = torch.zeros(len(labels), dtype=torch.bool)
    for k in labels.unique().tolist():
        idx = (labels == k).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        test[idx[: round(TEST_FRACTION * len(idx))]] = True
    return test


@functools.lru_cache(maxsize=1)
def _raw() -> tuple[torch.Tensor, torch.Tensor]:
    # Read once per process; callers index into these (which copies), never modify them.
    from sklearn.datasets import load_digits as _sk_load_digits  # sklearn is slow to import

    raw = _sk_load_digits()
    images = torch.as_tensor(raw.images, dtype=torch.float32)[:, None] / 16.0  # (1797, 1, 8, 8)
    return images, torch.as_tensor(raw.target, dtype=torch.int64)


def load_digits(split: str = "train", *, size: int | None = None) -> ImageDataset:
    """The UCI handwritten digits as bundled with scikit-learn, split 75/25 by class.

    Pixel values 0..16 are scaled to [0, 1]. The split is stratified and fixed, giving
    1,347 training and 450 test images.

    Args:
        split: ``"train"`` or ``"test"``.
        size: resize the (1, 8, 8) images to (1, size, size) bilinearly, e.g. 16 or 32.

    Example:
        >>> ds = load_digits("test", size=16)
        >>> len(ds), ds.image_shape, ds.classes[:3]
        (450, (1, 16, 16), ['0', '1', '2'])
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} for 'digits'; use one of {list(SPLITS)}")
    images, labels = _raw()
    test = _stratified_test_mask(labels)
    keep = test if split == "test" else ~test
    images, labels = images[keep], labels[keep]
    if size is not None and size != images.shape[-1]:
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
        images = images.clamp(0, 1)
    classes = [str(d) for d in range(10)]
    return ImageDataset(images.contiguous(), labels, classes, "digits", split)
