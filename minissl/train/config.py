"""What decides a training run: :class:`TrainConfig`, its checks, and the divergence error."""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from minissl.utils import MinisslError


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


def _validate(cfg: TrainConfig) -> None:
    # Checked before any work, so a typo fails in a second rather than after the data loads.
    choices = {"optimizer": ("adamw", "adam", "sgd"), "schedule": ("cosine", "constant"),
               "precision": ("auto", "fp32", "bf16", "fp16")}
    for name, valid in choices.items():
        if str(getattr(cfg, name)).lower() not in valid:
            raise ValueError(f"unknown {name} {getattr(cfg, name)!r}; use one of {list(valid)}")
    if cfg.batch_size < 1 or cfg.log_every < 1:
        raise ValueError("batch_size and log_every must be at least 1")
