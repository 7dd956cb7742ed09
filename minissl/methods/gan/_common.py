"""Helpers shared by the GAN's networks: optional spectral norm, the number of 2x steps."""

from __future__ import annotations

import math

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def _sn(module: nn.Module, on: bool) -> nn.Module:
    return spectral_norm(module) if on else module


def _num_ups(image_size: int) -> int:
    ups = round(math.log2(image_size / 4)) if image_size >= 8 else -1
    if ups < 1 or 4 * 2 ** ups != image_size:
        raise ValueError(f"image_size must be 4 times a power of two (8, 16, 32, 64, ...); "
                         f"got {image_size}")
    return ups
