"""Tested settings for pretraining each image method, and equal-budget comparisons of them.

A recipe is what a method needs beyond its defaults to learn something in a short run: the
learning rate, the method's own hyper-parameters and the augmentation for the data set. There
is one for every image method of :mod:`minissl.methods` (the pretext tasks, the two-view
methods, the clustering methods and the autoencoders), and every one trains the same backbone
(:func:`make_encoder`), so that their encoders can be compared. Chapters and
``python -m minissl bench`` (:mod:`minissl.bench`) build methods through :func:`build` so that
a comparison table is made by the package, with one budget for every method, never typed in.

Example:
    >>> from minissl import data
    >>> ds = data.load("shapes", "train", n=16)
    >>> method, cfg = build("simclr", ds, epochs=1, width=4)
    >>> type(method).__name__, cfg.lr, method.temperature
    ('SimCLR', 0.004, 0.2)
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from minissl import profiles
from minissl.augment import SimCLRAugment, TwoViews
from minissl.methods.setting import Setting, build_method
from minissl.train import History, TrainConfig, fit
from minissl.utils import did_you_mean


@dataclass(frozen=True)
class Recipe:
    """How to pretrain one method: its class, optimiser settings and constructor arguments."""

    method: str  # class name in minissl.methods
    lr: float  # peak learning rate of AdamW
    kwargs: dict[str, Any] = field(default_factory=dict)  # constructor arguments
    weight_decay: float = 1e-4
    note: str = ""  # why these values
    family: str = "joint embedding"  # the book's family of the method, a column of tables
    augment: str = "views"  # "views" (TwoViews of SimCLR's), "view" (one view: DeepCluster),
    # "multicrop" (SwAV) or "none" (the method makes its own inputs)
    features: str = "encoder"  # attribute path of the backbone whose features are scored
    warmup: float = 0.0  # share of the optimizer steps spent warming the learning rate up
    batch_scale: float = 1.0  # the run's batch size as a share of the profile's (see build)
    vit_only: bool = False  # needs patch tokens: a ViT even when a CNN backbone is asked for
    # Constructor arguments that depend on the run (a minissl.methods.Setting -> dict),
    # applied over `kwargs` and under the caller's own arguments.
    adjust: Callable[[Setting], dict[str, Any]] | None = field(default=None, repr=False)


def _swav_queue(setting: Setting) -> dict[str, Any]:
    # SwAV's paper queues features only for batches under 256.
    return {"queue_size": 0} if setting.batch_size >= 256 else {}


RECIPES: dict[str, Recipe] = {
    "simclr": Recipe("SimCLR", lr=4e-3, kwargs={"temperature": 0.2}, family="contrastive",
                     batch_scale=0.5,
                     note="tau 0.2 beat 0.5 and 1.0 on shapes; the paper's 0.5 suits big "
                          "batches. Half the profile's batch: the same images seen in twice the "
                          "steps; quick profile (16 px, 20 epochs, width 32) mean probe 0.741 "
                          "at batch 64 against 0.693 at 128 (seeds 0, 1, 2)"),
    "moco": Recipe("MoCo", lr=8e-3,
                   kwargs={"temperature": 0.2, "queue_size": 1024, "momentum": 0.9,
                           "symmetric": True, "batch_norm": True}, family="contrastive",
                   note="MoCo v2's tau 0.2, a queue of 8 batches; BN heads, a symmetric loss "
                        "and m 0.9 (not 0.999) because our runs are a few hundred steps"),
    "byol": Recipe("BYOL", lr=2e-3, family="self-distillation",
                   note="BYOL's base momentum 0.996 raised to 1 by a cosine schedule; on shapes "
                        "(30 epochs, width 16) lr 4e-3 or 1e-2, momentum 0.99 or 0.9, a 10x "
                        "predictor lr, DirectPred or 90 epochs all stayed within 2 probe points"),
    "simsiam": Recipe("SimSiam", lr=2e-3, family="self-distillation",
                      note="predictor at a fixed learning rate; on shapes (30 epochs, width 16) "
                           "lr 4e-3 or 1e-2, a 10x predictor lr, DirectPred or 90 epochs all "
                           "stayed within about 2 probe points"),
    # Pretext tasks (chapter 2): the settings the chapter trains with on shapes.
    "rotationprediction": Recipe(
        "RotationPrediction", lr=2e-3, family="pretext task", augment="none",
        note="four rotations of every image (Gidaris et al. 2018); chapter 2's learning rate"),
    "jigsaw": Recipe(
        "Jigsaw", lr=2e-3, kwargs={"grid": 3, "n_permutations": 100}, family="pretext task",
        augment="none",
        note="3x3 tiles as in Noroozi & Favaro 2016; 100 permutations far apart in Hamming "
             "distance (the paper goes up to 1000); chapter 2's setting"),
    "inpainting": Recipe(
        "Inpainting", lr=2e-3, kwargs={"patch": 2, "ratio": 0.25}, family="pretext task",
        augment="none",
        note="a quarter of the image hidden in 2x2 patches, sized for 16-pixel images (an 8x8 "
             "patch is a quarter of the image); quick profile: +6.6, +7.7 and +9.2 probe points "
             "over the random encoder at seeds 0, 1, 2 with 2x2 patches, +4.5, +4.5 and +6.9 "
             "with 4x4; at seed 0, 4x4 patches hiding half the image +2.3, 2x2 hiding half +4.7"),
    "relativeposition": Recipe(
        "RelativePosition", lr=2e-3, kwargs={"grid": 3, "gap": 2, "jitter": 1},
        family="pretext task", augment="none",
        note="a 3x3 grid with a gap and jitter so that edges do not give the answer away"),
    # Clustering (chapter 6): DeepCluster over-clusters 4x the classes, as the papers do.
    "deepcluster": Recipe(
        "DeepCluster", lr=4e-3, kwargs={"pca_dim": 32, "recluster_every": None},
        family="clustering", augment="view",
        note="k-means (4 x classes clusters) every epoch as in Caron et al. 2018, with the "
             "empty-cluster and uniform-sampling fixes; PCA to 32 dims; SimCLR's colour "
             "distortion on top of crops and flips (the paper removes colour with a Sobel "
             "filter; on shapes colour is a nuisance). Quick profile (16 px, 20 epochs, width "
             "32): +14.2, +13.8 and +13.9 probe points over random init (seeds 0, 1, 2)"),
    "swav": Recipe(
        "SwAV", lr=4e-3, kwargs={"temperature": 0.2, "queue_size": 0},
        family="clustering", augment="multicrop", adjust=_swav_queue,
        note="epsilon 0.05, 3 Sinkhorn iterations and prototypes frozen for the first epoch as "
             "in the paper, but tau 0.2 (not 0.1), 4 prototypes per class (SwAV.for_setting: "
             "32 on shapes) and no queue; "
             "2 global + 2 local crops. Quick profile (16 px, 20 epochs, width 32): +16.1, "
             "+13.0 and +12.5 probe points over random init (seeds 0, 1, 2); the paper's tau "
             "0.1 with 300 prototypes and a queue of 1024 from step 32 gave +4.5, +1.1 and "
             "+2.4, and at seed 0 tau 0.1 with 16 or 32 prototypes and no queue +2.3 and +4.2"),
    # Autoencoders (chapter 5): the recipe swaps in the common backbone as the encoder.
    "denoisingae": Recipe(
        "DenoisingAE", lr=2e-3, kwargs={"corruption": "gaussian", "strength": 0.3},
        family="autoencoding", augment="none",
        note="Gaussian noise of std 0.3, chapter 5's setting"),
    "vae": Recipe(
        "VAE", lr=2e-3, kwargs={"latent_dim": 16, "likelihood": "gaussian", "sigma": 0.1},
        family="autoencoding", augment="none", features="encoder.body",
        note="a 16-d code and a Gaussian likelihood (chapter 5); the backbone's features, not "
             "the code's mean, are scored, as for every other method"),
    "mae": Recipe(
        "MAE", lr=1e-3, weight_decay=0.05, kwargs={"mask_ratio": 0.75, "norm_pix_loss": True},
        family="autoencoding", augment="none", warmup=0.05, vit_only=True,
        note="75% of the patches hidden, normalised-pixel targets, AdamW with weight decay "
             "0.05 and 5% warm-up (He et al. 2021); always a ViT (it needs patches)"),
}


# How views are made, per data set: SimCLR's colour strength s, the area range of the
# random crops, and SwAV's local crops. `shapes` images hold one small object: a crop of 8% of
# the image (SimCLR's lower bound) often cuts it out, and then the two views share nothing
# but background, so crops keep half the image; colour is a pure nuisance there, so the
# jitter is strong. Other data sets (natural images) use the papers' values.
VIEWS: dict[str, dict[str, Any]] = {
    "shapes": {"s": 1.0, "scale": (0.5, 1.0), "local_scale": (0.2, 0.5)},
}
_PAPER_VIEWS = {"s": 0.5, "scale": (0.08, 1.0), "local_scale": (0.05, 0.14)}


def _views(dataset: str) -> dict[str, Any]:
    return {**_PAPER_VIEWS, **VIEWS.get(dataset, {})}


def crop_scale(dataset: str) -> tuple[float, float]:
    """The RandomResizedCrop area range used for a data set (see :data:`VIEWS`).

    Example:
        >>> crop_scale("shapes"), crop_scale("cifar10")
        ((0.5, 1.0), (0.08, 1.0))
    """
    return _views(dataset)["scale"]


def augmentation(dataset: str, size: int, **changes: Any) -> SimCLRAugment:
    """The one-view augmentation every two-view recipe uses on ``dataset``, as ``TwoViews``.

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
    views = _views(dataset)
    options = {"s": views["s"], "scale": views["scale"]}
    return SimCLRAugment(size, **{**options, **changes})


def available() -> list[str]:
    """Names that :func:`build` accepts: one per image method of :mod:`minissl.methods`.

    Example:
        >>> len(available()), available()[:3]
        (13, ['byol', 'deepcluster', 'denoisingae'])
    """
    return sorted(RECIPES)


def _recipe(name: str) -> Recipe:
    key = name.lower().replace("-", "").replace("_", "")
    if key not in RECIPES:
        raise ValueError(f"no recipe for method {name!r}.{did_you_mean(key, RECIPES)} "
                         f"Recipes exist for {available()}")
    return RECIPES[key]


def get(name: str) -> Recipe:
    """The :class:`Recipe` of ``name`` (case and ``_``/``-`` ignored); unknown names list the valid.

    Example:
        >>> get("Rotation_Prediction").method, get("mae").family
        ('RotationPrediction', 'autoencoding')
    """
    return _recipe(name)


def batch_size_of(name: str, profile: profiles.Profile | None = None) -> int:
    """The batch size :func:`build` gives ``name`` by default: the profile's, times the
    recipe's ``batch_scale``.

    Every method of a comparison sees the same images for the same number of epochs; a recipe
    whose method needs more optimizer steps than that gives (SimCLR at the quick profile's
    budget) takes smaller batches, and so more steps, for the same images seen.

    Example:
        >>> P = profiles.PROFILES["quick"]
        >>> batch_size_of("simclr", P), batch_size_of("moco", P) == P.batch_size
        (64, True)
    """
    P = profile or profiles.current()
    return max(1, round(P.batch_size * _recipe(name).batch_scale))


def own_batch_sizes(names: Sequence[str] | None = None,
                    profile: profiles.Profile | None = None) -> dict[str, int]:
    """The methods of ``names`` (default: every recipe) whose batch size is not the profile's.

    Keyed by the method's class name, for tables and messages that name the exceptions.

    Example:
        >>> own_batch_sizes(profile=profiles.PROFILES["quick"])
        {'SimCLR': 64}
    """
    P = profile or profiles.current()
    sizes = {_recipe(n).method: batch_size_of(n, P) for n in (names or available())}
    return {method: size for method, size in sizes.items() if size != P.batch_size}


def make_encoder(
    train, *, backbone: str | None = None, width: int | None = None,
    profile: profiles.Profile | None = None,
) -> nn.Module:
    """The profile's backbone (or ``backbone``) for the images of ``train``, untrained.

    ``width`` (default: the profile's) sizes the ConvNet and ResNet-18; the tiny ViT has its
    own fixed size and ignores it (it is built for the images' side, with 4x4 patches).

    Example:
        >>> from minissl import data
        >>> make_encoder(data.load("shapes", "train", n=4), width=4).feature_dim
        32
    """
    from minissl.nn import backbone as by_name

    P = profile or profiles.current()
    arch = (backbone or P.backbone).lower()
    sized = ({"image_size": int(train.images.shape[-1])} if arch == "vit_tiny"
             else {"width": width or P.width})
    return by_name(arch, in_channels=train.images.shape[1], **sized)


def backbone_of(method: nn.Module, name: str | None = None) -> nn.Module:
    """The part of a built method whose features are scored: the common backbone.

    For most methods this is ``method.encoder``; the VAE's encoder ends in the code's mean
    and variance, so its backbone is ``method.encoder.body``. A method without a recipe
    (e.g. ``Supervised``) is scored on its ``encoder``.

    Args:
        method: a method made by :func:`build`, or any method with an ``encoder``.
        name: its recipe name (default: found from the method's class).

    Example:
        >>> from minissl import data
        >>> vae, _ = build("vae", data.load("shapes", "train", n=8, size=16), width=4)
        >>> backbone_of(vae).feature_dim
        32
    """
    if name is None and type(method).__name__.lower() not in RECIPES:
        return method.encoder
    path = _recipe(name or type(method).__name__).features
    part = method
    for attr in path.split("."):
        part = getattr(part, attr)
    return part


def _augmentation(recipe: Recipe, dataset: str, size: int, vit: bool) -> nn.Module | None:
    from minissl.augment import MultiCrop

    if recipe.augment == "none":
        return None
    if recipe.augment == "multicrop":  # SwAV's; a ViT takes one image size, so no local crops
        views = _views(dataset)
        return MultiCrop(size, max(size // 2, 1), n_global=2, n_local=0 if vit else 2,
                         global_scale=views["scale"], local_scale=views["local_scale"])
    view = augmentation(dataset, size)
    return view if recipe.augment == "view" else TwoViews(view)


def build(
    name: str, train, *, profile: profiles.Profile | None = None, epochs: int | None = None,
    backbone: str | None = None, width: int | None = None, seed: int | None = None,
    lr: float | None = None, batch_size: int | None = None, **method_kwargs: Any,
) -> tuple[nn.Module, TrainConfig]:
    """A method with a freshly initialised encoder, and the training configuration to fit it.

    Every recipe builds its encoder with :func:`make_encoder` right after seeding, so methods
    built with the same seed start from the same backbone weights. The exception is MAE,
    which needs patch tokens: with a CNN backbone it gets the tiny ViT (``vit_tiny``) instead.
    The autoencoders (DenoisingAE, VAE) get the common backbone as their encoder and a
    decoder sized for its features.

    Args:
        name: a recipe name, see :func:`available` (case and ``_``/``-`` ignored).
        train: the :class:`minissl.data.ImageDataset` it will train on (sets the channels,
            the image size, the number of classes for the clustering methods' cluster count
            and, through its name, the crop range).
        profile: budgets; default :func:`minissl.profiles.current`.
        epochs, backbone, width, seed, lr, batch_size: override the profile / recipe (the
            default batch size is :func:`batch_size_of`).
        **method_kwargs: override or add constructor arguments of the method, e.g.
            ``temperature=1.0``.

    Returns:
        ``(method, config)``; ``minissl.train.fit(method, train, config)`` trains it.

    Example:
        >>> from minissl import data
        >>> ds = data.load("shapes", "train", n=16, size=16)
        >>> method, cfg = build("jigsaw", ds, width=4, epochs=1)
        >>> type(method).__name__, method.encoder.feature_dim, cfg.lr
        ('Jigsaw', 32, 0.002)
    """
    P = profile or profiles.current()
    recipe = _recipe(name)
    seed = P.seed if seed is None else seed
    arch = (backbone or P.backbone).lower()
    if recipe.vit_only:
        arch = "vit_tiny"
    torch.manual_seed(seed)  # the same initial encoder for every method with the same seed
    encoder = make_encoder(train, backbone=arch, width=width, profile=P)
    batch_size = batch_size or batch_size_of(name, P)
    epochs = P.ssl_epochs if epochs is None else epochs
    steps_per_epoch = max(len(train) // batch_size, 1)
    setting = Setting(train, seed=seed, steps_per_epoch=steps_per_epoch, batch_size=batch_size,
                      width=width or P.width)
    kwargs = {**recipe.kwargs, **(recipe.adjust(setting) if recipe.adjust else {}),
              **method_kwargs}
    augment = _augmentation(recipe, getattr(train, "name", ""), int(train.images.shape[-1]),
                            vit=arch == "vit_tiny")
    if augment is not None:
        kwargs.setdefault("augment", augment)
    from minissl import methods

    method = build_method(getattr(methods, recipe.method), encoder, setting, **kwargs)
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr or recipe.lr,
                         weight_decay=recipe.weight_decay, seed=seed, progress=False,
                         warmup_steps=round(recipe.warmup * epochs * steps_per_epoch),
                         desc=recipe.method)
    return method, config


def pretrain(name: str, train, **kwargs: Any) -> tuple[nn.Module, History]:
    """:func:`build` then :func:`minissl.train.fit`; returns the trained method and its history.

    Takes the same keyword arguments as :func:`build`.
    """
    method, config = build(name, train, **kwargs)
    return method, fit(method, train, config)


def pretrain_and_score(
    name: str, train, test, *, seed: int, labels_per_class: int, k: int = 20, draws: int = 1,
    fit_overrides: dict[str, Any] | None = None, cache: bool = True, **kwargs: Any,
) -> tuple[nn.Module, History, dict[str, float]]:
    """Pretrain one recipe at one seed and score its frozen backbone, or reuse a stored run.

    The unit of every equal-budget comparison (:func:`compare`, :func:`minissl.bench.run`):
    :func:`build`, :func:`minissl.train.fit` (with ``fit_overrides``, e.g. a progress bar),
    then :func:`minissl.evaluate.evaluate_encoder` on :func:`backbone_of` the method. A
    finished run is kept in the on-disk cache of :mod:`minissl.cache`, keyed by everything
    that decides it, so that a chapter, the benchmark page and ``python -m minissl bench``
    asking for the same run train it once.

    Args:
        name: a recipe name.
        train, test: image data sets (``test`` only scores).
        seed: seeds the initial weights, the training and the choice of labelled images.
        labels_per_class: linear-probe budget.
        k: neighbours of the kNN score.
        draws: draws of the labelled examples; ``linear`` is the mean of their probes.
        fit_overrides: :class:`~minissl.train.TrainConfig` fields to change for this run.
        cache: reuse (and store) the run in the cache; a run with method arguments that are
            not plain values (a custom augmentation module, say) is never cached.
        **kwargs: passed to :func:`build` (``epochs``, ``width``, ``profile``, ...).

    Returns:
        ``(method, history, scores)``; ``scores`` holds ``knn``, ``linear``, ``seconds``
        (building and training, not scoring; for a reused run, the stored run's) and
        ``cached`` (whether the run was reused).
    """
    from minissl import cache as run_cache
    from minissl.evaluate import evaluate_encoder

    start = time.perf_counter()
    method, config = build(name, train, seed=seed, **kwargs)
    overrides = dict(fit_overrides or {})
    key = None
    if cache and _cacheable(kwargs, overrides):
        # The budget and the backbone enter through the resolved config and the built
        # method's layers, so that the same run asked for in two ways has one key.
        own = {k: v for k, v in kwargs.items() if k not in _BUILD_ARGS}
        key = run_cache.fingerprint({
            "recipe": repr(_recipe(name)), "arguments": own, "layers": repr(method),
            "config": repr(dataclasses.replace(config, progress=False, desc="")),
            "train": _data_digest(train), "test": _data_digest(test), "seed": seed,
            "score": [labels_per_class, k, draws], **run_cache.environment(config.device)})
        stored = run_cache.load(key)
        if stored is not None:
            missing, _ = method.load_state_dict(stored["method"], strict=False)
            if not missing:
                history = History()
                history.load_state_dict(stored["history"])
                return method, history, {**stored["scores"], "cached": True}
    history = fit(method, train, config, **overrides)
    seconds = time.perf_counter() - start
    scores = evaluate_encoder(backbone_of(method, name), train, test, k=k, seed=seed,
                              labels_per_class=labels_per_class, draws=draws)
    scores = {**scores, "seconds": seconds}
    if key is not None:
        run_cache.save(key, {"method": method.state_dict(), "history": history.state_dict(),
                             "scores": scores})
    return method, history, {**scores, "cached": False}


_PLAIN_TYPES = (int, float, str, bool, type(None))
_BUILD_ARGS = ("profile", "epochs", "backbone", "width", "lr", "batch_size")


def _cacheable(build_kwargs: dict[str, Any], fit_overrides: dict[str, Any]) -> bool:
    # Only plain values describe a run fully; a module or a callback could hide anything.
    def plain(v: Any) -> bool:
        return isinstance(v, _PLAIN_TYPES) or (isinstance(v, (tuple, list)) and all(map(plain, v)))

    values = [v for k, v in build_kwargs.items() if k != "profile"]
    harmless = {"progress", "desc"}  # these change what is shown, not what is learnt
    return all(map(plain, values)) and set(fit_overrides) <= harmless


def _data_digest(ds) -> list[Any]:
    from minissl.cache import tensor_digest

    return [getattr(ds, "name", ""), len(ds), tensor_digest(ds.images, ds.labels)]


def compare(
    names: Sequence[str], train, test, *, epochs: int | None = None,
    seeds: Sequence[int] = (0,), labels_per_class: int | None = None, draws: int = 1,
    profile: profiles.Profile | None = None, **kwargs: Any,
) -> list[dict[str, Any]]:
    """Pretrain each method with the same budget and score its encoder; one row per method.

    Every method gets the same backbone, data, epochs and seeds, and the batch size of its
    recipe (:func:`batch_size_of`) unless ``batch_size`` is given. Each encoder is
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
        draws: draws of the labelled examples per run; ``linear`` is their mean.
        profile: budgets; default the current profile.
        **kwargs: passed to :func:`build` for every method (e.g. ``width=16``).
    """
    P = profile or profiles.current()
    per_class = labels_per_class or P.labels_per_class
    rows = []
    for name in names:
        scores: dict[str, list[float]] = {"knn": [], "linear": []}
        seconds = 0.0
        for seed in seeds:
            _, _, result = pretrain_and_score(name, train, test, seed=seed,
                                              labels_per_class=per_class, draws=draws,
                                              profile=P, epochs=epochs, **kwargs)
            seconds += result["seconds"]
            for key in scores:
                scores[key].append(result[key])
        rows.append({"method": _recipe(name).method, **scores, "seconds": seconds / len(seeds)})
    return rows
