"""How fit batches data: in-memory slices on the device, any Dataset or DataLoader, and
the checks of the first batch where data enters."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn


class _Batches:
    """Deterministic, resumable batching: the order of epoch e depends only on (seed, e).

    Under ``torch.distributed`` every rank draws the same order, cuts it into global batches
    of ``batch_size * world`` examples, and takes its own slice of each: rank r gets the r-th
    ``batch_size`` of them. A user's DataLoader is used as it is (give it a DistributedSampler).
    """

    def __init__(self, data: Any, batch_size: int, drop_last: bool, seed: int,
                 rank: int = 0, world: int = 1, device: torch.device | None = None):
        self.seed = seed
        self.rank, self.world = rank, world
        self.loader: torch.utils.data.DataLoader | None = None
        if isinstance(data, torch.Tensor):
            if data.dim() == 0:
                raise ValueError("fit() takes a tensor of inputs whose first dimension counts "
                                 "the examples; got a 0-d tensor (a single number)")
            data = (data, torch.full((len(data),), -1, dtype=torch.long))
        if isinstance(data, tuple) and all(isinstance(t, torch.Tensor) for t in data):
            if not data or any(t.dim() == 0 for t in data) or len({len(t) for t in data}) > 1:
                shapes = [tuple(t.shape) for t in data]
                raise ValueError("fit() takes a tuple of tensors with one entry per example "
                                 f"each (the same first dimension); got shapes {shapes}")
            self.tensors: tuple[torch.Tensor, ...] | None = data
        elif hasattr(data, "images") and hasattr(data, "labels"):
            # minissl.data.ImageDataset: everything is in memory, so batches are slices.
            self.tensors = (data.images, data.labels)
        elif isinstance(data, torch.utils.data.DataLoader):
            self.tensors, self.loader = None, data
        elif isinstance(data, torch.utils.data.Dataset):
            self.tensors, self.dataset = None, data
        else:
            raise TypeError(
                "fit() expects a minissl.data.ImageDataset, a torch Dataset or DataLoader, "
                f"a tensor of inputs or a tuple of tensors; got {type(data).__name__}"
            )
        if self.tensors is not None and device is not None:
            # In-memory data goes to the device once; every batch is then sliced there.
            self.tensors = _place(self.tensors, device)
        self.batch_size = batch_size
        self.drop_last = drop_last
        n = len(self.loader) if self.loader is not None else self._num_examples()
        if self.loader is not None:
            self.per_epoch = n
        else:
            global_batch = batch_size * world
            self.per_epoch = n // global_batch if drop_last else math.ceil(n / global_batch)
        if self.per_epoch == 0:
            per_rank = "" if world == 1 else f" ({world} processes x {batch_size})"
            raise ValueError(
                f"the data has {n} examples, fewer than one batch of {batch_size * world}"
                f"{per_rank}; use a smaller batch_size or drop_last=False"
            )

    def _num_examples(self) -> int:
        return len(self.tensors[0]) if self.tensors is not None else len(self.dataset)

    def epoch(self, epoch: int, skip: int = 0) -> Iterator:
        """The batches of one epoch, starting after the first ``skip`` of them."""
        if self.loader is not None:  # a user's loader: its order is its own business
            for i, batch in enumerate(self.loader):
                if i >= skip:
                    yield batch
            return
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(self._num_examples(), generator=g)
        if self.tensors is not None:  # drawn on the CPU (the same order everywhere), used there
            order = order.to(self.tensors[0].device)
        for b in range(skip, self.per_epoch):
            start = (b * self.world + self.rank) * self.batch_size
            idx = order[start:start + self.batch_size]
            if self.tensors is not None:
                yield tuple(t[idx] for t in self.tensors)
            else:
                items = [self.dataset[int(i)] for i in idx]
                yield torch.utils.data.default_collate(items)


# In-memory data goes to a GPU when it takes at most this share of the free memory.
DEVICE_DATA_SHARE = 0.5


def _place(tensors: tuple[torch.Tensor, ...], device: torch.device) -> tuple[torch.Tensor, ...]:
    """In-memory tensors on ``device`` (copied once), where they fit.

    On a CUDA device the data moves when it takes at most ``DEVICE_DATA_SHARE`` of the free
    memory; a larger set stays on the CPU and each batch is copied over as it is sliced.
    """
    if device.type == "cuda":
        size = sum(t.numel() * t.element_size() for t in tensors)
        free, _ = torch.cuda.mem_get_info(device)
        if size > DEVICE_DATA_SHARE * free:
            return tensors
    return tuple(t.to(device) for t in tensors)


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    return batch


def _floats(batch: Any, where: str = "batch") -> Iterator[tuple[str, torch.Tensor]]:
    """The floating-point tensors of a batch, each with a name saying where it sits."""
    if isinstance(batch, torch.Tensor):
        if batch.is_floating_point():
            yield where, batch
    elif isinstance(batch, (list, tuple)):
        for i, item in enumerate(batch):
            yield from _floats(item, f"{where}[{i}]")
    elif isinstance(batch, dict):
        for key, item in batch.items():
            yield from _floats(item, f"{where}[{key!r}]")


def _check_batch(batch: Any, method: nn.Module | None = None) -> None:
    """Float images, finite values, no 0..255 pixels, and no float64 for float32 weights."""
    images = batch[0] if isinstance(batch, (list, tuple)) and batch else batch
    if isinstance(images, torch.Tensor) and images.dim() == 4 and not images.is_floating_point():
        raise TypeError(f"the images are {images.dtype}, but minissl expects float images in "
                        "[0, 1]; convert 0..255 pixels with images.float() / 255")
    weights = next((p.dtype for p in method.parameters() if p.is_floating_point()),
                   None) if method is not None else None
    for where, t in _floats(batch):
        if weights is not None and t.dtype == torch.float64 and weights != torch.float64:
            raise TypeError(f"{where} of the first batch is float64, but the method's weights "
                            f"are {weights}; convert the data with .float()")
        finite = torch.isfinite(t)
        if not bool(finite.all()):
            bad = int((~finite).sum())
            raise ValueError(
                f"the data has NaN or infinite values: {bad} of {t.numel()} in {where} of the "
                "first batch. Clean the data (e.g. torch.nan_to_num) or drop those examples "
                "before training")
        if t.dim() == 4 and t.numel() and float(t.min()) >= 0 and float(t.max()) > 2:
            raise ValueError(
                f"the images in {where} have values up to {float(t.max()):g}, but minissl "
                "expects images in [0, 1]; convert 0..255 pixels with images / 255")


def _divergence_advice(batch: Any, step: int) -> str:
    for where, t in _floats(batch):
        if not bool(torch.isfinite(t).all()):
            return (f"The batch itself holds NaN or infinite values (in {where}): the data is "
                    "the cause, not the learning rate; clean it and train again.")
    if step == 0:
        return ("This is the first step, before any update, so the learning rate is not the "
                "cause: look at the data (NaN or inf values, images outside [0, 1]) and at "
                "what the method computes from it.")
    return "Try a lower lr, grad_clip=1.0, more warm-up or precision='fp32'."


def _is_number(v: Any) -> bool:
    if isinstance(v, torch.Tensor):
        return v.numel() == 1
    return isinstance(v, (int, float)) and not isinstance(v, bool)
