"""The data access every evaluation shares: batches from any kind of data, checked features."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset


def tensor_pair(data) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(images, labels) when the whole split is in memory, else None (use a DataLoader)."""
    if hasattr(data, "images") and hasattr(data, "labels"):
        return torch.as_tensor(data.images), torch.as_tensor(data.labels)
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(
        isinstance(t, torch.Tensor) for t in data
    ):
        return data[0], data[1]
    return None


def batches(
    data, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (images, labels) batches on the CPU from any supported kind of data."""
    pair = tensor_pair(data)
    if pair is not None:
        images, labels = pair
        if len(images) != len(labels):
            raise ValueError(
                f"data has {len(images)} images but {len(labels)} labels; they must match"
            )
        n = len(images)
        order = torch.randperm(n, generator=generator) if shuffle else None
        for i in range(0, n, batch_size):
            if order is None:
                yield images[i : i + batch_size], labels[i : i + batch_size]
            else:
                j = order[i : i + batch_size]
                yield images[j], labels[j]
        return
    if isinstance(data, DataLoader):
        loader = data
    elif isinstance(data, Dataset):
        loader = DataLoader(data, batch_size=batch_size, shuffle=shuffle, generator=generator)
    else:
        raise ValueError(
            f"cannot read images from a {type(data).__name__}; pass a minissl ImageDataset, "
            "a torch Dataset or DataLoader of (image, label), or a pair (images, labels)"
        )
    for batch in loader:
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise ValueError("each item/batch must be (image, label); got a single tensor")
        yield torch.as_tensor(batch[0]), torch.as_tensor(batch[1])


def device_of(module: nn.Module, device) -> torch.device:
    if device is not None:
        return torch.device(device)
    p = next(module.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def check_features(features: torch.Tensor, labels: torch.Tensor, name: str) -> None:
    if features.dim() != 2:
        raise ValueError(
            f"{name}_features must have shape (N, D); got {tuple(features.shape)}"
        )
    if labels.dim() != 1 or len(labels) != len(features):
        raise ValueError(
            f"{name}_labels must have shape ({len(features)},) to match {name}_features "
            f"{tuple(features.shape)}; got {tuple(labels.shape)}"
        )
    if features.shape[0] == 0 or features.shape[1] == 0:
        raise ValueError(f"{name}_features is empty (shape {tuple(features.shape)}); give at "
                         "least one example with at least one feature")
    if features.is_floating_point() and not bool(torch.isfinite(features).all()):
        raise ValueError(f"{name}_features hold NaN or infinite values; the encoder that made "
                         "them diverged, or its input was not finite")


def count_classes(*label_sets: torch.Tensor) -> int:
    return int(max(int(y.max()) for y in label_sets if len(y)) + 1)
