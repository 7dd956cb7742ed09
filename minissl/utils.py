"""Small helpers shared by every module: seeding, devices and the package's error type."""

from __future__ import annotations

import os
import random

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
