"""Tested settings for pretraining each method, and equal-budget comparisons built from them.

A recipe is what a method needs beyond its defaults to learn something in a short run: the
learning rate, the method's own hyper-parameters and the augmentation strength for the data
set. Chapters and ``python -m minissl bench`` build methods through :func:`build` so that a
comparison table is made by the package, with one budget for every method, never typed in.

Example:
    >>> from minissl import data
    >>> ds = data.load("shapes", "train", n=16)
    >>> method, cfg = build("simclr", ds, epochs=1, width=4)
    >>> type(method).__name__, cfg.lr, method.temperature
    ('SimCLR', 0.004, 0.2)
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from minissl import profiles
from minissl.augment import SimCLRAugment, TwoViews
from minissl.train import History, TrainConfig, fit


@dataclass(frozen=True)
class Recipe:
    """How to pretrain one method: its class, optimiser settings and constructor arguments."""

    method: str  # class name in minissl.methods
    lr: float  # peak learning rate of AdamW
    kwargs: dict[str, Any] = field(default_factory=dict)  # constructor arguments
    pair_augment: bool = False  # the method's `augment` returns both views (BYOL)
    weight_decay: float = 1e-4
    note: str = ""  # why these values


RECIPES: dict[str, Recipe] = {
    "simclr": Recipe("SimCLR", lr=4e-3, kwargs={"temperature": 0.2},
                     note="tau 0.2 beat 0.5 and 1.0 on shapes; the paper's 0.5 suits big batches"),
    "moco": Recipe("MoCo", lr=8e-3,
                   kwargs={"temperature": 0.2, "queue_size": 1024, "momentum": 0.9,
                           "symmetric": True, "batch_norm": True},
                   note="MoCo v2's tau 0.2, a queue of 8 batches; BN heads, a symmetric loss "
                        "and m 0.9 (not 0.999) because our runs are a few hundred steps"),
    "byol": Recipe("BYOL", lr=2e-3, pair_augment=True,
                   note="BYOL's base momentum 0.996 raised to 1 by a cosine schedule"),
    "simsiam": Recipe("SimSiam", lr=2e-3, pair_augment=True,
                      note="predictor at a fixed learning rate"),
}


def crop_scale(dataset: str) -> tuple[float, float]:
    """The RandomResizedCrop area range used for a data set.

    ``shapes`` images hold one small object on a cluttered background: a crop of 8% of the
    image (SimCLR's lower bound) often cuts the object out, and then the two views share
    nothing but background. Half the image keeps it; natural images use the papers' 0.08.
    """
    return (0.5, 1.0) if dataset == "shapes" else (0.08, 1.0)


def augmentation(dataset: str, size: int, **changes: Any) -> SimCLRAugment:
    """The one-view augmentation every two-view recipe uses on ``dataset``.

    SimCLR's recipe with the crop range of :func:`crop_scale` and the colour strength
    ``s = 1.0`` on ``shapes`` (colour is a pure nuisance there, so strong jitter teaches the
    network to ignore it) or the paper's CIFAR-10 value ``s = 0.5`` elsewhere.

    Args:
        dataset: the data set's name (``ImageDataset.name``).
        size: side of the output views.
        **changes: override ``s``, ``scale`` or ``blur`` of :class:`SimCLRAugment`.

    Example:
        >>> augmentation("shapes", 32)[0].scale
        (0.5, 1.0)
    """
    options = {"s": 1.0 if dataset == "shapes" else 0.5, "scale": crop_scale(dataset)}
    return SimCLRAugment(size, **{**options, **changes})


def available() -> list[str]:
    """Names that :func:`build` accepts."""
    return sorted(RECIPES)


def _recipe(name: str) -> Recipe:
    key = name.lower().replace("-", "").replace("_", "")
    if key not in RECIPES:
        close = difflib.get_close_matches(key, list(RECIPES), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"no recipe for method {name!r}.{hint} Recipes exist for {available()}")
    return RECIPES[key]


def make_encoder(
    train, *, backbone: str | None = None, width: int | None = None,
    profile: profiles.Profile | None = None,
) -> nn.Module:
    """The profile's backbone (or ``backbone``) for the images of ``train``, untrained.

    ``width`` (default: the profile's) sizes the ConvNet and ResNet-18; the tiny ViT has its
    own fixed size and ignores it.

    Example:
        >>> from minissl import data
        >>> make_encoder(data.load("shapes", "train", n=4), width=4).feature_dim
        32
    """
    from minissl.nn import backbone as by_name

    P = profile or profiles.current()
    arch = backbone or P.backbone
    sized = {} if arch == "vit_tiny" else {"width": width or P.width}
    return by_name(arch, in_channels=train.images.shape[1], **sized)


def build(
    name: str, train, *, profile: profiles.Profile | None = None, epochs: int | None = None,
    backbone: str | None = None, width: int | None = None, seed: int | None = None,
    lr: float | None = None, batch_size: int | None = None, **method_kwargs: Any,
) -> tuple[nn.Module, TrainConfig]:
    """A method with a freshly initialised encoder, and the training configuration to fit it.

    Args:
        name: a recipe name, see :func:`available` (case and ``_``/``-`` ignored).
        train: the :class:`minissl.data.ImageDataset` it will train on (sets the channels,
            the image size and, through its name, the crop range).
        profile: budgets; default :func:`minissl.profiles.current`.
        epochs, backbone, width, seed, lr, batch_size: override the profile / recipe.
        **method_kwargs: override or add constructor arguments of the method, e.g.
            ``temperature=1.0``.

    Returns:
        ``(method, config)``; ``minissl.train.fit(method, train, config)`` trains it.
    """
    from minissl import methods

    P = profile or profiles.current()
    recipe = _recipe(name)
    seed = P.seed if seed is None else seed
    torch.manual_seed(seed)  # the same initial encoder for every method with the same seed
    encoder = make_encoder(train, backbone=backbone, width=width, profile=P)
    view = augmentation(getattr(train, "name", ""), int(train.images.shape[-1]))
    kwargs = {**recipe.kwargs, **method_kwargs}
    kwargs.setdefault("augment", TwoViews(view) if recipe.pair_augment else view)
    method = getattr(methods, recipe.method)(encoder, encoder.feature_dim, **kwargs)
    config = TrainConfig(epochs=P.ssl_epochs if epochs is None else epochs,
                         batch_size=batch_size or P.batch_size, lr=lr or recipe.lr,
                         weight_decay=recipe.weight_decay, seed=seed, progress=False,
                         desc=recipe.method)
    return method, config


def pretrain(name: str, train, **kwargs: Any) -> tuple[nn.Module, History]:
    """:func:`build` then :func:`minissl.train.fit`; returns the trained method and its history.

    Takes the same keyword arguments as :func:`build`.
    """
    method, config = build(name, train, **kwargs)
    return method, fit(method, train, config)


def compare(
    names: Sequence[str], train, test, *, epochs: int | None = None,
    seeds: Sequence[int] = (0,), labels_per_class: int | None = None,
    profile: profiles.Profile | None = None, **kwargs: Any,
) -> list[dict[str, Any]]:
    """Pretrain each method with the same budget and score its encoder; one row per method.

    Every method gets the same backbone, data, epochs, batch size and seeds. Each encoder is
    scored with :func:`minissl.evaluate.evaluate_encoder` (kNN on all training labels and a
    linear probe on ``labels_per_class`` labels per class). A row holds the method's name, the
    per-seed scores as lists (``knn``, ``linear``) and the mean training ``seconds``; pass the
    rows to :func:`minissl.viz.results_table`, which shows lists as mean ± std.

    Args:
        names: recipe names.
        train, test: image data sets (``test`` only scores).
        epochs: pretraining epochs of every method (default: the profile's ``ssl_epochs``).
        seeds: one run per seed.
        labels_per_class: linear-probe budget (default: the profile's).
        profile: budgets; default the current profile.
        **kwargs: passed to :func:`build` for every method (e.g. ``width=16``).
    """
    from minissl.evaluate import evaluate_encoder

    P = profile or profiles.current()
    per_class = labels_per_class or P.labels_per_class
    rows = []
    for name in names:
        scores: dict[str, list[float]] = {"knn": [], "linear": []}
        seconds = 0.0
        for seed in seeds:
            start = time.perf_counter()
            method, _ = pretrain(name, train, profile=P, epochs=epochs, seed=seed, **kwargs)
            seconds += time.perf_counter() - start
            result = evaluate_encoder(method.encoder, train, test,
                                      labels_per_class=per_class, seed=seed)
            for key in scores:
                scores[key].append(result[key])
        rows.append({"method": _recipe(name).method, **scores, "seconds": seconds / len(seeds)})
    return rows
