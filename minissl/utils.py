"""Small helpers shared by every module: seeding, devices, checks and the package's error type."""

from __future__ import annotations

import difflib
import os
import random
from collections.abc import Callable, Iterable

import numpy as np
import torch


class MinisslError(RuntimeError):
    """An error whose message says what went wrong and what to do about it."""


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (CPU and CUDA) and return a seeded CPU generator.

    Args:
        seed: the seed. The same seed gives the same run on the same device.

    Example:
        >>> g = seed_everything(3)
        >>> a = torch.rand(2, generator=g)
        >>> b = torch.rand(2, generator=seed_everything(3))
        >>> bool(torch.equal(a, b))
        True
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    return torch.Generator().manual_seed(seed)


def draw(fn, size, generator: torch.Generator | None = None,
         device: torch.device | str | None = None, **kwargs) -> torch.Tensor:
    """Random tensor ``fn(size)`` drawn with ``generator`` and placed on ``device``.

    A CPU generator cannot fill a CUDA tensor, so the numbers are drawn on the generator's
    own device and then moved: the same seed gives the same numbers on every device.

    Args:
        fn: ``torch.rand``, ``torch.randn`` or ``functools.partial(torch.randint, high)``.
        size: the shape to draw.
        generator: a seeded generator, or None for the global RNG.
        device: where the result goes (default: the CPU).
        **kwargs: passed to ``fn`` (e.g. ``dtype``).

    Example:
        >>> a = draw(torch.rand, (2,), torch.Generator().manual_seed(0))
        >>> bool(torch.equal(a, draw(torch.rand, (2,), torch.Generator().manual_seed(0))))
        True
    """
    device = torch.device(device) if device is not None else torch.device("cpu")
    where = generator.device if generator is not None else device
    return fn(size, generator=generator, device=where, **kwargs).to(device)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"`` into ``cuda`` when a GPU is present (``mps`` on Apple), else ``cpu``.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if isinstance(device, torch.device):
        return device
    if device != "auto":
        dev = torch.device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise MinisslError(
                "device='cuda' was asked for but no CUDA GPU is visible to PyTorch. "
                "Use device='auto' (falls back to the CPU) or install a CUDA build of torch."
            )
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def check_shape(x: torch.Tensor, pattern: tuple, name: str = "input") -> None:
    """Raise a ``ValueError`` naming the expected and received shape.

    ``pattern`` holds ints for fixed sizes and ``None`` (or a string label) for free ones.

    Example:
        >>> check_shape(torch.zeros(2, 3, 8, 8), (None, 3, None, None), "images")
        >>> check_shape(torch.zeros(2, 8, 8), ("B", 3, "H", "W"), "images")
        Traceback (most recent call last):
        ...
        ValueError: images must have shape (B, 3, H, W); got (2, 8, 8)
    """
    ok = x.dim() == len(pattern) and all(
        not isinstance(p, int) or p == s for p, s in zip(pattern, x.shape)
    )
    if not ok:
        want = ", ".join("?" if p is None else str(p) for p in pattern)
        raise ValueError(f"{name} must have shape ({want}); got {tuple(x.shape)}")


def did_you_mean(name: str, valid: Iterable[str], normalise: Callable[[str], str] | None = None
                 ) -> str:
    """The hint that ends an error about a misspelt name: the closest valid name, if any.

    Args:
        name: the name that was given (callers normalise its case first where that matters).
        valid: the names that would have worked.
        normalise: compare ``name`` with ``normalise(v)`` of each valid name ``v`` (e.g.
            ``str.lower``); the hint still shows ``v``.

    Returns:
        ``" Did you mean 'x'?"`` for the closest match, or ``""`` when none is close.

    Example:
        >>> did_you_mean("simclear", ["simclr", "moco"])
        " Did you mean 'simclr'?"
        >>> did_you_mean("xyz", ["simclr", "moco"])
        ''
        >>> did_you_mean("simclear", ["SimCLR", "MoCo"], normalise=str.lower)
        " Did you mean 'SimCLR'?"
    """
    shown = {(normalise or str)(v): v for v in valid}
    close = difflib.get_close_matches(name, list(shown), n=1)
    return f" Did you mean {shown[close[0]]!r}?" if close else ""


def to_numpy(x) -> np.ndarray:
    """A NumPy copy of a tensor, an array or a (nested) list; a list of tensors is stacked.

    Floating point tensors come back as float32, other tensors keep their dtype.

    Example:
        >>> to_numpy([torch.zeros(2), torch.ones(2)]).shape
        (2, 2)
    """
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float32 if x.is_floating_point() else x.dtype).numpy()
    if isinstance(x, (list, tuple)) and x and isinstance(x[0], torch.Tensor):
        return np.stack([to_numpy(t) for t in x])
    return np.asarray(x)
