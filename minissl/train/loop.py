"""The loop itself: :func:`fit` as a few named steps (set up, restore, step, save)."""

from __future__ import annotations

import contextlib
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from minissl.train.batches import (
    _Batches,
    _check_batch,
    _divergence_advice,
    _is_number,
    _to_device,
)
from minissl.train.checkpoint import (
    CHECKPOINT_NAME,
    _check_train_state,
    _current_format,
    _rng_state,
    _set_rng_state,
    _state_mismatch,
    _writable_folder,
    check_resume,
    load_checkpoint,
    run_fingerprint,
    save_checkpoint,
    signals_held,
)
from minissl.train.config import (
    TrainConfig,
    TrainingDiverged,
    _validate,
)
from minissl.train.history import History
from minissl.train.optim import (
    _phase_groups,
    _precision,
    lr_factor,
    make_optimizer,
)
from minissl.utils import MinisslError, resolve_device


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
    check_resume(state, run.fingerprint, path, method)
    state = _current_format(state)
    try:
        method.load_state_dict(state["model"])
        for name in run.optimizers:
            run.optimizers[name].load_state_dict(state["optimizers"][name])
            run.schedulers[name].load_state_dict(state["schedulers"][name])
            run.scalers[name].load_state_dict(state["scalers"][name])
    except (RuntimeError, ValueError, KeyError, TypeError, AttributeError) as err:
        # torch lists every missing and unexpected key, hundreds for a ResNet: say less.
        why = _state_mismatch(state.get("model"), method.state_dict())
        if not why:
            lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
            why = f"{type(err).__name__}: {lines[0][:200] if lines else ''}".rstrip(": ")
        raise MinisslError(
            f"the checkpoint {path} does not fit this method/optimizer ({why}). "
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
              "left to train; resume=False (--fresh on the command line) trains it again",
              flush=True)
    else:
        print(f"resuming from {path} at step {run.step} of {run.total}", flush=True)


def _save(run: _Run, method: nn.Module) -> None:
    """Write ``last.pt`` (rank 0 only): everything :func:`_restore` needs to go on exactly."""
    if run.ckpt_path is None:
        return
    with signals_held():  # a stop during the write lands after it, with saved_step set
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
