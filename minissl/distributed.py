"""Helpers for running under ``torchrun``: who am I, how many are we, and gathers.

Every function here is a no-op without an initialised process group, so the same method code
runs on one CPU, one GPU, or under DDP. Two gathers, because the two contrastive methods need
different things:

- SimCLR uses the other ranks' embeddings as negatives *and* needs the gradient of the loss to
  reach this rank's embeddings: :func:`gather_with_grad`.
- MoCo only stores the other ranks' keys in its queue, with no gradient at all: :func:`gather`.

All ranks must pass tensors of the same shape (``all_gather`` needs it); ``fit`` gives every
rank the same number of samples per step.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    """True when ``torch.distributed`` is available and a process group is initialised.

    Example:
        >>> is_distributed()
        False
    """
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank in the default group; 0 without a process group.

    Example:
        >>> rank()
        0
    """
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of processes in the default group; 1 without a process group.

    Example:
        >>> world_size()
        1
    """
    return dist.get_world_size() if is_distributed() else 1


class _GatherWithGrad(torch.autograd.Function):
    # Forward: every rank gets the concatenation of all ranks' x.
    # Backward: rank r's loss depends on *every* rank's x (as negatives), so the gradient for
    # this rank's x is the sum over ranks of d loss_r / d x_here. An all-reduce (sum) of the
    # incoming gradients followed by taking this rank's slice computes exactly that. DDP then
    # averages the parameter gradients over ranks, which turns "sum of the per-rank losses"
    # into "mean of the per-rank losses": the gradient of the 1-process loss on the whole batch
    # (checked in tests/test_distributed.py).

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        ctx.n = x.shape[0]
        return torch.cat(parts)  # (world * N, ...)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        start = dist.get_rank() * ctx.n
        return grad[start:start + ctx.n]  # (N, ...)


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """All-gather ``x`` along dim 0 so that gradients still flow back to this rank's ``x``.

    Rows ``rank * N .. (rank + 1) * N - 1`` of the result are this rank's ``x``. Use it when
    the other ranks' rows enter the loss: SimCLR (Chen et al., "A Simple Framework for
    Contrastive Learning of Visual Representations", 2020, arXiv:2002.05709) takes its
    negatives from the whole global batch, not one device's share. The backward pass sums the
    gradient over ranks before taking this rank's slice, so with DDP's gradient averaging the
    update is that of the mean loss over the global batch.

    Args:
        x: (N, ...) with the same shape on every rank.

    Returns:
        (world_size * N, ...); ``x`` itself without a process group.

    Example:
        >>> x = torch.ones(2, 3, requires_grad=True)
        >>> gather_with_grad(x) is x
        True
    """
    if not is_distributed() or world_size() == 1:
        return x
    return _GatherWithGrad.apply(x)


@torch.no_grad()
def gather(x: torch.Tensor) -> torch.Tensor:
    """All-gather ``x`` along dim 0 with no gradient (MoCo's keys, before they enter the queue).

    Args:
        x: (N, ...) with the same shape on every rank.

    Returns:
        (world_size * N, ...) in rank order; ``x`` itself without a process group.

    Example:
        >>> gather(torch.zeros(2, 3)).shape
        torch.Size([2, 3])
    """
    if not is_distributed() or world_size() == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)  # (world * N, ...)
