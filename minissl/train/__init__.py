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

from minissl.train.batches import DEVICE_DATA_SHARE
from minissl.train.checkpoint import (
    CHECKPOINT_NAME,
    RUN_FIELDS,
    check_checkpoint,
    check_resume,
    load_checkpoint,
    run_fingerprint,
    save_checkpoint,
)
from minissl.train.config import TrainConfig, TrainingDiverged
from minissl.train.history import History
from minissl.train.loop import TrainingInterrupted, fit
from minissl.train.optim import lr_factor, make_optimizer

__all__ = [
    "CHECKPOINT_NAME", "DEVICE_DATA_SHARE", "RUN_FIELDS", "History", "TrainConfig",
    "TrainingDiverged", "TrainingInterrupted", "check_checkpoint", "check_resume", "fit",
    "load_checkpoint", "lr_factor", "make_optimizer", "run_fingerprint", "save_checkpoint",
]
