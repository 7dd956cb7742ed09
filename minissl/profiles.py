"""Run profiles: one place decides how big every experiment in the book is.

``quick`` is what CI and a laptop CPU run: embedded data, small models, budgets of seconds.
``full`` is what a GPU (Colab, an H100) runs: real data sets and real budgets (CIFAR-10 for
images, WikiText-2 for text, both downloaded once: ``python -m minissl download cifar10`` and
``python -m minissl download wikitext2``).

The profile is chosen once: ``MINISSL_PROFILE`` if set, else ``full`` when CUDA is available,
else ``quick``. Chapters read their budgets from :func:`current` instead of hard-coding them.

Example:
    >>> p = use("quick")
    >>> p.name, p.image_dataset
    ('quick', 'shapes')
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import torch

ENV_VAR = "MINISSL_PROFILE"


@dataclass(frozen=True)
class Profile:
    """Budgets for one kind of machine. Every field has a comment saying what it sizes."""

    name: str  # "quick" or "full"
    device: str  # where training runs by default: "auto" picks the GPU when present
    image_dataset: str  # default vision data set of the chapters
    text_dataset: str  # text corpus of the language chapters: a name of data.text_corpora()
    n_train: int | None  # training images used (None: the whole split)
    n_test: int | None  # test images used (None: the whole split)
    epochs: int  # pretraining epochs for a typical method
    ssl_epochs: int  # pretraining epochs of the two-view methods (SimCLR, MoCo, BYOL, ...)
    probe_epochs: int  # epochs of a linear probe / fine-tuning run
    batch_size: int  # pretraining batch size
    width: int  # base channel width of the small ConvNet backbone
    backbone: str  # default backbone name for vision chapters
    image_size: int  # side of the square images the chapters train on
    seq_len: int  # context length of the language models
    precision: str  # "auto": bf16/fp16 autocast on GPU, fp32 on CPU
    labels_per_class: int = 10  # the few-label budget used by probes throughout the book
    seed: int = 0  # the default seed of every experiment

    def replace(self, **changes) -> Profile:
        """A copy with some budgets changed, e.g. ``current().replace(epochs=1)``."""
        return dataclasses.replace(self, **changes)

    def describe(self) -> str:
        """One line a chapter prints when it starts."""
        n = "all" if self.n_train is None else self.n_train
        return (
            f"minissl profile '{self.name}': data={self.image_dataset} (train images: {n}), "
            f"backbone={self.backbone}, epochs={self.epochs}, batch={self.batch_size}, "
            f"device={self.device}"
        )


PROFILES: dict[str, Profile] = {
    "quick": Profile(
        name="quick", device="auto", image_dataset="shapes", text_dataset="pydoc",
        n_train=2048, n_test=1024, epochs=8, ssl_epochs=30, probe_epochs=60, batch_size=128,
        width=32,
        backbone="convnet", image_size=32, seq_len=64, precision="auto",
    ),
    "full": Profile(
        name="full", device="auto", image_dataset="cifar10", text_dataset="wikitext2",
        n_train=None, n_test=None, epochs=200, ssl_epochs=200, probe_epochs=100,
        batch_size=512, width=64,
        backbone="resnet18", image_size=32, seq_len=256, precision="auto",
    ),
}

_active: Profile | None = None


def _default_name() -> str:
    name = os.environ.get(ENV_VAR, "").strip().lower()
    if name:
        if name not in PROFILES:
            raise ValueError(
                f"{ENV_VAR}={name!r} is not a profile; use one of {sorted(PROFILES)}"
            )
        return name
    return "full" if torch.cuda.is_available() else "quick"


def current() -> Profile:
    """The active profile (chosen on first use, then fixed until :func:`use` changes it)."""
    global _active
    if _active is None:
        _active = PROFILES[_default_name()]
    return _active


def use(name: str, **changes) -> Profile:
    """Make ``name`` the active profile, optionally with some budgets changed.

    Args:
        name: ``"quick"`` or ``"full"``.
        **changes: fields of :class:`Profile` to override.

    Example:
        >>> use("quick", epochs=2).epochs
        2
        >>> use("fast")
        Traceback (most recent call last):
        ...
        ValueError: unknown profile 'fast'; use one of ['full', 'quick']
    """
    global _active
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; use one of {sorted(PROFILES)}")
    _active = PROFILES[name].replace(**changes) if changes else PROFILES[name]
    return _active


def start(seed: int | None = None) -> Profile:
    """What the first cell of every chapter calls: seed everything and say what will run.

    Prints the profile, the device (with the library versions) and the data, so a reader
    always knows which budget, which machine and which data the numbers below came from.

    Args:
        seed: the seed for Python, NumPy and PyTorch (default: the profile's seed).

    Example:
        >>> p = start(0)  # doctest: +ELLIPSIS
        minissl profile ...
    """
    from minissl import data
    from minissl.utils import resolve_device, seed_everything

    profile = current()
    seed_everything(profile.seed if seed is None else seed)
    device = resolve_device(profile.device)
    print(profile.describe())
    gpu = f" ({torch.cuda.get_device_name(0)})" if device.type == "cuda" else ""
    print(f"device: {device}{gpu} | torch {torch.__version__} | threads: {torch.get_num_threads()}")
    about = data.available().get(profile.image_dataset, "")
    where = "" if "offline" in about else f", read from {data.default_root()}"
    print(f"data: {profile.image_dataset}, {about}{where}; text: {profile.text_dataset}")
    return profile
