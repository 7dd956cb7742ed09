"""Run profiles: one place decides how big every experiment in the book is.

``quick`` is what every chapter runs by default, on a CPU and on a GPU alike (a GPU makes it
faster, not different): embedded data, small models, budgets of seconds to minutes.
``full`` is opt-in (``MINISSL_PROFILE=full`` or ``use("full")``): real data sets and real
budgets (CIFAR-10 for images, WikiText-2 for text, downloaded when missing, or beforehand with
``python -m minissl download cifar10`` and ``python -m minissl download wikitext2``).

The profile is chosen once: ``MINISSL_PROFILE`` if set, else ``quick``. Chapters read their
budgets from :func:`current` instead of hard-coding them. ``MINISSL_PROFILE_OVERRIDES``
changes fields of the chosen profile, e.g. ``MINISSL_PROFILE_OVERRIDES="n_train=256,ssl_epochs=1"``
(a smoke test of the full profile on a small machine).

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
OVERRIDES_VAR = "MINISSL_PROFILE_OVERRIDES"


@dataclass(frozen=True)
class Profile:
    """Budgets for one kind of machine: every field sizes one thing the chapters run.

    Attributes:
        name: ``"quick"`` or ``"full"``.
        device: where training runs by default; ``"auto"`` picks the GPU when present.
        image_dataset: the default vision data set of the chapters.
        text_dataset: the text corpus of the language chapters, a name of
            ``minissl.data.text_corpora()``.
        n_train: training images used (None: the whole split).
        n_test: test images used (None: the whole split).
        epochs: pretraining epochs of a typical method (``python -m minissl train``
            gives them to ``Supervised``).
        ssl_epochs: pretraining epochs of the self-supervised methods (SimCLR, MoCo, BYOL,
            ...); every recipe, and so ``python -m minissl train``, uses these.
        probe_epochs: epochs of a linear probe or a fine-tuning run.
        batch_size: the pretraining batch size.
        width: base channel width of the ConvNet and ResNet-18 backbones.
        backbone: the default backbone name of the vision chapters.
        image_size: side of the square images the chapters train on.
        seq_len: context length of the language models.
        precision: ``"auto"``: bf16/fp16 autocast on a GPU, fp32 on a CPU.
        labels_per_class: the few-label budget of the probes throughout the book.
        seed: the default seed of every experiment.
        download: fetch a missing downloadable data set (with a progress bar).
    """

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
    download: bool = False  # fetch a missing downloadable data set (with a progress bar)

    def replace(self, **changes) -> Profile:
        """A copy with some budgets changed, e.g. ``current().replace(epochs=1)``."""
        return dataclasses.replace(self, **changes)

    def load(self, split: str = "train", **kw):
        """The profile's image data set, one split, at the profile's size and count.

        ``P.load("train")`` is ``data.load(P.image_dataset, "train", n=P.n_train,
        size=P.image_size, seed=P.seed, download=P.download)`` (``n_test`` for the test
        split); keyword arguments override or add to those (``nuisance=``, ``n=``, ...).

        Example:
            >>> use("quick").load("test", n=8).images.shape
            torch.Size([8, 3, 16, 16])
        """
        from minissl import data

        options = {"n": self.n_test if split == "test" else self.n_train,
                   "size": self.image_size, "seed": self.seed, "download": self.download}
        return data.load(self.image_dataset, split, **{**options, **kw})

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
        n_train=2048, n_test=1024, epochs=8, ssl_epochs=20, probe_epochs=60, batch_size=128,
        width=32,
        backbone="convnet", image_size=16, seq_len=64, precision="auto",
    ),
    "full": Profile(
        name="full", device="auto", image_dataset="cifar10", text_dataset="wikitext2",
        n_train=None, n_test=None, epochs=200, ssl_epochs=200, probe_epochs=100,
        batch_size=512, width=64,
        backbone="resnet18", image_size=32, seq_len=256, precision="auto", download=True,
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
    return "quick"


def parse_overrides(text: str, base: Profile) -> dict:
    """Field changes from ``"name=value,name=value"``, each value read as the field's type.

    Example:
        >>> parse_overrides("n_train=64, ssl_epochs=1, n_test=none", PROFILES["full"])
        {'n_train': 64, 'ssl_epochs': 1, 'n_test': None}
    """
    fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)}
    changes: dict = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = (s.strip() for s in item.partition("="))
        if not sep or key not in fields or key == "name":
            valid = sorted(k for k in fields if k != "name")
            raise ValueError(f"{OVERRIDES_VAR}: {item!r} is not 'field=value' with a field of "
                             f"Profile; the fields are {valid}")
        old = fields[key]
        if value.lower() == "none" and key in ("n_train", "n_test"):
            changes[key] = None
        elif isinstance(old, bool):
            if value.lower() not in ("0", "1", "true", "false"):
                raise ValueError(f"{OVERRIDES_VAR}: {key} takes true or false; got {value!r}")
            changes[key] = value.lower() in ("1", "true")
        elif isinstance(old, int) or key in ("n_train", "n_test"):
            try:
                changes[key] = int(value)
            except ValueError:
                message = f"{OVERRIDES_VAR}: {key} takes an integer; got {value!r}"
                raise ValueError(message) from None
        else:
            changes[key] = value
    return changes


def current() -> Profile:
    """The active profile (chosen on first use, then fixed until :func:`use` changes it)."""
    global _active
    if _active is None:
        base = PROFILES[_default_name()]
        _active = base.replace(**parse_overrides(os.environ.get(OVERRIDES_VAR, ""), base))
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
