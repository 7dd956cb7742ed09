"""Helpers shared by the pretext tasks: seeded draws on the right device, a small head."""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from minissl.utils import draw


def _randint(high: int, size: tuple, generator, device) -> torch.Tensor:
    return draw(partial(torch.randint, high), size, generator, device)


def _rand(size: tuple, generator, device) -> torch.Tensor:
    return draw(torch.rand, size, generator, device)


def _classifier(in_dim: int, n_classes: int, hidden: int = 256) -> nn.Sequential:
    # The head of every classification pretext task: a small MLP, thrown away after training.
    return nn.Sequential(
        nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
        nn.Linear(hidden, n_classes),
    )


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return (logits.argmax(dim=1) == labels).float().mean().detach()
