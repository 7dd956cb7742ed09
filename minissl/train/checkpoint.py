"""Checkpoints: written atomically, read safely, and tied to the run that wrote them."""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import numbers
import os
import random
import signal
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from minissl.train.config import (
    TrainConfig,
)
from minissl.utils import MinisslError

CHECKPOINT_NAME = "last.pt"


def _rng_state() -> dict:
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_rest": [int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "python": _to_lists(random.getstate()),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _to_lists(x):
    return [_to_lists(v) for v in x] if isinstance(x, (tuple, list)) else x


def _to_tuples(x):
    return tuple(_to_tuples(v) for v in x) if isinstance(x, list) else x


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    pos, has_gauss, cached = state["numpy_rest"]
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32),
                         int(pos), int(has_gauss), float(cached)))
    random.setstate(_to_tuples(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _writable_folder(folder: Path) -> None:
    """Create ``folder`` if needed and check that files can be written there."""
    if folder.exists() and not folder.is_dir():
        raise MinisslError(f"checkpoint_dir {folder} is a file, not a folder; give a folder "
                           "(it is created when missing)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as err:
        raise MinisslError(
            f"cannot write checkpoints to {folder} ({err.strerror or err}); make the folder "
            "writable or set checkpoint_dir to another one") from err


@contextlib.contextmanager
def signals_held():
    """Hold Ctrl-C (SIGINT) and SIGTERM until the block ends, then deliver them.

    A signal that lands in the middle of ``torch.save`` breaks the writer and loses the
    checkpoint being written; held, it arrives just after, so the file is whole and the
    run stops where that checkpoint says. Outside the main thread (where Python cannot
    set handlers) the block runs unguarded.
    """
    wanted = [getattr(signal, n) for n in ("SIGINT", "SIGTERM") if hasattr(signal, n)]
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {s: signal.getsignal(s) for s in wanted}
    if any(h is None for h in before.values()):  # a handler set outside Python: leave it
        yield
        return
    held: list[int] = []
    for s in wanted:
        signal.signal(s, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
        if held:
            signal.raise_signal(held[0])


def save_checkpoint(path: str | os.PathLike, **state: Any) -> None:
    """Write ``state`` with ``torch.save`` atomically: a crash never leaves half a file.

    The state goes to a temporary file in the same folder, is flushed to disk, and only
    then replaces ``path``; a reader sees the old checkpoint or the new one, never a mix.
    Ctrl-C or SIGTERM during the write is held until it is done (:func:`signals_held`).

    Raises:
        MinisslError: the file cannot be written (a read-only folder, a full disk); the
            message names the path. An older checkpoint at ``path`` is left as it was.
    """
    path = Path(path)
    _writable_folder(path.parent)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with signals_held():
        try:
            with open(tmp, "wb") as f:
                torch.save(state, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)  # atomic on POSIX and Windows
        except BaseException as err:  # a stop from another thread included: no half file
            tmp.unlink(missing_ok=True)
            if not isinstance(err, (OSError, RuntimeError)):
                raise
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
            raise MinisslError(
                f"cannot write the checkpoint {path} ({first}); check that its folder is "
                "writable and has free space, or set checkpoint_dir to another folder"
            ) from err


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict:
    """Read a checkpoint with ``weights_only=True``; a damaged file gets a clear error."""
    path = Path(path)
    if not path.exists():
        raise MinisslError(f"no checkpoint at {path}; train first, or check checkpoint_dir")
    if path.is_dir():
        raise MinisslError(f"{path} is a folder; give the checkpoint file in it "
                           f"({path / CHECKPOINT_NAME})")
    advice = "Delete it to start the run afresh, or point checkpoint_dir at a good one."
    if path.stat().st_size == 0:
        raise MinisslError(f"the checkpoint {path} is corrupt: the file is empty (0 bytes), "
                           f"e.g. left by a full disk or a copy that failed. {advice}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # truncated zip, wrong format, unsafe pickle...
        raise MinisslError(
            f"the checkpoint {path} is corrupt or not a minissl checkpoint "
            f"({_why_unreadable(err)}). {advice}"
        ) from err


def _why_unreadable(err: Exception) -> str:
    # torch's own message advises weights_only=False, which would run whatever code the
    # file holds; say what is wrong with the file instead.
    text = str(err)
    if "weights_only" in text or "Unsupported global" in text:
        return ("it is not a file written by torch.save with tensors and plain values "
                "only; minissl does not load files that can run code")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return f"{type(err).__name__}: {lines[0][:200]}" if lines else type(err).__name__


# Fields of TrainConfig that decide what a run computes; the others (device, progress,
# where and how often to checkpoint, logging, the callback) can change between resumes.
RUN_FIELDS = ("epochs", "max_steps", "batch_size", "lr", "optimizer", "momentum",
              "weight_decay", "warmup_steps", "schedule", "min_lr_ratio", "grad_clip",
              "precision", "seed", "drop_last")


def _plain(value: Any) -> Any:
    """``value`` as int/float/str/bool/None or lists of them; None when it is none of these."""
    if isinstance(value, (bool, str)) or value is None:
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (tuple, list)):
        items = [_plain(v) for v in value]
        return items if all(i is not None or v is None for i, v in zip(items, value)) else None
    return None


def _method_arguments(method: nn.Module) -> dict:
    """The method's constructor arguments that it keeps as plain attributes."""
    try:
        names = list(inspect.signature(type(method).__init__).parameters)[1:]
    except (TypeError, ValueError):
        return {}
    out = {}
    for name in names:
        value = method.__dict__.get(name, None)
        if value is not None and _plain(value) is not None:
            out[name] = _plain(value)
    return out


def _data_digest(tensors: tuple[torch.Tensor, ...]) -> str:
    """A short digest of the data: every shape and dtype, plus up to 64 evenly spaced items."""
    h = hashlib.sha256()
    for t in tensors:
        h.update(f"{tuple(t.shape)}{t.dtype}".encode())
        if len(t):
            idx = torch.linspace(0, len(t) - 1, min(len(t), 64)).round().long()
            sample = t.detach()[idx.to(t.device)].cpu().contiguous()
            h.update(sample.numpy().tobytes() if sample.dtype != torch.bfloat16
                     else sample.float().numpy().tobytes())
    return h.hexdigest()[:16]


def _data_fingerprint(data: Any) -> dict:
    if isinstance(data, torch.Tensor):
        data = (data,)
    if hasattr(data, "images") and hasattr(data, "labels"):
        return {"name": str(getattr(data, "name", "")), "split": str(getattr(data, "split", "")),
                "size": len(data.images), "digest": _data_digest((data.images, data.labels))}
    if isinstance(data, tuple) and all(isinstance(t, torch.Tensor) for t in data):
        return {"name": "tensors", "size": len(data[0]), "digest": _data_digest(data)}
    if isinstance(data, torch.utils.data.DataLoader):
        inner = data.dataset
        size = len(inner) if hasattr(inner, "__len__") else None
        return {"name": type(inner).__name__, "size": size, "batch_size": data.batch_size}
    return {"name": type(data).__name__, "size": len(data) if hasattr(data, "__len__") else None}


def _shapes(state: Any) -> dict[str, tuple[int, ...]]:
    """``{name: shape}`` of the tensors of a state dict (other entries are left out)."""
    if not isinstance(state, dict):
        return {}
    return {str(k): tuple(v.shape) for k, v in state.items() if isinstance(v, torch.Tensor)}


def _layers_digest(method: nn.Module) -> str:
    """A short digest of the name and shape of every tensor in ``method.state_dict()``."""
    text = ";".join(f"{k}:{list(v)}" for k, v in sorted(_shapes(method.state_dict()).items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _method_fingerprint(method: nn.Module) -> dict:
    """The method's class, its plain arguments, and its architecture.

    The architecture is the class of its encoder (when it has one) and a digest of the names
    and shapes of all its weights, so that another backbone, width or head is told apart even
    when the constructor arguments kept as attributes are the same.
    """
    out = {"name": type(method).__qualname__, "arguments": _method_arguments(method)}
    encoder = getattr(method, "encoder", None)
    if isinstance(encoder, nn.Module):
        out["encoder"] = type(encoder).__qualname__
    out["layers"] = _layers_digest(method)
    return out


def run_fingerprint(method: nn.Module, data: Any, config: TrainConfig) -> dict:
    """What decides a run: the method, its arguments and layers, the data, and the config.

    :func:`fit` stores this in every checkpoint and, before resuming, compares it with the
    run it is asked to do; a difference is refused (see :func:`check_resume`). The method is
    summarised by its class, the constructor arguments it keeps as attributes, its encoder's
    class and a digest of the name and shape of every weight. The data is summarised by its
    name, size and a digest of some of its items (which also tells apart two draws with
    different seeds).

    Example:
        >>> fp = run_fingerprint(torch.nn.Linear(2, 1), torch.zeros(8, 2), TrainConfig())
        >>> sorted(fp), fp["method"]["name"], fp["data"]["size"], len(fp["method"]["layers"])
        (['config', 'data', 'method'], 'Linear', 8, 16)
    """
    return {
        "method": _method_fingerprint(method),
        "data": _data_fingerprint(data),
        "config": {k: _plain(getattr(config, k)) for k in RUN_FIELDS},
    }


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _first_layer_difference(old: dict, new: dict) -> str:
    """The first tensor whose name or shape differs between two ``{name: shape}`` maps."""
    differ = [k for k in new if old.get(k) != new[k]] + [k for k in old if k not in new]
    if not differ:
        return ""
    k = differ[0]
    there = old[k] if k in old else "none"
    now = new[k] if k in new else "none"
    total = len(set(old) | set(new))
    return f"{k}: {there} there, {now} now; {len(differ)} of {total} tensors differ"


def _state_mismatch(stored: Any, expected: dict, limit: int = 5) -> str:
    """Why a state dict does not load into a module: its missing, unexpected and resized keys.

    Each list names at most ``limit`` keys and says how many more there are, so that two
    networks with hundreds of layers give a message of a few lines.

    Example:
        >>> _state_mismatch({"a": torch.zeros(2)}, {"a": torch.zeros(3), "b": torch.zeros(1)})
        'missing b; wrong shapes a: (2,) there, (3,) now'
    """
    old, new = _shapes(stored), _shapes(expected)

    def listed(items: list[str]) -> str:
        more = f" and {len(items) - limit} more" if len(items) > limit else ""
        return ", ".join(items[:limit]) + more

    missing = [k for k in new if k not in old]
    unexpected = [k for k in old if k not in new]
    wrong = [f"{k}: {old[k]} there, {new[k]} now" for k in new
             if k in old and old[k] != new[k]]
    parts = [f"missing {listed(missing)}" if missing else "",
             f"unexpected {listed(unexpected)}" if unexpected else "",
             f"wrong shapes {listed(wrong)}" if wrong else ""]
    return "; ".join(p for p in parts if p)


def check_resume(state: dict, fingerprint: dict, path: str | os.PathLike,
                 method: nn.Module | None = None) -> None:
    """Refuse to resume ``state`` (a loaded checkpoint) for a run with another fingerprint.

    Args:
        state: the checkpoint, as :func:`load_checkpoint` returns it.
        fingerprint: the new run's, from :func:`run_fingerprint`.
        path: the checkpoint's path, for the message.
        method: the new run's method; when given, a change of layers names the first
            tensor that differs (found in the checkpoint's weights).

    Checkpoints written before a field was recorded (no ``method.layers``, say) are not
    refused for lacking it.

    Raises:
        MinisslError: naming every field that differs, with the checkpoint's value and the
            new one, and saying how to start afresh.
    """
    stored = state.get("fingerprint")
    if not isinstance(stored, dict):
        return  # written before runs were fingerprinted: fit warns and resumes
    old, new = _flatten(stored), _flatten(fingerprint)
    if old.get("method.name") != new.get("method.name"):  # another method: its name says it
        old = {k: v for k, v in old.items()
               if not k.startswith("method.arguments.") and k != "method.layers"}
        new = {k: v for k, v in new.items()
               if not k.startswith("method.arguments.") and k != "method.layers"}
    absent = "(not set)"
    # Recorded by newer versions only: a checkpoint without them is not refused for that.
    optional = ("method.arguments.", "method.encoder", "method.layers")
    diffs = [f"{k}: {old.get(k, absent)!r} there, {new.get(k, absent)!r} now"
             for k in sorted(set(old) | set(new))
             if old.get(k, absent) != new.get(k, absent) and k != "method.layers"
             and not (k.startswith(optional) and k not in old)]
    if "method.layers" in old and old.get("method.layers") != new.get("method.layers"):
        first = _first_layer_difference(_shapes(state.get("model")),
                                        _shapes(method.state_dict())) if method else ""
        diffs.append(f"method.layers: differ ({first or 'a layer was added, removed or resized'})")
    if diffs:
        shown = "; ".join(diffs[:8]) + (f"; and {len(diffs) - 8} more" if len(diffs) > 8 else "")
        raise MinisslError(
            f"the checkpoint {path} holds another run and does not fit this one ({shown}). "
            "To start afresh and overwrite it, pass resume=False (`--fresh` on the command "
            "line); to keep it, use another checkpoint_dir; to continue it, repeat the "
            "settings it was made with.")


def check_checkpoint(method: nn.Module, data: Any, config: TrainConfig) -> int | None:
    """Check, without training, that ``fit(method, data, config)`` may use its checkpoint.

    Does what :func:`fit` does first: the checkpoint folder must be writable, and a
    checkpoint there (when ``config.resume``) must be readable and of the same run.

    Returns:
        The step the run would resume at, or None when it would start afresh.

    Raises:
        MinisslError: as :func:`fit` would, before any work.
    """
    if config.checkpoint_dir is None:
        return None
    path = Path(config.checkpoint_dir) / CHECKPOINT_NAME
    _writable_folder(path.parent)
    if not config.resume or not path.exists():
        return None
    state = load_checkpoint(path)
    _check_train_state(state, path)
    check_resume(state, run_fingerprint(method, data, config), path, method)
    return int(state["step"])


def _check_train_state(state: Any, path: Path) -> None:
    """A file :func:`fit` can resume from: the entries every checkpoint of it holds."""
    if not isinstance(state, dict):
        raise MinisslError(f"{path} is not a checkpoint of minissl.train.fit (it holds a "
                           f"{type(state).__name__}); delete it or use another checkpoint_dir")
    missing = [k for k in ("model", "history", "rng", "step") if k not in state]
    if missing:
        raise MinisslError(f"{path} is not a checkpoint of minissl.train.fit (no {missing} "
                           "entries); delete it or use another checkpoint_dir")


def _current_format(state: dict) -> dict:
    """A checkpoint in today's format: optimizer, scheduler and scaler states by phase.

    Older checkpoints of single-optimizer runs kept one of each under ``"optimizer"``,
    ``"scheduler"`` and ``"scaler"``; they become the states of the phase ``""``.
    """
    if "optimizer" not in state:
        return state
    state = dict(state)
    for old, new in (("optimizer", "optimizers"), ("scheduler", "schedulers"),
                     ("scaler", "scalers")):
        state[new] = {"": state.pop(old)}
    return state
