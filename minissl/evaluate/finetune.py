"""Fine-tuning: a linear head on a copy of the encoder, trained on a few labels."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from minissl.evaluate._data import batches, device_of, tensor_pair
from minissl.evaluate.features import extract_features


@dataclass
class FineTuneResult:
    """What :func:`fine_tune` returns.

    Attributes:
        accuracy: test accuracy in [0, 1].
        predictions: (N_test,) int64 predicted labels, on the CPU.
        model: the fine-tuned network, ``nn.Sequential(encoder, head)``: ``model[0]`` is the
            trained copy of the encoder, ``model[1]`` the ``nn.Linear`` head. It maps images
            (B, C, H, W) to logits (B, K), is in eval mode and sits on the device used. To
            ship it, wrap it as ``minissl.deploy.Classifier(model[0], model[1], spec)`` and
            save that with :func:`minissl.deploy.save_state`.
    """

    accuracy: float  # test accuracy in [0, 1]
    predictions: torch.Tensor  # (N_test,) int64 predicted labels, CPU
    model: nn.Module  # nn.Sequential(encoder copy, linear head), on the device used


def _feature_dim(encoder: nn.Module, data, device: torch.device) -> int:
    if hasattr(encoder, "feature_dim"):
        return int(encoder.feature_dim)
    # An encoder without .feature_dim: one example tells us (frozen, eval mode).
    x, _ = next(batches(data, 1))
    return extract_features(encoder, (x, torch.zeros(1)), device=device)[0].shape[1]


def fine_tune(
    encoder: nn.Module, train_data, test_data, num_classes: int, *, epochs: int = 30,
    lr: float = 1e-3, encoder_lr_scale: float = 0.1, freeze_encoder: bool = False,
    weight_decay: float = 1e-4, batch_size: int = 64, seed: int = 0, device=None,
    progress: bool = False, augment: Callable[..., torch.Tensor] | None = None,
    schedule: str = "cosine",
) -> FineTuneResult:
    """Train a linear head on a copy of the encoder (fine-tuned gently, or frozen) and test it.

    The semi-supervised protocol of SimCLR (Chen et al. 2020, arXiv:2002.05709, Sec. B.5):
    start from the pretrained encoder, add a linear classifier, train both on the few
    labelled examples. The encoder learns ``encoder_lr_scale`` times slower than the head
    so the few labels adjust the representation rather than overwrite it. The ``encoder``
    passed in is never modified: a deep copy is trained. AdamW; no augmentation unless
    ``augment`` is given (a fair from-scratch baseline needs one: with a few labelled
    images and no augmentation, a network trained from nothing mostly memorises them).

    Args:
        encoder: maps (B, C, H, W) to (B, D); ``.feature_dim`` is used when present.
        train_data, test_data: ImageDataset, Dataset, DataLoader or (images, labels) pair.
            ``train_data`` is the labelled subset to learn from, e.g. 10 images per class
            drawn with ``minissl.data.few_labels(train, 10)``: every example given here is
            used with its label, so pass the whole training split only to fine-tune on all
            labels.
        num_classes: K.
        epochs: passes over ``train_data``.
        lr: learning rate of the head.
        encoder_lr_scale: the encoder's learning rate is ``lr * encoder_lr_scale``.
        freeze_encoder: keep the encoder fixed (eval mode): a linear probe trained by AdamW.
        weight_decay: AdamW weight decay.
        batch_size: examples per step.
        seed: seeds the head's initialisation and the shuffling (global RNG untouched).
        device: where to train (default: the encoder's device).
        progress: show a tqdm progress bar over epochs.
        augment: applied to every labelled batch on the device, as ``augment(x,
            generator=g)`` with the run's seeded generator, e.g. the label-preserving
            :func:`minissl.recipes.augmentation` of the data set.
        schedule: ``"cosine"`` decays every learning rate to zero over the run (so the
            model that is scored is not caught mid-jump by a large rate), ``"constant"``
            keeps them.

    Example:
        >>> enc = nn.Sequential(nn.Flatten(), nn.Linear(4, 8))
        >>> x, y = torch.rand(16, 1, 2, 2), torch.arange(16) % 2
        >>> res = fine_tune(enc, (x, y), (x, y), num_classes=2, epochs=2)
        >>> 0.0 <= res.accuracy <= 1.0, res.predictions.shape
        (True, torch.Size([16]))
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"fine_tune: num_classes must be a whole number >= 2; got "
                         f"{num_classes!r}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"fine_tune: epochs must be a whole number >= 1; got {epochs!r}")
    if schedule not in ("cosine", "constant"):
        raise ValueError(f"fine_tune: schedule must be 'cosine' or 'constant'; got {schedule!r}")
    pair = tensor_pair(train_data)
    if pair is not None and len(pair[0]) == 0:
        raise ValueError("fine_tune: train_data is empty; give it the labelled examples to "
                         "learn from (e.g. minissl.data.few_labels(train, 10))")
    dev = device_of(encoder, device)
    fork_devices = [dev.index or 0] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(seed)
        body = copy.deepcopy(encoder).to(dev)
        head = nn.Linear(_feature_dim(body, train_data, dev), num_classes).to(dev)
        model = nn.Sequential(body, head)
        body.requires_grad_(not freeze_encoder)
        groups = [{"params": head.parameters(), "lr": lr}]
        if not freeze_encoder:
            groups.append({"params": body.parameters(), "lr": lr * encoder_lr_scale})
        opt = torch.optim.AdamW(groups, weight_decay=weight_decay)
        total = max(epochs * _batches_per_epoch(train_data, batch_size), 1)
        factor = ((lambda k: 0.5 * (1 + math.cos(math.pi * min(k, total) / total)))
                  if schedule == "cosine" else (lambda k: 1.0))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        g = torch.Generator().manual_seed(seed)

        epoch_iter = range(epochs)
        if progress:
            from tqdm.auto import tqdm

            epoch_iter = tqdm(epoch_iter, desc="fine-tune")
        for _ in epoch_iter:
            model.train()
            if freeze_encoder:
                body.eval()  # frozen means frozen BN statistics too
            for x, y in batches(train_data, batch_size, shuffle=True, generator=g):
                if len(x) < 2:
                    continue  # a last batch of one: batch norm cannot train on it
                x, y = x.to(dev, non_blocking=True).float(), y.to(dev).long()
                if augment is not None:
                    x = augment(x, generator=g)
                loss = F.cross_entropy(model(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
        model.eval()
        logits, labels = extract_features(model, test_data, batch_size=max(batch_size, 256),
                                          device=dev)
    pred = logits.argmax(1)  # (M,)
    return FineTuneResult(
        accuracy=(pred == labels).float().mean().item(), predictions=pred, model=model
    )


def _batches_per_epoch(data, batch_size: int) -> int:
    """How many batches :func:`minissl.evaluate._data.batches` makes of ``data`` per epoch."""
    if isinstance(data, DataLoader):
        return len(data)
    pair = tensor_pair(data)
    return math.ceil(len(pair[0] if pair is not None else data) / batch_size)
