"""Helpers shared by the pretext tasks: seeded draws on the right device, a small head."""

from __future__ import annotations

import torch
from torch import nn


def _randint(high: int, size: tuple, generator, device) -> torch.Tensor:
    # Draw on the generator's own device (a CPU generator cannot fill a CUDA tensor), then move.
    gdev = generator.device if generator is not None else device
    return torch.randint(high, size, generator=generator, device=gdev).to(device)


def _rand(size: tuple, generator, device) -> torch.Tensor:
    gdev = generator.device if generator is not None else device
    return torch.rand(size, generator=generator, device=gdev).to(device)


def _classifier(in_dim: int, n_classes: int, hidden: int = 256) -> nn.Sequential:
    # The head of every classification pretext task: a small MLP, thrown away after training.
    return nn.Sequential(
        nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
        nn.Linear(hidden, n_classes),
    )


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return (logits.argmax(dim=1) == labels).float().mean().detach()
