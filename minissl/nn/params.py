"""Operations on a network's parameters: moving averages of weights, weight-decay groups."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, decay: float, *, buffers: bool = True,
               lerp: bool = False) -> None:
    """Move ``target``'s parameters towards ``online``'s: ``t <- decay * t + (1 - decay) * o``.

    How BYOL's target (arXiv:2006.07733, Sec. 3.1), MoCo's key encoder (arXiv:1911.05722,
    eq. 2) and a GAN's sampling generator follow the trained network after every step.

    Args:
        target: the averaged copy, with ``online``'s architecture; changed in place.
        online: the trained network.
        decay: the weight of the old value, in [0, 1]; 0 makes ``target`` a copy.
        buffers: also copy ``online``'s buffers (batch-norm statistics) into ``target``.
        lerp: compute it as ``t.lerp_(o, 1 - decay)`` (rounded differently from the default
            ``t.mul_(decay).add_(o, alpha=1 - decay)``).

    Example:
        >>> online, target = nn.Linear(2, 2), nn.Linear(2, 2)
        >>> ema_update(target, online, 0.0)
        >>> torch.equal(target.weight, online.weight)
        True
    """
    for t, o in zip(target.parameters(), online.parameters()):
        if lerp:
            t.lerp_(o.detach(), 1 - decay)
        else:
            t.mul_(decay).add_(o.detach(), alpha=1 - decay)
    if buffers:
        for t, o in zip(target.buffers(), online.buffers()):
            t.copy_(o)


def weight_decay_groups(params: Iterable[nn.Parameter],
                        weight_decay: float | None = None) -> list[dict]:
    """Two optimizer parameter groups: weights decayed, 1-D tensors (biases, norm scales) not.

    Parameters that need no gradient are left out; the others keep their order.

    Args:
        params: the parameters to split.
        weight_decay: the first group's decay; ``None`` leaves it to the optimizer's default.

    Example:
        >>> decayed, plain = weight_decay_groups(nn.Linear(3, 2).parameters(), 0.1)
        >>> [tuple(p.shape) for p in decayed["params"]], [tuple(p.shape) for p in plain["params"]]
        ([(2, 3)], [(2,)])
    """
    params = [p for p in params if p.requires_grad]
    decayed: dict = {"params": [p for p in params if p.dim() > 1]}
    if weight_decay is not None:
        decayed["weight_decay"] = weight_decay
    return [decayed, {"params": [p for p in params if p.dim() <= 1], "weight_decay": 0.0}]
