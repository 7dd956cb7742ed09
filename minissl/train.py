"""The one training loop of minissl: it knows nothing about any particular method.

A method is an ``nn.Module`` whose ``training_step(batch)`` returns ``{"loss": ...}``
(plus anything worth logging). :func:`fit` does everything else, once, for every method:
the device, mixed precision, ``torch.compile``, the optimizer and its warm-up + cosine
schedule, gradient clipping, a progress bar, a history that plots, the per-step hook
(``method.on_after_step``) for EMA targets and queues, checkpoints that resume exactly,
and a clear stop when the loss stops being a number. Under ``torchrun`` the same call trains
with DistributedDataParallel: each process takes its slice of every global batch.

Methods that need several optimizers (a GAN's discriminator and generator) say so with
``optimizers() -> {name: parameter groups}``. ``fit`` then builds one optimizer, one schedule
and one gradient scaler per name and, at every step, calls ``training_step(batch, phase=name)``
once per name in that order, stepping only that phase's optimizer after that phase's backward
pass. Values are logged as ``"name/key"``; ``"loss"`` is the sum of the phases' losses.

Example:
    >>> import torch
    >>> from torch import nn
    >>> class Regress(nn.Module):  # a toy "method": fit y = 2x
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.w = nn.Linear(1, 1)
    ...     def training_step(self, batch):
    ...         x, _ = batch
    ...         return {"loss": ((self.w(x) - 2 * x) ** 2).mean()}
    >>> x = torch.randn(64, 1)
    >>> history = fit(Regress(), x, TrainConfig(epochs=30, batch_size=16, lr=0.05, progress=False))
    >>> history["loss"][-1] < history["loss"][0]
    True
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import math
import numbers
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from minissl.utils import MinisslError, resolve_device

CHECKPOINT_NAME = "last.pt"


class TrainingDiverged(MinisslError):
    """The loss became NaN or infinite; the message names the step and the last good checkpoint."""


@dataclass
class TrainConfig:
    """Everything :func:`fit` needs to know. Every field has a default that works.

    Fields are checked when the config is made: a wrong type or an impossible value
    (``epochs=0``, ``batch_size="32"``) raises a ``TypeError`` or ``ValueError`` naming it.

    Attributes:
        epochs: passes over the data (at least 1).
        max_steps: if set, the number of optimizer steps (overrides ``epochs``).
        batch_size: examples per optimizer step (per process under ``torchrun``).
        lr: peak learning rate, reached at the end of warm-up.
        optimizer: ``"adamw"``, ``"adam"`` or ``"sgd"``.
        momentum: SGD momentum (ignored by Adam and AdamW).
        weight_decay: decoupled for AdamW; biases and norm weights get none.
        warmup_steps: linear warm-up from 0 to ``lr`` over this many steps.
        schedule: ``"cosine"`` (decay to ``min_lr_ratio * lr``) or ``"constant"``.
        min_lr_ratio: where the cosine schedule ends, as a fraction of ``lr`` (0 to 1).
        grad_clip: clip the global gradient norm to this value; ``None``: no clipping.
        device: ``"auto"`` picks CUDA (or MPS) when present, else the CPU.
        precision: ``"auto"``, ``"fp32"``, ``"bf16"`` or ``"fp16"`` (fp16 uses a GradScaler).
        compile: wrap ``training_step`` in ``torch.compile`` (worth it on GPUs).
        seed: seeds the weights' RNG use, the data order and the augmentations.
        checkpoint_dir: where ``last.pt`` goes; ``None``: no checkpoints.
        checkpoint_every: steps between checkpoints (default: once an epoch).
        resume: continue from ``checkpoint_dir/last.pt`` when it exists. The checkpoint
            records the run that wrote it (method, its arguments, data, this config); a
            different run is refused rather than continued. ``resume=False`` starts afresh
            and overwrites the checkpoint.
        progress: show a tqdm progress bar with the loss.
        log_every: record the history every this many steps.
        drop_last: drop the last incomplete batch (keeps batch statistics stable).
        desc: the progress bar's label.
        eval_every: call ``callback`` every this many steps (and at the end).
        callback: ``callback(method, step) -> dict | None``, numbers to log (e.g. a kNN
            accuracy during training); called every ``eval_every`` steps.
    """

    epochs: int = 10  # passes over the data
    max_steps: int | None = None  # if set, the number of optimizer steps (overrides epochs)
    batch_size: int = 128  # examples per optimizer step
    lr: float = 1e-3  # peak learning rate, reached at the end of warm-up
    optimizer: str = "adamw"  # "adamw", "adam" or "sgd"
    momentum: float = 0.9  # SGD momentum (ignored by Adam/AdamW)
    weight_decay: float = 1e-4  # decoupled for AdamW; biases and norm weights get none
    warmup_steps: int = 0  # linear warm-up from 0 to lr over this many steps
    schedule: str = "cosine"  # "cosine" (decay to min_lr_ratio * lr) or "constant"
    min_lr_ratio: float = 0.0  # where the cosine schedule ends, as a fraction of lr
    grad_clip: float | None = None  # clip the global gradient norm to this value
    device: str = "auto"  # "auto" picks CUDA (or MPS) when present, else the CPU
    precision: str = "auto"  # "auto", "fp32", "bf16" or "fp16" (fp16 uses a GradScaler)
    compile: bool = False  # wrap training_step in torch.compile (worth it on GPUs)
    seed: int = 0  # seeds weights' RNG use, data order and augmentations
    checkpoint_dir: str | os.PathLike | None = None  # where last.pt goes; None: no checkpoints
    checkpoint_every: int | None = None  # steps between checkpoints (default: once an epoch)
    resume: bool = True  # continue from checkpoint_dir/last.pt when it exists
    progress: bool = True  # a tqdm progress bar with the loss
    log_every: int = 1  # record the history every this many steps
    drop_last: bool = True  # drop the last incomplete batch (keeps batch statistics stable)
    desc: str = "train"  # the progress bar's label
    eval_every: int | None = None  # call `callback` every this many steps (and at the end)
    callback: Callable[[nn.Module, int], dict | None] | None = field(default=None, repr=False)
    # callback(method, step) -> dict of numbers to log (e.g. kNN accuracy during training)

    def __post_init__(self) -> None:
        _check_fields(self)


def _whole(cfg: TrainConfig, name: str, low: int, optional: bool = False) -> None:
    value = getattr(cfg, name)
    if optional and value is None:
        return
    kind = "None or a whole number" if optional else "a whole number"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"TrainConfig.{name} must be {kind} >= {low}; got {value!r} "
                        f"({type(value).__name__})")
    if value < low:
        raise ValueError(f"TrainConfig.{name} must be {kind} >= {low}; got {value}")


def _real(cfg: TrainConfig, name: str, low: float, high: float = math.inf,
          optional: bool = False, strict: bool = False) -> None:
    value = getattr(cfg, name)
    if optional and value is None:
        return
    bound = f"> {low:g}" if strict else f">= {low:g}"
    if high < math.inf:
        bound += f" and <= {high:g}"
    kind = "None or a number" if optional else "a number"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"TrainConfig.{name} must be {kind} {bound}; got {value!r} "
                        f"({type(value).__name__})")
    if not math.isfinite(value) or value < low or (strict and value == low) or value > high:
        raise ValueError(f"TrainConfig.{name} must be {kind} {bound}; got {value}")


def _check_fields(cfg: TrainConfig) -> None:
    """Type and range of every field, so a bad value fails where the config is made."""
    # With max_steps set the epoch count is not used, so 0 is allowed there.
    _whole(cfg, "epochs", 0 if cfg.max_steps is not None else 1)
    _whole(cfg, "max_steps", 1, optional=True)
    _whole(cfg, "batch_size", 1)
    _real(cfg, "lr", 0.0)
    _real(cfg, "momentum", 0.0)
    _real(cfg, "weight_decay", 0.0)
    _whole(cfg, "warmup_steps", 0)
    _real(cfg, "min_lr_ratio", 0.0, 1.0)
    _real(cfg, "grad_clip", 0.0, optional=True, strict=True)
    _whole(cfg, "seed", 0)
    _whole(cfg, "checkpoint_every", 1, optional=True)
    _whole(cfg, "log_every", 1)
    _whole(cfg, "eval_every", 0, optional=True)  # 0 or None: the callback is never called
    for name in ("optimizer", "schedule", "precision", "desc"):
        if not isinstance(getattr(cfg, name), str):
            raise TypeError(f"TrainConfig.{name} must be a string; got "
                            f"{getattr(cfg, name)!r}")
    if not isinstance(cfg.device, (str, torch.device)):
        raise TypeError(f"TrainConfig.device must be a string such as 'auto', 'cpu' or "
                        f"'cuda'; got {cfg.device!r}")
    if cfg.checkpoint_dir is not None and not isinstance(cfg.checkpoint_dir, (str, os.PathLike)):
        raise TypeError(f"TrainConfig.checkpoint_dir must be None or a path; got "
                        f"{cfg.checkpoint_dir!r}")
    if cfg.callback is not None and not callable(cfg.callback):
        raise TypeError(f"TrainConfig.callback must be None or a function (method, step); "
                        f"got {cfg.callback!r}")


class History:
    """The logged quantities of a run: ``history["loss"]`` is a list of floats.

    ``history.steps`` holds the optimizer step of each entry; quantities logged only some
    of the time (e.g. a kNN accuracy every 100 steps) are NaN elsewhere.
    """

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.records: dict[str, list[float]] = {}
        self.seconds: float = 0.0  # wall-clock time spent in fit, summed over resumes

    def log(self, step: int, values: dict[str, float]) -> None:
        if self.steps and self.steps[-1] == step:  # merge into the row of this step
            row = len(self.steps) - 1
        else:
            self.steps.append(step)
            row = len(self.steps) - 1
            for seq in self.records.values():
                seq.append(math.nan)
        for key, value in values.items():
            seq = self.records.setdefault(key, [math.nan] * len(self.steps))
            seq[row] = float(value)

    def __getitem__(self, key: str) -> list[float]:
        if key not in self.records:
            raise KeyError(f"{key!r} was not logged; logged quantities: {sorted(self.records)}")
        return [v for v in self.records[key] if not math.isnan(v)]

    def __contains__(self, key: object) -> bool:
        return key in self.records

    def __len__(self) -> int:
        return len(self.steps)

    def keys(self) -> list[str]:
        return list(self.records)

    def items(self):
        return self.records.items()

    def last(self, key: str = "loss") -> float:
        """The most recent logged value of ``key``."""
        values = self[key]
        if not values:
            raise KeyError(f"{key!r} has no logged value yet ({len(self.steps)} entries)")
        return values[-1]

    def steps_of(self, key: str) -> list[int]:
        """The steps at which ``key`` was logged (for quantities logged now and then)."""
        return [s for s, v in zip(self.steps, self.records[key]) if not math.isnan(v)]

    def plot(self, keys: list[str] | None = None, smooth: float = 0.0):
        """A matplotlib figure with one panel per logged quantity."""
        from minissl import viz

        return viz.plot_history(self, keys=keys, smooth=smooth)

    def state_dict(self) -> dict:
        return {"steps": list(self.steps), "records": {k: list(v) for k, v in self.records.items()},
                "seconds": self.seconds}

    def load_state_dict(self, state: dict) -> None:
        self.steps = list(state["steps"])
        self.records = {k: list(v) for k, v in state["records"].items()}
        self.seconds = float(state.get("seconds", 0.0))

    def __repr__(self) -> str:
        last = ", ".join(f"{k}={self[k][-1]:.4g}" for k in self.records if self[k])
        return f"History({len(self.steps)} entries; last: {last})"


# ----------------------------------------------------------------------------- data


class _Batches:
    """Deterministic, resumable batching: the order of epoch e depends only on (seed, e).

    Under ``torch.distributed`` every rank draws the same order, cuts it into global batches
    of ``batch_size * world`` examples, and takes its own slice of each: rank r gets the r-th
    ``batch_size`` of them. A user's DataLoader is used as it is (give it a DistributedSampler).
    """

    def __init__(self, data: Any, batch_size: int, drop_last: bool, seed: int,
                 rank: int = 0, world: int = 1, device: torch.device | None = None):
        self.seed = seed
        self.rank, self.world = rank, world
        self.loader: torch.utils.data.DataLoader | None = None
        if isinstance(data, torch.Tensor):
            if data.dim() == 0:
                raise ValueError("fit() takes a tensor of inputs whose first dimension counts "
                                 "the examples; got a 0-d tensor (a single number)")
            data = (data, torch.full((len(data),), -1, dtype=torch.long))
        if isinstance(data, tuple) and all(isinstance(t, torch.Tensor) for t in data):
            if not data or any(t.dim() == 0 for t in data) or len({len(t) for t in data}) > 1:
                shapes = [tuple(t.shape) for t in data]
                raise ValueError("fit() takes a tuple of tensors with one entry per example "
                                 f"each (the same first dimension); got shapes {shapes}")
            self.tensors: tuple[torch.Tensor, ...] | None = data
        elif hasattr(data, "images") and hasattr(data, "labels"):
            # minissl.data.ImageDataset: everything is in memory, so batches are slices.
            self.tensors = (data.images, data.labels)
        elif isinstance(data, torch.utils.data.DataLoader):
            self.tensors, self.loader = None, data
        elif isinstance(data, torch.utils.data.Dataset):
            self.tensors, self.dataset = None, data
        else:
            raise TypeError(
                "fit() expects a minissl.data.ImageDataset, a torch Dataset or DataLoader, "
                f"a tensor of inputs or a tuple of tensors; got {type(data).__name__}"
            )
        if self.tensors is not None and device is not None:
            # In-memory data goes to the device once; every batch is then sliced there.
            self.tensors = _place(self.tensors, device)
        self.batch_size = batch_size
        self.drop_last = drop_last
        n = len(self.loader) if self.loader is not None else self._num_examples()
        if self.loader is not None:
            self.per_epoch = n
        else:
            global_batch = batch_size * world
            self.per_epoch = n // global_batch if drop_last else math.ceil(n / global_batch)
        if self.per_epoch == 0:
            per_rank = "" if world == 1 else f" ({world} processes x {batch_size})"
            raise ValueError(
                f"the data has {n} examples, fewer than one batch of {batch_size * world}"
                f"{per_rank}; use a smaller batch_size or drop_last=False"
            )

    def _num_examples(self) -> int:
        return len(self.tensors[0]) if self.tensors is not None else len(self.dataset)

    def epoch(self, epoch: int, skip: int = 0) -> Iterator:
        """The batches of one epoch, starting after the first ``skip`` of them."""
        if self.loader is not None:  # a user's loader: its order is its own business
            for i, batch in enumerate(self.loader):
                if i >= skip:
                    yield batch
            return
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(self._num_examples(), generator=g)
        if self.tensors is not None:  # drawn on the CPU (the same order everywhere), used there
            order = order.to(self.tensors[0].device)
        for b in range(skip, self.per_epoch):
            start = (b * self.world + self.rank) * self.batch_size
            idx = order[start:start + self.batch_size]
            if self.tensors is not None:
                yield tuple(t[idx] for t in self.tensors)
            else:
                items = [self.dataset[int(i)] for i in idx]
                yield torch.utils.data.default_collate(items)


class _Step(nn.Module):
    """Runs ``method.training_step`` as ``forward``, so DistributedDataParallel can wrap it.

    DDP synchronises gradients only for work done inside ``forward`` of the module it wraps;
    a method's ``training_step`` is not its ``forward``, hence this thin shell.
    """

    def __init__(self, method: nn.Module):
        super().__init__()
        self.method = method

    def forward(self, batch: Any, phase: str | None = None) -> dict:
        if phase is None:
            return self.method.training_step(batch)
        return self.method.training_step(batch, phase=phase)


# In-memory data goes to a GPU when it takes at most this share of the free memory.
DEVICE_DATA_SHARE = 0.5


def _place(tensors: tuple[torch.Tensor, ...], device: torch.device) -> tuple[torch.Tensor, ...]:
    """In-memory tensors on ``device`` (copied once), where they fit.

    On a CUDA device the data moves when it takes at most ``DEVICE_DATA_SHARE`` of the free
    memory; a larger set stays on the CPU and each batch is copied over as it is sliced.
    """
    if device.type == "cuda":
        size = sum(t.numel() * t.element_size() for t in tensors)
        free, _ = torch.cuda.mem_get_info(device)
        if size > DEVICE_DATA_SHARE * free:
            return tensors
    return tuple(t.to(device) for t in tensors)


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    return batch


# ------------------------------------------------------------------- optimisation


def _param_groups(method: nn.Module, weight_decay: float) -> list[dict]:
    if hasattr(method, "param_groups"):
        groups = method.param_groups()
        for g in groups:
            g.setdefault("weight_decay", weight_decay)
        return groups
    decay, no_decay = [], []
    for p in method.parameters():
        if p.requires_grad:
            # Biases and normalisation scales are 1-D; decaying them only hurts.
            (decay if p.dim() > 1 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(method: nn.Module, cfg: TrainConfig,
                   groups: list[dict] | None = None) -> torch.optim.Optimizer:
    """The optimizer named by ``cfg.optimizer`` over the method's parameter groups.

    ``groups`` (torch parameter groups; a group may carry its own ``lr`` or ``betas``)
    replaces the method's own groups; a group without ``weight_decay`` gets the config's.
    """
    if groups is None:
        groups = _param_groups(method, cfg.weight_decay)
    else:
        groups = [dict(g) for g in groups]
        for g in groups:
            g["params"] = list(g["params"])
            g.setdefault("weight_decay", cfg.weight_decay)
    groups = [g for g in groups if len(list(g["params"]))]
    if not groups:
        raise ValueError("the method has no trainable parameters")
    name = cfg.optimizer.lower()
    multi = {"foreach": _foreach(groups)}
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, **multi)
    if name == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, **multi)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, **multi)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}; use 'adamw', 'adam' or 'sgd'")


def _foreach(groups: list[dict]) -> bool | None:
    """True (update all weights with one call per operation) when every weight is on the CPU.

    torch already does so on CUDA, but on the CPU it defaults to a Python loop over the
    weights; the multi-tensor update gives the same numbers, bit for bit, in a quarter of the
    time (3 against 12 ms a step for the quick profile's SimCLR on one thread). ``None``
    elsewhere leaves torch's own choice.
    """
    params = [p for g in groups for p in g["params"]]
    return True if params and all(p.device.type == "cpu" for p in params) else None


def lr_factor(step: int, total_steps: int, warmup_steps: int = 0, schedule: str = "cosine",
              min_ratio: float = 0.0) -> float:
    """The learning-rate multiplier at ``step``: linear warm-up, then cosine decay.

    The cosine form is SGDR's without restarts (Loshchilov & Hutter, 2017, arXiv 1608.03983).

    Example:
        >>> [round(lr_factor(s, 10, warmup_steps=2), 3) for s in (0, 1, 2, 6, 10)]
        [0.5, 1.0, 1.0, 0.5, 0.0]
    """
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    if schedule != "cosine":
        raise ValueError(f"unknown schedule {schedule!r}; use 'cosine' or 'constant'")
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def _phase_groups(method: nn.Module) -> dict[str, list[dict] | None]:
    """``{phase name: parameter groups}``; ``{"": None}`` for a single-optimizer method."""
    if not hasattr(method, "optimizers"):
        return {"": None}
    phases = method.optimizers()
    if not isinstance(phases, dict) or not phases:
        raise TypeError(f"{type(method).__name__}.optimizers() must return a non-empty dict "
                        "{phase name: parameters or parameter groups}")
    out: dict[str, list[dict] | None] = {}
    for name, groups in phases.items():
        if not isinstance(name, str) or not name or "/" in name:
            raise ValueError(f"optimizer names must be non-empty strings without '/'; "
                             f"got {name!r}")
        groups = list(groups)
        if groups and not isinstance(groups[0], dict):  # plain parameters: one group
            groups = [{"params": groups}]
        out[name] = groups
    return out


def _precision(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for plain fp32."""
    p = cfg.precision.lower()
    if p not in ("auto", "fp32", "bf16", "fp16"):
        raise ValueError(f"unknown precision {cfg.precision!r}; use auto, fp32, bf16 or fp16")
    if p == "auto":
        # On CPUs autocast rarely speeds up small models, so "auto" means fp32 there.
        if device.type != "cuda":
            return None
        return torch.bfloat16 if _native_bf16(device) else torch.float16
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[p]


def _native_bf16(device: torch.device) -> bool:
    """True where the GPU computes bf16 in hardware: compute capability 8.0 or higher.

    ``torch.cuda.is_bf16_supported()`` is also true on older GPUs (a T4 is 7.5), where bf16
    is emulated and slow; those get fp16 with a gradient scaler instead.
    """
    index = device.index if device.index is not None else torch.cuda.current_device()
    major, minor = torch.cuda.get_device_capability(index)
    return (major, minor) >= (8, 0)


# -------------------------------------------------------------------- checkpoints


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


def save_checkpoint(path: str | os.PathLike, **state: Any) -> None:
    """Write ``state`` with ``torch.save`` atomically: a crash never leaves half a file.

    The state goes to a temporary file in the same folder, is flushed to disk, and only
    then replaces ``path``; a reader sees the old checkpoint or the new one, never a mix.

    Raises:
        MinisslError: the file cannot be written (a read-only folder, a full disk); the
            message names the path. An older checkpoint at ``path`` is left as it was.
    """
    path = Path(path)
    _writable_folder(path.parent)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic on POSIX and Windows
    except BaseException as err:  # Ctrl-C mid-write included: no half-written file stays
        tmp.unlink(missing_ok=True)
        if not isinstance(err, (OSError, RuntimeError)):
            raise
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise MinisslError(
            f"cannot write the checkpoint {path} ({first}); check that its folder is "
            "writable and has free space, or set checkpoint_dir to another folder") from err


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


def run_fingerprint(method: nn.Module, data: Any, config: TrainConfig) -> dict:
    """What decides a run: the method and its arguments, the data, and the config.

    :func:`fit` stores this in every checkpoint and, before resuming, compares it with the
    run it is asked to do; a difference is refused (see :func:`check_resume`). The data is
    summarised by its name, size and a digest of some of its items (which also tells apart
    two draws with different seeds).

    Example:
        >>> fp = run_fingerprint(torch.nn.Linear(2, 1), torch.zeros(8, 2), TrainConfig())
        >>> sorted(fp), fp["method"]["name"], fp["data"]["size"]
        (['config', 'data', 'method'], 'Linear', 8)
    """
    return {
        "method": {"name": type(method).__qualname__, "arguments": _method_arguments(method)},
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


def check_resume(state: dict, fingerprint: dict, path: str | os.PathLike) -> None:
    """Refuse to resume ``state`` (a loaded checkpoint) for a run with another fingerprint.

    Raises:
        MinisslError: naming every field that differs, with the checkpoint's value and the
            new one, and saying how to start afresh.
    """
    stored = state.get("fingerprint")
    if not isinstance(stored, dict):
        return  # written before runs were fingerprinted: fit warns and resumes
    old, new = _flatten(stored), _flatten(fingerprint)
    if old.get("method.name") != new.get("method.name"):  # another method: its name says it
        old = {k: v for k, v in old.items() if not k.startswith("method.arguments.")}
        new = {k: v for k, v in new.items() if not k.startswith("method.arguments.")}
    absent = "(not set)"
    diffs = [f"{k}: {old.get(k, absent)!r} there, {new.get(k, absent)!r} now"
             for k in sorted(set(old) | set(new))
             if old.get(k, absent) != new.get(k, absent)
             and not (k.startswith("method.arguments.") and k not in old)]
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
    check_resume(state, run_fingerprint(method, data, config), path)
    return int(state["step"])


class TrainingInterrupted(KeyboardInterrupt):
    """:func:`fit` was stopped by Ctrl-C (or SIGTERM under the command line).

    Still a ``KeyboardInterrupt``, so it stops a script as before; ``str()`` is one line
    saying where the last checkpoint is. Attributes: ``step`` (the step reached),
    ``saved_step`` (that of the last checkpoint, or None) and ``checkpoint`` (its path, or
    None).
    """

    def __init__(self, message: str, step: int, saved_step: int | None,
                 checkpoint: Path | None):
        super().__init__(message)
        self.step, self.saved_step, self.checkpoint = step, saved_step, checkpoint


# --------------------------------------------------------------------------- fit


def fit(method: nn.Module, data: Any, config: TrainConfig | None = None, **overrides) -> History:
    """Train ``method`` on ``data`` and return its :class:`History`.

    Args:
        method: an ``nn.Module`` with ``training_step(batch) -> {"loss": scalar, ...}``;
            optionally ``on_after_step(step, total_steps)`` (called after every optimizer
            step: EMA targets, queues) and ``param_groups()`` (optimizer groups; a group with
            ``"fixed_lr": True`` is left out of the schedule). A method with several
            optimizers defines ``optimizers() -> {name: params or parameter groups}``
            (ordered, e.g. ``{"d": ..., "g": ...}``) and ``training_step(batch, phase=name)``;
            each step runs the phases in order, each with its own backward pass, gradient
            clipping, optimizer, schedule and gradient scaler, on the same batch.
        data: a ``minissl.data.ImageDataset`` (fast path: batches are tensor slices), any
            ``Dataset`` of ``(input, label)``, a ``DataLoader``, a tensor of inputs (labels
            become -1) or a tuple of tensors.
        config: a :class:`TrainConfig`; keyword ``overrides`` replace its fields. Under
            ``torch.distributed`` (e.g. ``torchrun --nproc_per_node=2``), ``batch_size`` is per
            process and gradients are averaged across processes by DDP.

    Returns:
        The history: ``history["loss"]``, ``history["lr"]``, and whatever the method logged
        (as ``"phase/key"`` for a method with several optimizers; ``"loss"`` is then the sum
        of the phases' losses and ``"lr"`` the first phase's).

    Raises:
        TrainingDiverged: the loss became NaN or infinite (the message names the step).
        MinisslError: a checkpoint to resume from is corrupt.
    """
    cfg = TrainConfig(**{**asdict(config or TrainConfig()), **overrides})
    if config is not None and config.callback is not None and "callback" not in overrides:
        cfg.callback = config.callback  # asdict() deep-copies; keep the caller's function
    if not hasattr(method, "training_step"):
        raise TypeError(
            f"{type(method).__name__} has no training_step(batch); a minissl method must "
            "return {'loss': ...} from training_step"
        )
    _validate(cfg)
    run = _set_up(method, data, cfg)
    _restore(run, method)
    step_fn = _step_function(run, method)
    hook = getattr(method, "on_after_step", None)
    bar = None
    if cfg.progress and run.step < run.total and run.rank == 0:
        from tqdm.auto import tqdm

        bar = tqdm(total=run.total, initial=run.step, desc=cfg.desc, leave=True,
                   dynamic_ncols=True)
    started = time.perf_counter()
    checked = False
    try:
        while run.step < run.total:
            epoch, skip = divmod(run.step, run.batches.per_epoch)
            for batch in run.batches.epoch(epoch, skip):
                batch = _to_device(batch, run.device)
                if not checked:  # where the data enters: the first batch of this call
                    _check_batch(batch, method)
                    checked = True
                log_now = (run.step + 1) % cfg.log_every == 0 or run.step + 1 == run.total
                value, logged = _optimizer_step(run, method, step_fn, batch, epoch, log_now)
                run.step += 1
                if hook is not None:
                    hook(run.step, run.total)
                if log_now:
                    logged["loss"] = value
                    logged["lr"] = next(iter(run.optimizers.values())).param_groups[0]["lr"]
                    run.history.log(run.step, logged)
                if cfg.callback is not None and cfg.eval_every and (
                        run.step % cfg.eval_every == 0 or run.step == run.total):
                    extra = cfg.callback(method, run.step)
                    method.train()
                    if extra:
                        run.history.log(run.step, extra)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{value:.4f}", refresh=False)
                if run.step % run.every == 0 or run.step == run.total:
                    run.history.seconds += time.perf_counter() - started
                    started = time.perf_counter()
                    _save(run, method)
                if run.step >= run.total:
                    break
    except KeyboardInterrupt as err:
        if isinstance(err, TrainingInterrupted):
            raise
        raise _interrupted(run) from None
    finally:
        if bar is not None:
            bar.close()
    run.history.seconds += time.perf_counter() - started
    return run.history


@dataclass
class _Run:
    """Everything one call of :func:`fit` sets up, and where it stands (``step``)."""

    cfg: TrainConfig
    device: torch.device
    rank: int
    world: int
    batches: _Batches
    total: int  # optimizer steps of the whole run
    optimizers: dict[str, torch.optim.Optimizer]  # by phase; "" for the usual single one
    schedulers: dict[str, torch.optim.lr_scheduler.LambdaLR]
    scalers: dict[str, torch.amp.GradScaler]
    amp_dtype: torch.dtype | None
    ckpt_path: Path | None
    fingerprint: dict
    every: int  # steps between checkpoints
    history: History = field(default_factory=lambda: History())
    step: int = 0
    saved_step: int | None = None  # the step of the last checkpoint this run wrote or read

    @property
    def single(self) -> bool:
        return list(self.optimizers) == [""]


def _set_up(method: nn.Module, data: Any, cfg: TrainConfig) -> _Run:
    """Device, seeds, batches, optimizers, schedules and scalers of one call of fit."""
    from minissl import distributed

    rank, world = distributed.rank(), distributed.world_size()
    device = resolve_device(cfg.device)
    if world > 1 and device.type == "cuda":  # under torchrun: one GPU per process
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
        torch.cuda.set_device(device)
    # Each process draws its own augmentations; DDP gives every rank rank 0's initial weights.
    torch.manual_seed(cfg.seed + rank)
    np.random.seed(cfg.seed + rank)
    random.seed(cfg.seed + rank)
    method.to(device)
    method.train()

    batches = _Batches(data, cfg.batch_size, cfg.drop_last, cfg.seed, rank, world, device)
    total = cfg.max_steps if cfg.max_steps is not None else cfg.epochs * batches.per_epoch
    phases = _phase_groups(method)  # {"": None} for the usual single optimizer
    optimizers = {name: make_optimizer(method, cfg, groups) for name, groups in phases.items()}
    schedulers = {
        name: torch.optim.lr_scheduler.LambdaLR(opt, [
            (lambda s: 1.0) if g.get("fixed_lr", False) else
            (lambda s: lr_factor(s, total, cfg.warmup_steps, cfg.schedule, cfg.min_lr_ratio))
            for g in opt.param_groups])
        for name, opt in optimizers.items()}
    amp_dtype = _precision(cfg, device)
    scalers = {name: torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
               for name in optimizers}
    ckpt_path = Path(cfg.checkpoint_dir) / CHECKPOINT_NAME if cfg.checkpoint_dir else None
    if ckpt_path is not None and rank == 0:
        _writable_folder(ckpt_path.parent)  # now, not after the first epoch of work
    return _Run(cfg, device, rank, world, batches, total, optimizers, schedulers, scalers,
                amp_dtype, ckpt_path, run_fingerprint(method, data, cfg),
                cfg.checkpoint_every or batches.per_epoch)


def _restore(run: _Run, method: nn.Module) -> None:
    """Continue from ``checkpoint_dir/last.pt`` when it exists and holds this run.

    Checkpoints hold rank 0's RNG state: resumption is exact for one process; under DDP the
    other ranks continue with fresh (but still seeded) augmentation streams.
    """
    path = run.ckpt_path
    if path is None or not run.cfg.resume or not path.exists():
        return
    state = load_checkpoint(path, map_location=run.device)
    _check_train_state(state, path)
    check_resume(state, run.fingerprint, path)
    state = _current_format(state)
    try:
        method.load_state_dict(state["model"])
        for name in run.optimizers:
            run.optimizers[name].load_state_dict(state["optimizers"][name])
            run.schedulers[name].load_state_dict(state["schedulers"][name])
            run.scalers[name].load_state_dict(state["scalers"][name])
    except (RuntimeError, ValueError, KeyError) as err:
        raise MinisslError(
            f"the checkpoint {path} does not fit this method/optimizer ({err}). "
            "Use another checkpoint_dir, or delete the file to start afresh."
        ) from err
    run.history.load_state_dict(state["history"])
    _set_rng_state(state["rng"])
    run.step = run.saved_step = int(state["step"])
    if run.rank != 0:
        return
    if "fingerprint" not in state:
        print(f"warning: {path} does not record which run wrote it (an older minissl made "
              f"it); resuming at step {run.step} of {run.total} without checking that the "
              "settings match", flush=True)
    elif run.step >= run.total:
        print(f"{path} holds this run, complete (step {run.step} of {run.total}): nothing "
              "left to train; resume=False trains it again", flush=True)
    else:
        print(f"resuming from {path} at step {run.step} of {run.total}", flush=True)


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


def _save(run: _Run, method: nn.Module) -> None:
    """Write ``last.pt`` (rank 0 only): everything :func:`_restore` needs to go on exactly."""
    if run.ckpt_path is None:
        return
    if run.rank == 0:
        save_checkpoint(
            run.ckpt_path, model=method.state_dict(),
            optimizers={k: o.state_dict() for k, o in run.optimizers.items()},
            schedulers={k: s.state_dict() for k, s in run.schedulers.items()},
            scalers={k: s.state_dict() for k, s in run.scalers.items()},
            history=run.history.state_dict(), rng=_rng_state(), step=run.step,
            fingerprint=run.fingerprint,
            config={k: v for k, v in asdict(run.cfg).items()
                    if isinstance(v, (int, float, str, bool, type(None)))})
    run.saved_step = run.step


def _step_function(run: _Run, method: nn.Module):
    """``training_step`` as a module's forward: wrapped by DDP and compiled when asked."""
    runner: nn.Module = _Step(method)
    if run.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        runner = DistributedDataParallel(
            runner, device_ids=[run.device.index] if run.device.type == "cuda" else None,
            find_unused_parameters=not run.single)  # a phase leaves the others' weights unused
    return torch.compile(runner) if run.cfg.compile else runner


def _optimizer_step(run: _Run, method: nn.Module, step_fn, batch: Any, epoch: int,
                    log_now: bool) -> tuple[float, dict[str, float]]:
    """One optimizer step of every phase on ``batch``: (the summed loss, what to log)."""
    cfg = run.cfg
    autocast = (torch.autocast(run.device.type, dtype=run.amp_dtype)
                if run.amp_dtype is not None else contextlib.nullcontext())
    logged: dict[str, float] = {}
    value = 0.0
    for name, optimizer in run.optimizers.items():
        with autocast:
            out = step_fn(batch) if run.single else step_fn(batch, name)
        if not isinstance(out, dict) or "loss" not in out:
            raise TypeError(f"{type(method).__name__}.training_step must return a dict with "
                            "a 'loss' entry")
        loss = out["loss"]
        phase_value = float(_mean_over_ranks(loss.detach(), run.world))
        if not math.isfinite(phase_value):
            raise _diverged(run, name, phase_value, batch, epoch)
        value += phase_value
        scaler = run.scalers[name]
        # Zeroing this phase's gradients right before its backward pass also drops whatever
        # an earlier phase's backward left on these weights.
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if cfg.grad_clip is not None:
            scaler.unscale_(optimizer)
            params = [p for g in optimizer.param_groups for p in g["params"]]
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        run.schedulers[name].step()
        if log_now:
            prefix = "" if run.single else f"{name}/"
            logged.update({prefix + k: float(v.detach() if isinstance(v, torch.Tensor) else v)
                           for k, v in out.items() if _is_number(v)})
    return value, logged


def _diverged(run: _Run, phase: str, value: float, batch: Any, epoch: int) -> TrainingDiverged:
    """The error for a NaN or infinite loss: where the last good checkpoint is, and why."""
    if run.saved_step is not None and run.ckpt_path is not None:
        where = f"the last good checkpoint (step {run.saved_step}) is kept at {run.ckpt_path}"
    elif run.ckpt_path is not None:
        where = (f"no checkpoint was written yet (the first was due at step {run.every} in "
                 f"{run.ckpt_path.parent})")
    else:
        where = "no checkpoint was written (set checkpoint_dir to keep one)"
    what = "the loss" if run.single else f"the loss of phase {phase!r}"
    shown = "nan" if math.isnan(value) else ("+inf" if value > 0 else "-inf")
    return TrainingDiverged(f"{what} became {shown} at step {run.step} (epoch {epoch}); "
                            f"{where}. {_divergence_advice(batch, run.step)}")


def _interrupted(run: _Run) -> TrainingInterrupted:
    """The error for Ctrl-C or SIGTERM: where the last checkpoint is, and how to go on."""
    saved = run.saved_step if run.ckpt_path is not None else None
    if saved is not None:
        where = (f"the last checkpoint (step {saved}) is {run.ckpt_path}; the same call again "
                 "resumes from it")
    elif run.ckpt_path is not None:
        where = f"no checkpoint was written yet in {run.ckpt_path.parent}"
    else:
        where = "no checkpoint was kept (set checkpoint_dir to resume a stopped run)"
    return TrainingInterrupted(f"training stopped at step {run.step} of {run.total}: {where}",
                               run.step, saved, run.ckpt_path if saved is not None else None)


def _mean_over_ranks(x: torch.Tensor, world: int) -> torch.Tensor:
    # Every rank sees the same (mean) loss, so a NaN on one stops all of them together.
    if world == 1:
        return x
    import torch.distributed as dist

    x = x.clone().float()
    dist.all_reduce(x)
    return x / world


def _validate(cfg: TrainConfig) -> None:
    # Checked before any work, so a typo fails in a second rather than after the data loads.
    choices = {"optimizer": ("adamw", "adam", "sgd"), "schedule": ("cosine", "constant"),
               "precision": ("auto", "fp32", "bf16", "fp16")}
    for name, valid in choices.items():
        if str(getattr(cfg, name)).lower() not in valid:
            raise ValueError(f"unknown {name} {getattr(cfg, name)!r}; use one of {list(valid)}")
    if cfg.batch_size < 1 or cfg.log_every < 1:
        raise ValueError("batch_size and log_every must be at least 1")


def _check_train_state(state: Any, path: Path) -> None:
    """A file :func:`fit` can resume from: the entries every checkpoint of it holds."""
    if not isinstance(state, dict):
        raise MinisslError(f"{path} is not a checkpoint of minissl.train.fit (it holds a "
                           f"{type(state).__name__}); delete it or use another checkpoint_dir")
    missing = [k for k in ("model", "history", "rng", "step") if k not in state]
    if missing:
        raise MinisslError(f"{path} is not a checkpoint of minissl.train.fit (no {missing} "
                           "entries); delete it or use another checkpoint_dir")


def _floats(batch: Any, where: str = "batch") -> Iterator[tuple[str, torch.Tensor]]:
    """The floating-point tensors of a batch, each with a name saying where it sits."""
    if isinstance(batch, torch.Tensor):
        if batch.is_floating_point():
            yield where, batch
    elif isinstance(batch, (list, tuple)):
        for i, item in enumerate(batch):
            yield from _floats(item, f"{where}[{i}]")
    elif isinstance(batch, dict):
        for key, item in batch.items():
            yield from _floats(item, f"{where}[{key!r}]")


def _check_batch(batch: Any, method: nn.Module | None = None) -> None:
    """Float images, finite values, no 0..255 pixels, and no float64 for float32 weights."""
    images = batch[0] if isinstance(batch, (list, tuple)) and batch else batch
    if isinstance(images, torch.Tensor) and images.dim() == 4 and not images.is_floating_point():
        raise TypeError(f"the images are {images.dtype}, but minissl expects float images in "
                        "[0, 1]; convert 0..255 pixels with images.float() / 255")
    weights = next((p.dtype for p in method.parameters() if p.is_floating_point()),
                   None) if method is not None else None
    for where, t in _floats(batch):
        if weights is not None and t.dtype == torch.float64 and weights != torch.float64:
            raise TypeError(f"{where} of the first batch is float64, but the method's weights "
                            f"are {weights}; convert the data with .float()")
        finite = torch.isfinite(t)
        if not bool(finite.all()):
            bad = int((~finite).sum())
            raise ValueError(
                f"the data has NaN or infinite values: {bad} of {t.numel()} in {where} of the "
                "first batch. Clean the data (e.g. torch.nan_to_num) or drop those examples "
                "before training")
        if t.dim() == 4 and t.numel() and float(t.min()) >= 0 and float(t.max()) > 2:
            raise ValueError(
                f"the images in {where} have values up to {float(t.max()):g}, but minissl "
                "expects images in [0, 1]; convert 0..255 pixels with images / 255")


def _divergence_advice(batch: Any, step: int) -> str:
    for where, t in _floats(batch):
        if not bool(torch.isfinite(t).all()):
            return (f"The batch itself holds NaN or infinite values (in {where}): the data is "
                    "the cause, not the learning rate; clean it and train again.")
    if step == 0:
        return ("This is the first step, before any update, so the learning rate is not the "
                "cause: look at the data (NaN or inf values, images outside [0, 1]) and at "
                "what the method computes from it.")
    return "Try a lower lr, grad_clip=1.0, more warm-up or precision='fp32'."


def _is_number(v: Any) -> bool:
    if isinstance(v, torch.Tensor):
        return v.numel() == 1
    return isinstance(v, (int, float)) and not isinstance(v, bool)
