"""What a method trains on (its ``inputs``, one of :data:`INPUTS`) and the checks of its batches.

Every method class says in its own file what its ``training_step`` is given, as a class
attribute ``inputs``: ``"images"`` (batches (N, C, H, W)), ``"tokens"`` (token ids) or
``"signals"`` (one-dimensional signals); code that handles any method (the command line)
reads it instead of knowing methods by name.

:func:`minissl.train.fit` checks every batch where the data enters; a method called
directly (in a notebook, in a test, in someone else's loop) checks its own input with
:func:`image_batch`, :func:`class_labels`, :func:`token_batch` or :func:`signal_batch`, so
that a wrong batch ends in a message that says what to do instead of an error from deep
inside torch.

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


def image_batch(batch, method: nn.Module, size: int | None = None,
                channels: int | None = None) -> torch.Tensor:
    """The images of ``batch`` (``(images, labels)`` or a tensor), checked for ``method``.

    Args:
        batch: what ``training_step`` was given.
        method: the method (its class names the error; its weights give the dtype).
        size: the side the method was built for, when it takes only that one.
        channels: the channels C the method was built for, when its layers do not say.

    Returns:
        The images, (N, C, H, W), unchanged.

    Raises:
        ValueError: not a 4-D tensor, no images, or not the side (or channels) the method
            was built for.
        TypeError: not floating point, or another float type than the method's weights.
    """
    x = _float_batch(batch, method, "images", "(N, C, H, W)", "one image",
                     ("images in [0, 1]", "convert 0..255 pixels with images.float() / 255"),
                     channels, ". Build it for {} channel(s), or convert the images")
    name = _name(method)
    if size is not None and tuple(x.shape[-2:]) != (size, size):
        raise ValueError(f"{name}: the method was built for {size}x{size} images "
                         f"(image_size={size}); got images of size "
                         f"{x.shape[-2]}x{x.shape[-1]}. Build it for this size, or resize")
    return x


def class_labels(batch, method: nn.Module, num_classes: int) -> torch.Tensor:
    """The class labels of ``batch`` (``(images, labels)``), checked for ``method``.

    Call it after :func:`image_batch`, which checks the images (and that there is one).

    Args:
        batch: what ``training_step`` was given.
        method: the method (its class names the error).
        num_classes: K; every label must lie in ``[0, K)``.

    Returns:
        The labels, (N,), as int64.

    Raises:
        ValueError: no labels, not one per image, or a label outside ``[0, K)`` (such as
            the -1 that marks an unlabelled example).
        TypeError: labels that are not integers.

    Example:
        >>> x = torch.rand(2, 3, 8, 8)
        >>> class_labels((x, torch.tensor([0, 2], dtype=torch.int32)), nn.Linear(1, 1), 3)
        tensor([0, 2])
        >>> class_labels((x, torch.tensor([0, 7])), nn.Linear(1, 1), 3)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: Linear.training_step got label 7, but the model has 3 classes: ...
    """
    name = _name(method)
    x = _inputs(batch)
    n = len(x) if isinstance(x, torch.Tensor) and x.dim() else 0
    y = batch[1] if isinstance(batch, (tuple, list)) and len(batch) == 2 else None
    if not isinstance(y, torch.Tensor):
        got = "no labels" if y is None else f"labels of type {type(y).__name__}"
        raise ValueError(f"{name} takes a batch (images, labels) with one class label per "
                         f"image, a tensor of shape (N,); got {got}")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise TypeError(f"{name} takes integer class labels 0 .. {num_classes - 1}; got "
                        f"dtype {y.dtype} (convert them with labels.long())")
    if tuple(y.shape) != (n,):
        raise ValueError(f"{name} takes one label per image, labels of shape ({n},); got "
                         f"labels of shape {tuple(y.shape)}")
    bad = (y < 0) | (y >= num_classes)
    if bool(bad.any()):
        first = int(y[bad][0])
        hint = ("; -1 marks an unlabelled example, and this method learns from labelled "
                "ones only" if first == -1 else "")
        raise ValueError(
            f"{name} got label {first}, but the model has {num_classes} classes: every label "
            f"must lie in [0, {num_classes}) ({int(bad.sum())} of {n} do not){hint}. "
            f"Number the classes 0 .. {num_classes - 1}, or build the model with "
            "more classes")
    return y.long()


def token_batch(batch, method: nn.Module, vocab_size: int, min_len: int = 1) -> torch.Tensor:
    """The token ids of ``batch`` (``(ids, labels)`` or a tensor), checked for ``method``.

    Args:
        batch: what ``training_step`` was given.
        method: the method (its class names the error).
        vocab_size: V; every id must lie in ``[0, V)``.
        min_len: the fewest tokens a sequence may have.

    Returns:
        The ids, (B, T), unchanged.

    Raises:
        ValueError: not (B, T), no sequences, too short, or an id outside the vocabulary.
        TypeError: ids that are not integers.

    Example:
        >>> token_batch(torch.tensor([[3, 4, 5]]), nn.Linear(1, 1), vocab_size=6).shape
        torch.Size([1, 3])
        >>> token_batch(torch.tensor([[3, 9]]), nn.Linear(1, 1), 6)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: Linear.training_step got token id 9, but the vocabulary has 6 ids ...
    """
    ids = _inputs(batch)
    name = _name(method)
    if not isinstance(ids, torch.Tensor) or ids.dim() != 2:
        raise ValueError(f"{name} takes a batch (ids, labels) with token ids of shape (B, T); "
                         f"got ids of shape {_shape(ids)}")
    if len(ids) == 0:
        raise ValueError(f"{name} got a batch of 0 sequences; give it at least one")
    if ids.shape[1] < min_len:
        raise ValueError(f"{name} needs sequences of at least {min_len} token(s); got ids of "
                         f"shape {tuple(ids.shape)}")
    if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise TypeError(f"{name} takes integer token ids (from a tokenizer's encode); got "
                        f"dtype {ids.dtype}")
    bad = (ids < 0) | (ids >= vocab_size)
    if bool(bad.any()):
        first = int(ids[bad][0])
        raise ValueError(
            f"{name} got token id {first}, but the vocabulary has {vocab_size} ids "
            f"(0 .. {vocab_size - 1}); encode the text with the tokenizer the model was "
            "built for, or build it with that tokenizer's vocab_size")
    return ids


def signal_batch(batch, method: nn.Module, channels: int | None = None) -> torch.Tensor:
    """The signals of ``batch`` (``(signals, labels)`` or a tensor), checked for ``method``.

    Args:
        batch: what ``training_step`` was given.
        method: the method (its class names the error; its weights give the dtype).
        channels: the channels C the method was built for, when known.

    Returns:
        The signals, (B, C, T), unchanged.

    Raises:
        ValueError: not (B, C, T), no signals, or not the channels the method was built for.
        TypeError: not floating point, or another float type than the method's weights.

    Example:
        >>> signal_batch(torch.zeros(2, 1, 16), nn.Linear(1, 1)).shape
        torch.Size([2, 1, 16])
    """
    return _float_batch(batch, method, "signals", "(B, C, T)", "one",
                        ("signals", "convert them with signals.float()"), channels, "")


def _float_batch(batch, method: nn.Module, kind: str, layout: str, least: str,
                 dtype_hint: tuple[str, str], channels: int | None, channel_hint: str):
    """The float tensor of ``batch`` with ``layout``'s dimensions, checked for ``method``.

    The checks images and signals share: the number of dimensions, at least one example,
    floating point of the weights' type, and the channels the method was built for.
    ``channel_hint`` ends the channel error; ``{}`` in it is the channels given.
    """
    x = _inputs(batch)
    name = _name(method)
    if not isinstance(x, torch.Tensor) or x.dim() != layout.count(",") + 1:
        raise ValueError(f"{name} takes a batch ({kind}, labels) with {kind} of shape "
                         f"{layout}; got {kind} of shape {_shape(x)}")
    if len(x) == 0:
        raise ValueError(f"{name} got a batch of 0 {kind}; give it at least {least}")
    if not x.is_floating_point():
        raise TypeError(f"{name} takes float {dtype_hint[0]}; got dtype {x.dtype} "
                        f"({dtype_hint[1]})")
    _same_dtype(x, method, kind)
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{name}: the method was built for {kind} with {channels} "
                         f"channel(s); got {kind} of shape {tuple(x.shape)}"
                         + channel_hint.format(x.shape[1]))
    return x


def _inputs(batch):
    return batch[0] if isinstance(batch, (tuple, list)) and batch else batch


def _name(method: nn.Module) -> str:
    return f"{type(method).__name__}.training_step"


def _shape(x) -> object:
    return tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__


def _same_dtype(x: torch.Tensor, method: nn.Module, what: str) -> None:
    weight = next(method.parameters(), None)
    if weight is not None and weight.is_floating_point() and x.dtype != weight.dtype:
        raise TypeError(f"{_name(method)} got {x.dtype} {what} but its weights are "
                        f"{weight.dtype}; convert the {what} with {what}.to({weight.dtype})")
