"""Data for the book: image data sets by name, a text corpus, tokenizers and text tasks.

Every image data set comes back as an in-memory :class:`ImageDataset` with images
(N, C, H, W) float32 in [0, 1] and labels (N,) int64::

    ds = minissl.data.load("shapes", "train", n=2048)
    print(ds.describe())

Embedded (always offline): ``digits`` (real handwritten digits from scikit-learn) and
``shapes`` (procedural, with controllable nuisance factors). Downloaded once for the full
profile: ``cifar10``, ``stl10`` (with its unlabeled split) and ``mnist``.

Text: :func:`text_corpus` gives the embedded corpus (Python's help topics, ``"pydoc"``) or a
downloaded public one (``"wikitext2"``, ``"wikitext103"``) as one string; :func:`text_corpora`
lists them.

Example:
    >>> sorted(available())
    ['cifar10', 'digits', 'mnist', 'shapes', 'stl10']
    >>> sorted(text_corpora())
    ['pydoc', 'wikitext103', 'wikitext2']
    >>> print(load("digits", "train", n=100).describe()[:44])
    digits/train: 100 images of shape (1, 8, 8),
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..utils import did_you_mean
from . import digits as _digits
from . import real as _real
from . import shapes as _shapes
from .corpora import text_corpora, text_corpus, text_splits
from .dataset import ImageDataset, few_label_indices, few_labels
from .lm_inputs import mlm_mask, token_windows
from .passages import DOC_CLASSES, DocPassages
from .real import default_root, read_idx
from .shapes import make_shapes
from .tokenizers import SPECIALS, BPETokenizer, CharTokenizer, WordTokenizer

#: The nuisance switches of the default ``shapes``: upright shapes whose colour, position and
#: scale vary, on a flat background, with no clutter and no noise. Every chapter that trains
#: image methods uses it, so their numbers compare.
DEFAULT_NUISANCE = _shapes.DEFAULT_NUISANCE

#: Every nuisance of ``shapes`` on: any rotation, a textured two-colour background, clutter
#: (blobs and lines) and pixel noise. For experiments on robustness to nuisances
#: (``load("shapes", "train", nuisance=CLUTTERED)``).
CLUTTERED = _shapes.CLUTTERED

# name -> (one-line description, splits)
_DATASETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "digits": (
        "scikit-learn's 1,797 real 8x8 handwritten digits (offline; size= resizes)",
        _digits.SPLITS,
    ),
    "shapes": (
        "procedural RGB shapes, 8 upright classes, nuisance factors in .factors (offline; "
        "size= sets the side, 32 by default)",
        _shapes.SPLITS,
    ),
    "cifar10": (
        "CIFAR-10: 60,000 32x32 RGB photos, 10 classes (download, 170 MB)",
        _real.SPLITS["cifar10"],
    ),
    "stl10": (
        "STL-10: 96x96 RGB photos, 10 classes, 100,000 unlabeled (download, 2.6 GB)",
        _real.SPLITS["stl10"],
    ),
    "mnist": ("MNIST: 70,000 28x28 handwritten digits (download, 12 MB)", _real.SPLITS["mnist"]),
}


def available() -> dict[str, str]:
    """The image data sets :func:`load` knows, each with a one-line description.

    Example:
        >>> "shapes" in available()
        True
    """
    return {name: desc for name, (desc, _) in _DATASETS.items()}


def splits(name: str) -> tuple[str, ...]:
    """The splits of data set ``name``, e.g. ``("train", "test")``.

    Example:
        >>> splits("stl10")
        ('train', 'test', 'unlabeled', 'train+unlabeled')
    """
    return _DATASETS[_check_name(name)][1]


def _check_name(name: str) -> str:
    if name not in _DATASETS:
        hint = did_you_mean(str(name).lower(), _DATASETS)
        raise ValueError(f"unknown data set {name!r}; valid names are {list(_DATASETS)}.{hint}")
    return name


def _first_n(ds: ImageDataset, n: int | None, seed: int) -> ImageDataset:
    # The first n of a seeded permutation keeps class proportions roughly; sorting the kept
    # indices keeps the original order, and n < m gives a subset of what m gives.
    if n is None:
        return ds
    if n > len(ds):
        raise ValueError(
            f"n={n} but {ds.name}/{ds.split} has only {len(ds)} images; use n=None for all"
        )
    perm = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))
    return ds.subset(perm[:n].sort().values)


def load(
    name: str,
    split: str = "train",
    *,
    n: int | None = None,
    root: str | Path | None = None,
    download: bool = False,
    seed: int = 0,
    **kw,
) -> ImageDataset:
    """Load an image data set by name as an in-memory :class:`ImageDataset`.

    Nothing is printed unless a download really happens; print ``ds.describe()`` to show
    which data is in use.

    Args:
        name: one of :func:`available` (``"digits"``, ``"shapes"``, ``"cifar10"``,
            ``"stl10"``, ``"mnist"``).
        split: ``"train"`` or ``"test"``; STL-10 also has ``"unlabeled"`` (labels -1) and
            ``"train+unlabeled"``.
        n: keep the first ``n`` images of a permutation seeded by ``seed`` (class
            balance is roughly kept). For ``shapes`` this is the number generated
            (default 10,000 train / 2,000 test).
        root: folder of the downloadable data sets (default ``$MINISSL_DATA`` or
            ``~/.cache/minissl/data``).
        download: download a missing data set through torchvision.
        seed: seed of the subset permutation; for ``shapes`` also the generation seed.
        **kw: ``size=`` resizes every data set to size x size (for ``shapes`` it is the
            drawing size, ``image_size``); ``nuisance=`` switches factors of ``shapes`` on or
            off (see :func:`make_shapes`; ``nuisance=CLUTTERED`` switches every one on).

    Example:
        >>> ds = load("shapes", "test", n=64, nuisance={"clutter": False})
        >>> ds.images.shape, ds.images.dtype, ds.labels.dtype
        (torch.Size([64, 3, 32, 32]), torch.float32, torch.int64)
        >>> try:
        ...     load("shape")
        ... except ValueError as err:
        ...     print(str(err)[-22:])
        Did you mean 'shapes'?
    """
    name = _check_name(name)
    valid = _DATASETS[name][1]
    if split not in valid:
        raise ValueError(f"unknown split {split!r} for {name!r}; use one of {list(valid)}")
    if n is not None and n < 0:
        raise ValueError(f"n must be None or >= 0; got {n}")
    if name == "shapes":
        if "size" in kw:  # the same keyword as the other data sets, so chapters can pass it
            kw["image_size"] = kw.pop("size")
        count = _shapes.DEFAULT_SIZE[split] if n is None else n
        return make_shapes(count, seed=seed, split=split, **kw)
    if name == "digits":
        return _first_n(_digits.load_digits(split, **kw), n, seed)
    return _real.load_real(name, split, root=root, download=download, n=n, seed=seed, **kw)


__all__ = [
    "ImageDataset",
    "load",
    "available",
    "splits",
    "make_shapes",
    "DEFAULT_NUISANCE",
    "CLUTTERED",
    "few_label_indices",
    "few_labels",
    "default_root",
    "read_idx",
    "text_corpus",
    "text_corpora",
    "text_splits",
    "CharTokenizer",
    "WordTokenizer",
    "BPETokenizer",
    "SPECIALS",
    "mlm_mask",
    "token_windows",
    "DocPassages",
    "DOC_CLASSES",
]
