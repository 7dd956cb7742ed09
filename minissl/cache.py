"""An on-disk cache of pretrained methods, keyed by everything that decides them.

Pretraining is the expensive part of the book on a CPU, and several places train the same
thing: a chapter, the benchmark page and ``python -m minissl bench`` all pretrain, say,
SimCLR for 30 epochs at seed 0 on the default data. :func:`minissl.recipes.pretrain_and_score`
therefore stores each finished run (the method's weights, its training history and its
scores) under a key made from the recipe, the method's arguments, the training budget, the
seed, a digest of the training and test images, how it is scored, and the versions of
minissl (with a digest of its source files), of torch and of the device and thread count. A
run is reused only when every one of these is the same, so a cached result is the result a
new run would give on this machine.

The cache lives in ``$MINISSL_CACHE`` (default ``~/.cache/minissl/runs``); set
``MINISSL_CACHE=off`` to switch it off, and delete the folder to empty it.

Example:
    >>> key = fingerprint({"method": "simclr", "epochs": 3})
    >>> len(key), key == fingerprint({"epochs": 3, "method": "simclr"})
    (20, True)
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

ENV_VAR = "MINISSL_CACHE"
_OFF = ("off", "0", "false", "no", "none")


def directory() -> Path | None:
    """The cache folder, or ``None`` when ``MINISSL_CACHE`` switches the cache off."""
    value = os.environ.get(ENV_VAR, "").strip()
    if value.lower() in _OFF:
        return None
    return Path(value).expanduser() if value else Path.home() / ".cache" / "minissl" / "runs"


@functools.lru_cache(maxsize=1)
def source_digest() -> str:
    """A digest of every ``.py`` file of the installed minissl package (code changes it)."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def tensor_digest(*tensors: torch.Tensor) -> str:
    """A digest of tensors' shapes, dtypes and values (e.g. a data set's images and labels).

    Example:
        >>> tensor_digest(torch.zeros(2)) == tensor_digest(torch.zeros(2))
        True
        >>> tensor_digest(torch.zeros(2)) == tensor_digest(torch.zeros(3))
        False
    """
    h = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(f"{tuple(t.shape)}{t.dtype}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def environment(device: str | torch.device = "auto") -> dict[str, Any]:
    """The parts of the machine a run's numbers depend on: versions, threads and the device.

    ``device`` is the run's setting (``TrainConfig.device``); it is resolved as training
    resolves it, and a GPU is named by its model, since kernels differ between GPUs.

    Example:
        >>> environment("cpu")["device"]
        'cpu'
    """
    from minissl import __version__
    from minissl.utils import resolve_device

    dev = resolve_device(device)
    name = dev.type
    if dev.type == "cuda":
        name = f"cuda:{torch.cuda.get_device_name(dev)}"
    return {"minissl": __version__, "source": source_digest(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "device": name}


def fingerprint(record: dict[str, Any]) -> str:
    """A short, stable key for a JSON-able description of a run (key order ignored)."""
    text = json.dumps(record, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def load(key: str) -> dict[str, Any] | None:
    """The stored payload of ``key``, or ``None`` (no cache, no entry, or an unreadable one)."""
    folder = directory()
    path = folder / f"{key}.pt" if folder else None
    if path is None or not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a damaged entry is simply made again  # noqa: BLE001
        return None


def save(key: str, payload: dict[str, Any]) -> Path | None:
    """Store ``payload`` under ``key`` atomically; returns the path (``None``: cache off).

    A cache that cannot be written (a read-only home, a full disk) never stops a run: the
    result is returned all the same, only not kept.
    """
    folder = directory()
    if folder is None:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        os.close(fd)
        torch.save(payload, tmp)
        os.replace(tmp, folder / f"{key}.pt")
    except OSError:
        return None
    return folder / f"{key}.pt"
