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
import math
import os
import random
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
    """Everything :func:`fit` needs to know. Every field has a default that works."""

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
        return self[key][-1]

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
                 rank: int = 0, world: int = 1):
        self.seed = seed
        self.rank, self.world = rank, world
        self.loader: torch.utils.data.DataLoader | None = None
        if isinstance(data, torch.Tensor):
            data = (data, torch.full((len(data),), -1, dtype=torch.long))
        if isinstance(data, tuple) and all(isinstance(t, torch.Tensor) for t in data):
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


def _dist_info() -> tuple[int, int]:
    """(rank, world size); (0, 1) without an initialised process group."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


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
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr)
    if name == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}; use 'adamw', 'adam' or 'sgd'")


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
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[p]


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


def save_checkpoint(path: str | os.PathLike, **state: Any) -> None:
    """Write ``state`` with ``torch.save`` atomically: a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # atomic on POSIX and Windows


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict:
    """Read a checkpoint with ``weights_only=True``; a damaged file gets a clear error."""
    path = Path(path)
    if not path.exists():
        raise MinisslError(f"no checkpoint at {path}; train first, or check checkpoint_dir")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # truncated zip, wrong format, unsafe pickle...
        raise MinisslError(
            f"the checkpoint {path} is corrupt or not a minissl checkpoint "
            f"({err.__class__.__name__}: {str(err).splitlines()[0][:200]}). "
            "Delete it to start the run afresh, or point checkpoint_dir at a good one."
        ) from err


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
    rank, world = _dist_info()
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

    batches = _Batches(data, cfg.batch_size, cfg.drop_last, cfg.seed, rank, world)
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
    single = list(optimizers) == [""]
    history = History()
    step = 0

    ckpt_path = Path(cfg.checkpoint_dir) / CHECKPOINT_NAME if cfg.checkpoint_dir else None
    # Checkpoints hold rank 0's RNG state: resumption is exact for one process; under DDP
    # the other ranks continue with fresh (but still seeded) augmentation streams.
    every = cfg.checkpoint_every or batches.per_epoch
    if ckpt_path is not None and cfg.resume and ckpt_path.exists():
        state = load_checkpoint(ckpt_path, map_location=device)
        try:
            method.load_state_dict(state["model"])
            if single:  # the single-optimizer format: one optimizer, scheduler, scaler
                optimizers[""].load_state_dict(state["optimizer"])
                schedulers[""].load_state_dict(state["scheduler"])
                scalers[""].load_state_dict(state["scaler"])
            else:
                for name in optimizers:
                    optimizers[name].load_state_dict(state["optimizers"][name])
                    schedulers[name].load_state_dict(state["schedulers"][name])
                    scalers[name].load_state_dict(state["scalers"][name])
        except (RuntimeError, ValueError, KeyError) as err:
            raise MinisslError(
                f"the checkpoint {ckpt_path} does not fit this method/optimizer ({err}). "
                "Use another checkpoint_dir, or delete the file to start afresh."
            ) from err
        history.load_state_dict(state["history"])
        _set_rng_state(state["rng"])
        step = int(state["step"])

    def checkpoint() -> None:
        if ckpt_path is not None and rank == 0:
            if single:
                opt_state = {"optimizer": optimizers[""].state_dict(),
                             "scheduler": schedulers[""].state_dict(),
                             "scaler": scalers[""].state_dict()}
            else:
                opt_state = {
                    "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
                    "schedulers": {k: s.state_dict() for k, s in schedulers.items()},
                    "scalers": {k: s.state_dict() for k, s in scalers.items()}}
            save_checkpoint(ckpt_path, model=method.state_dict(), **opt_state,
                            history=history.state_dict(), rng=_rng_state(), step=step,
                            config={k: v for k, v in asdict(cfg).items()
                                    if isinstance(v, (int, float, str, bool, type(None)))})

    runner: nn.Module = _Step(method)
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        runner = DistributedDataParallel(
            runner, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=not single)  # a phase leaves the others' weights unused
    step_fn = torch.compile(runner) if cfg.compile else runner
    autocast = (torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None
                else contextlib.nullcontext())
    hook = getattr(method, "on_after_step", None)
    params = {name: [p for g in opt.param_groups for p in g["params"]]
              for name, opt in optimizers.items()}
    first = next(iter(optimizers.values()))

    bar = None
    if cfg.progress and step < total and rank == 0:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, initial=step, desc=cfg.desc, leave=True, dynamic_ncols=True)
    started = time.perf_counter()
    last_saved = step
    try:
        while step < total:
            epoch, skip = divmod(step, batches.per_epoch)
            for batch in batches.epoch(epoch, skip):
                batch = _to_device(batch, device)
                logged: dict[str, float] = {}
                log_now = (step + 1) % cfg.log_every == 0 or step + 1 == total
                value = 0.0
                for name, optimizer in optimizers.items():
                    with autocast:
                        out = step_fn(batch) if single else step_fn(batch, name)
                    if not isinstance(out, dict) or "loss" not in out:
                        raise TypeError(f"{type(method).__name__}.training_step must return a "
                                        "dict with a 'loss' entry")
                    loss = out["loss"]
                    phase_value = float(_mean_over_ranks(loss.detach(), world))
                    if not math.isfinite(phase_value):
                        where = (f"the last good checkpoint (step {last_saved}) is kept at "
                                 f"{ckpt_path}" if ckpt_path is not None and ckpt_path.exists()
                                 else "no checkpoint was written (set checkpoint_dir to keep one)")
                        what = "the loss" if single else f"the loss of phase {name!r}"
                        raise TrainingDiverged(
                            f"{what} became {phase_value} at step {step} (epoch {epoch}); "
                            f"{where}. Try a lower lr, grad_clip=1.0, more warm-up or "
                            "precision='fp32'."
                        )
                    value += phase_value
                    scaler = scalers[name]
                    # Zeroing this phase's gradients right before its backward pass also drops
                    # whatever an earlier phase's backward left on these weights.
                    optimizer.zero_grad(set_to_none=True)
                    scaler.scale(loss).backward()
                    if cfg.grad_clip is not None:
                        scaler.unscale_(optimizer)
                        torch.nn.utils.clip_grad_norm_(params[name], cfg.grad_clip)
                    scaler.step(optimizer)
                    scaler.update()
                    schedulers[name].step()
                    if log_now:
                        prefix = "" if single else f"{name}/"
                        logged.update({prefix + k: float(v.detach() if isinstance(v, torch.Tensor)
                                                         else v)
                                       for k, v in out.items() if _is_number(v)})
                step += 1
                if hook is not None:
                    hook(step, total)
                if log_now:
                    logged["loss"] = value
                    logged["lr"] = first.param_groups[0]["lr"]
                    history.log(step, logged)
                if cfg.callback is not None and cfg.eval_every and (
                        step % cfg.eval_every == 0 or step == total):
                    extra = cfg.callback(method, step)
                    method.train()
                    if extra:
                        history.log(step, extra)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{value:.4f}", refresh=False)
                if step % every == 0 or step == total:
                    history.seconds += time.perf_counter() - started
                    started = time.perf_counter()
                    checkpoint()
                    last_saved = step
                if step >= total:
                    break
    finally:
        if bar is not None:
            bar.close()
    history.seconds += time.perf_counter() - started
    return history


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


def _is_number(v: Any) -> bool:
    if isinstance(v, torch.Tensor):
        return v.numel() == 1
    return isinstance(v, (int, float)) and not isinstance(v, bool)
