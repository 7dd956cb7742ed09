"""The in-memory image data set every loader returns, and a few-label subset helper."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch.utils.data import Dataset


class ImageDataset(Dataset):
    """A whole split of images held in memory as two tensors, plus class names.

    ``fit`` and ``evaluate`` take a fast path on these objects: they slice ``.images`` and
    ``.labels`` directly instead of going through a ``DataLoader`` item by item.

    Args:
        images: (N, C, H, W) float32 tensor with values in [0, 1].
        labels: (N,) int64 tensor; ``-1`` marks an unlabeled image (STL-10's unlabeled split).
        classes: the class names; label ``k`` is ``classes[k]``.
        name: the data set's name, e.g. ``"shapes"``.
        split: the split it came from, e.g. ``"train"`` (only used for display).
        factors: optional latent factors, a dict of tensors whose first dimension is N
            (the procedural ``shapes`` set keeps colour, position, scale, rotation, ...).

    Example:
        >>> labels = torch.tensor([0, 1, 0, 1])
        >>> ds = ImageDataset(torch.zeros(4, 1, 8, 8), labels, ["a", "b"], "toy")
        >>> len(ds), ds.num_classes, ds[1][0].shape, ds[1][1]
        (4, 2, torch.Size([1, 8, 8]), 1)
        >>> ds.subset([0, 2])
        ImageDataset('toy', split='train', n=2, image_shape=(1, 8, 8), classes=['a', 'b'])
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        classes: Sequence[str],
        name: str,
        split: str = "train",
        factors: dict[str, torch.Tensor] | None = None,
    ) -> None:
        if not isinstance(images, torch.Tensor) or images.dim() != 4:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images)
            raise ValueError(f"images must be a tensor of shape (N, C, H, W); got {shape}")
        if images.dtype != torch.float32:
            raise ValueError(
                f"images must be float32 in [0, 1]; got dtype {images.dtype} "
                "(convert uint8 pixels with images.float() / 255)"
            )
        _check_values(images)
        if not isinstance(labels, torch.Tensor) or labels.dim() != 1:
            shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels)
            raise ValueError(f"labels must be a tensor of shape (N,); got {shape}")
        if labels.dtype != torch.int64:
            raise ValueError(f"labels must be int64; got dtype {labels.dtype} (use labels.long())")
        if len(labels) != len(images):
            raise ValueError(
                f"images and labels must have the same length; got {len(images)} images "
                f"and {len(labels)} labels"
            )
        classes = [str(c) for c in classes]
        if len(labels) and int(labels.max()) >= len(classes):
            raise ValueError(
                f"label {int(labels.max())} has no class name: only {len(classes)} classes given"
            )
        if len(labels) and int(labels.min()) < -1:
            raise ValueError(f"labels must be >= 0 (or -1 for unlabeled); got {int(labels.min())}")
        factors = dict(factors or {})
        for key, value in factors.items():
            if len(value) != len(images):
                raise ValueError(
                    f"factor {key!r} must have one entry per image ({len(images)}); "
                    f"got shape {tuple(value.shape)}"
                )
        self.images = images
        self.labels = labels
        self.classes = classes
        self.name = name
        self.split = split
        self.factors = factors

    @property
    def num_classes(self) -> int:
        """How many classes there are (``len(classes)``)."""
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """The (C, H, W) shape of one image."""
        return tuple(self.images.shape[1:])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.labels[index])

    def subset(self, indices: Sequence[int] | torch.Tensor) -> ImageDataset:
        """A new data set holding the given items (in that order), factors included.

        Args:
            indices: (M,) integer indices (a list, a LongTensor or a boolean mask).
        """
        idx = torch.as_tensor(indices)
        if idx.dtype == torch.bool:
            idx = idx.nonzero().flatten()
        idx = idx.long()
        factors = {k: v[idx] for k, v in self.factors.items()}
        # The items of a checked data set are checked already: skip the pass over the pixels.
        out = copy.copy(self)
        out.images, out.labels, out.factors = self.images[idx], self.labels[idx], factors
        out.classes = list(self.classes)
        return out

    def class_counts(self) -> torch.Tensor:
        """(num_classes,) number of labeled images per class (unlabeled ones are not counted)."""
        labeled = self.labels[self.labels >= 0]
        return torch.bincount(labeled, minlength=self.num_classes)

    def describe(self) -> str:
        """One line saying which data is in use; chapters print it.

        Example:
            >>> ds = ImageDataset(torch.zeros(2, 3, 4, 4), torch.tensor([0, 1]), ["x", "y"], "toy")
            >>> ds.describe()
            "toy/train: 2 images of shape (3, 4, 4), 2 classes ['x', 'y']"
        """
        shape = tuple(self.image_shape)
        unlabeled = int((self.labels < 0).sum())
        extra = f" ({unlabeled} unlabeled)" if unlabeled else ""
        names = self.classes if len(self.classes) <= 12 else self.classes[:12] + ["..."]
        return (
            f"{self.name}/{self.split}: {len(self)} images of shape {shape}{extra}, "
            f"{self.num_classes} classes {names}"
        )

    def __repr__(self) -> str:
        names = self.classes if len(self.classes) <= 12 else self.classes[:12] + ["..."]
        return (
            f"ImageDataset({self.name!r}, split={self.split!r}, n={len(self)}, "
            f"image_shape={tuple(self.image_shape)}, classes={names})"
        )


def _check_values(images: torch.Tensor) -> None:
    """Images must be finite and in [0, 1] (a rounding error's worth of slack is allowed)."""
    if not images.numel():
        return
    finite = torch.isfinite(images)
    if not bool(finite.all()):
        bad = (~finite).flatten(1).any(1).nonzero().flatten()
        raise ValueError(
            f"images must be finite; {len(bad)} image(s) hold NaN or infinite values (the "
            f"first is image {int(bad[0])}). Drop them, or clean them with torch.nan_to_num"
        )
    low, high = float(images.min()), float(images.max())
    if low < -1e-4 or high > 1 + 1e-4:
        hint = ("; these look like 0..255 pixels: divide by 255" if high > 2 and low >= 0
                else "; rescale them, e.g. (x - x.min()) / (x.max() - x.min()), or clamp(0, 1)")
        raise ValueError(f"images must be in [0, 1]; got values from {low:g} to {high:g}{hint}")


def few_labels(dataset: ImageDataset, per_class: int, *, seed: int = 0) -> ImageDataset:
    """Keep ``per_class`` labeled images of every class, chosen by :func:`few_label_indices`.

    The few-label budget of the book (10 per class by default) is drawn with this, so
    every chapter that asks for ``seed=0`` gets the same images.

    Args:
        dataset: the labeled data set to draw from.
        per_class: how many images to keep per class.
        seed: seed of the permutation that decides which images are kept.

    Example:
        >>> labels = torch.tensor([0, 0, 0, 1, 1, 1])
        >>> ds = ImageDataset(torch.zeros(6, 1, 2, 2), labels, ["a", "b"], "toy")
        >>> few_labels(ds, 2).labels.tolist()
        [0, 0, 1, 1]
    """
    return dataset.subset(
        few_label_indices(dataset.labels, per_class, seed=seed, num_classes=dataset.num_classes)
    )


def few_label_indices(
    labels, per_class: int, seed: int = 0, num_classes: int | None = None
) -> torch.Tensor:
    """Indices of exactly ``per_class`` randomly chosen examples of every class.

    The same seed gives the same indices, and a smaller ``per_class`` gives a subset of a
    larger one (both take the first examples of one seeded permutation), so "10 labels per
    class" is always contained in "100 labels per class". Negative labels (unlabelled
    examples) are ignored.

    Args:
        labels: (N,) integer class labels (tensor, array or list).
        per_class: examples to take from each class.
        seed: seed of the random choice.
        num_classes: if given, classes 0..num_classes-1 must all be present; otherwise the
            classes are the distinct non-negative labels.

    Returns:
        (per_class * K,) int64 indices, sorted ascending.

    Example:
        >>> y = torch.tensor([0, 1, 0, 1, 0, 1, 2, 2])
        >>> idx = few_label_indices(y, per_class=2, seed=0)
        >>> torch.bincount(y[idx]).tolist()
        [2, 2, 2]
    """
    labels = torch.as_tensor(labels).reshape(-1).long().cpu()
    if per_class < 1:
        raise ValueError(f"per_class must be at least 1; got {per_class}")
    classes = (
        torch.arange(num_classes) if num_classes is not None else labels[labels >= 0].unique()
    )
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(labels), generator=g)  # (N,)
    shuffled = labels[order]  # (N,)
    chosen = []
    for c in classes.tolist():
        members = order[shuffled == c]
        if len(members) < per_class:
            raise ValueError(
                f"class {c} has only {len(members)} examples but per_class={per_class} were "
                f"asked for; use per_class <= {len(members)}"
            )
        chosen.append(members[:per_class])
    return torch.cat(chosen).sort().values if chosen else torch.zeros(0, dtype=torch.long)
