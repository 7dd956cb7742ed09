"""What a method may ask about its training run to build itself: :class:`Setting`.

Most methods are built as ``Method(encoder, **arguments)``. A method whose
defaults depend on the run (the image size, the number of classes, the seed, the steps per
epoch) defines a class method ``for_setting(encoder, setting, **arguments)`` in its own file,
and :func:`build_method` calls it; code outside the method never needs to know which methods do.

Example:
    >>> import torch
    >>> from minissl.data import ImageDataset
    >>> from minissl.methods import SimCLR
    >>> from minissl.nn import ConvNet
    >>> ds = ImageDataset(torch.rand(8, 3, 16, 16), torch.arange(8) % 2, ["a", "b"], "toy")
    >>> s = Setting(ds, seed=0, steps_per_epoch=1, batch_size=8, width=4)
    >>> s.image_size, s.channels, s.num_classes
    (16, 3, 2)
    >>> type(build_method(SimCLR, ConvNet(3, width=4), s)).__name__
    'SimCLR'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn


@dataclass(frozen=True)
class Setting:
    """The run a method is built for."""

    data: Any  # the training data (an ImageDataset: images (N, C, H, W), labels (N,))
    seed: int = 0  # the run's seed
    steps_per_epoch: int = 1  # optimizer steps in one pass over the data
    batch_size: int = 128  # images per optimizer step
    width: int = 32  # base width of the ConvNets a method builds for itself (decoders)

    @property
    def channels(self) -> int:
        return int(self.data.images.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.data.images.shape[-1])

    @property
    def num_classes(self) -> int:
        return int(getattr(self.data, "num_classes", 0) or int(self.data.labels.max()) + 1)


def build_method(cls: type, encoder: nn.Module, setting: Setting, **arguments: Any) -> nn.Module:
    """``cls`` around ``encoder`` for ``setting``: its ``for_setting`` if it has one."""
    make = getattr(cls, "for_setting", None)
    if make is not None:
        return make(encoder, setting, **arguments)
    return cls(encoder, **arguments)
