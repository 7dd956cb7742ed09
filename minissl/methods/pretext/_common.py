"""Helpers shared by the pretext tasks: seeded draws on the right device, batch accuracy."""

from __future__ import annotations

from functools import partial

import torch

from minissl.utils import draw


def _randint(high: int, size: tuple, generator, device) -> torch.Tensor:
    return draw(partial(torch.randint, high), size, generator, device)


def _rand(size: tuple, generator, device) -> torch.Tensor:
    return draw(torch.rand, size, generator, device)


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return (logits.argmax(dim=1) == labels).float().mean().detach()
