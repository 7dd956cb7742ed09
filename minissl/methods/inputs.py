"""What a method trains on: its ``inputs`` (one of :data:`INPUTS`), and the image batch check.

Every method class says in its own file what its ``training_step`` is given, as a class
attribute ``inputs``: ``"images"`` (batches (N, C, H, W)), ``"tokens"`` (token ids) or
``"signals"`` (one-dimensional signals); code that handles any method (the command line)
reads it instead of knowing methods by name.

:func:`minissl.train.fit` checks every batch where the data enters; a method called
directly (in a notebook, in a test, in someone else's loop) checks its own input with
:func:`image_batch`, so that a wrong batch ends in a message that says what to do instead of
an error from deep inside torch.

Example:
    >>> import torch
    >>> from torch import nn
    >>> x = image_batch((torch.rand(2, 3, 8, 8), None), nn.Linear(1, 1))
    >>> tuple(x.shape)
    (2, 3, 8, 8)
    >>> image_batch((torch.rand(8), None), nn.Linear(1, 1))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: Linear.training_step takes a batch (images, labels) with images of shape ...
"""

from __future__ import annotations

import torch
from torch import nn

#: What a method's ``training_step`` may be given: the values of its ``inputs``.
INPUTS = ("images", "tokens", "signals")


def image_batch(batch, method: nn.Module, size: int | None = None) -> torch.Tensor:
    """The images of ``batch`` (``(images, labels)`` or a tensor), checked for ``method``.

    Args:
        batch: what ``training_step`` was given.
        method: the method (its class names the error; its weights give the dtype).
        size: the side the method was built for, when it takes only that one.

    Returns:
        The images, (N, C, H, W), unchanged.

    Raises:
        ValueError: not a 4-D tensor, no images, or not the side the method was built for.
        TypeError: not floating point, or another float type than the method's weights.
    """
    x = batch[0] if isinstance(batch, (tuple, list)) else batch
    name = f"{type(method).__name__}.training_step"
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} takes a batch (images, labels) with images of shape "
                         f"(N, C, H, W); got images of shape {got}")
    if len(x) == 0:
        raise ValueError(f"{name} got a batch of 0 images; give it at least one image")
    if not x.is_floating_point():
        raise TypeError(f"{name} takes float images in [0, 1]; got dtype {x.dtype} "
                        "(convert 0..255 pixels with images.float() / 255)")
    weight = next(method.parameters(), None)
    if weight is not None and weight.is_floating_point() and x.dtype != weight.dtype:
        raise TypeError(f"{name} got {x.dtype} images but its weights are {weight.dtype}; "
                        f"convert the images with images.to({weight.dtype})")
    if size is not None and tuple(x.shape[-2:]) != (size, size):
        raise ValueError(f"{name}: the method was built for {size}x{size} images "
                         f"(image_size={size}); got images of size "
                         f"{x.shape[-2]}x{x.shape[-1]}. Build it for this size, or resize")
    return x
