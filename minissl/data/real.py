"""Real image data sets read from torchvision's on-disk formats: CIFAR-10, STL-10 and MNIST.

torchvision downloads and extracts the archives (``download=True``); the files are then read
here with plain NumPy, in their documented formats:

- CIFAR-10, ``cifar-10-batches-py/``: pickled dicts ``data_batch_1`` .. ``data_batch_5`` and
  ``test_batch``, each with ``"data"`` (N, 3072) uint8 (1024 red, then green, then blue
  pixels, rows first) and ``"labels"`` (N ints); ``batches.meta`` has ``"label_names"``.
- STL-10, ``stl10_binary/``: ``{train,test,unlabeled}_X.bin`` raw uint8 images of 3x96x96,
  each channel stored column by column; ``{train,test}_y.bin`` uint8 labels 1..10;
  ``class_names.txt`` one name per line.
- MNIST, ``MNIST/raw/``: IDX files ``{train,t10k}-{images-idx3,labels-idx1}-ubyte``
  (optionally gzipped): a big-endian header (0, 0, type 0x08, ndim, then ndim sizes) and uint8s.

Reading the files ourselves (instead of torchvision's classes) keeps the loading code short,
lets tiny test fixtures in the same format be read (torchvision would reject them on their
MD5 checksums) and converts straight to float tensors without a PIL image per item.
"""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..utils import MinisslError
from .dataset import ImageDataset

ENV_VAR = "MINISSL_DATA"

SPLITS = {
    "cifar10": ("train", "test"),
    "stl10": ("train", "test", "unlabeled", "train+unlabeled"),
    "mnist": ("train", "test"),
}

_PRETTY = {"cifar10": "CIFAR-10", "stl10": "STL-10", "mnist": "MNIST"}
_SIZE_MB = {"cifar10": 170, "stl10": 2600, "mnist": 12}
_HOME = {
    "cifar10": "https://www.cs.toronto.edu/~kriz/cifar.html (cifar-10-python.tar.gz)",
    "stl10": "https://cs.stanford.edu/~acoates/stl10/ (stl10_binary.tar.gz)",
    "mnist": "the MNIST mirrors listed in torchvision.datasets.MNIST.mirrors",
}
STL10_CLASSES = [
    "airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"
]
_STL_SHAPE = (3, 96, 96)


def default_root() -> Path:
    """Where real data sets live: ``$MINISSL_DATA`` if set, else ``~/.cache/minissl/data``.

    Example:
        >>> isinstance(default_root(), Path)
        True
    """
    return Path(os.environ.get(ENV_VAR) or "~/.cache/minissl/data").expanduser()


def _corrupt(name: str, path: Path, why: str) -> MinisslError:
    folder = path.parent
    return MinisslError(
        f"{_PRETTY[name]} file {path} looks corrupt or truncated ({why}). Delete the folder "
        f"{folder} and download it again with minissl.data.load({name!r}, download=True)."
    )


def _missing(name: str, root: Path, paths: list[Path]) -> MinisslError:
    lost = [str(p) for p in paths if not p.exists()]
    return MinisslError(
        f"{_PRETTY[name]} was not found under {root} (missing: {', '.join(lost)}). Get it "
        f"with minissl.data.load({name!r}, download=True) (about {_SIZE_MB[name]} MB, once), "
        f"or download and extract it yourself from {_HOME[name]} so that those files exist. "
        f"Point root=... or ${ENV_VAR} at another folder if the data is elsewhere."
    )


def _download(name: str, root: Path) -> None:
    # torchvision fetches the archive, checks its MD5 and extracts it into the layout read here.
    import torchvision.datasets as tvd

    print(f"minissl: downloading {_PRETTY[name]} into {root} (about {_SIZE_MB[name]} MB, once)")
    root.mkdir(parents=True, exist_ok=True)
    if name == "cifar10":
        tvd.CIFAR10(str(root), train=False, download=True)
    elif name == "stl10":
        tvd.STL10(str(root), split="test", download=True)
    else:
        tvd.MNIST(str(root), train=False, download=True)


# --- CIFAR-10 -------------------------------------------------------------------------------


def _cifar10_files(root: Path, split: str) -> list[Path]:
    folder = root / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    return [folder / n for n in names] + [folder / "batches.meta"]


def _unpickle(name: str, path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            # The batches were pickled by Python 2; latin1 maps its byte strings 1:1.
            entry = pickle.load(f, encoding="latin1")
    except Exception as err:  # a damaged pickle can fail in many ways; all mean "re-download"
        raise _corrupt(name, path, f"{type(err).__name__}: {err}") from None
    if not isinstance(entry, dict):
        raise _corrupt(name, path, f"expected a pickled dict, got {type(entry).__name__}")
    return entry


def _read_cifar10(root: Path, split: str):
    *batches, meta = _cifar10_files(root, split)
    images, labels = [], []
    for path in batches:
        entry = _unpickle("cifar10", path)
        data, y = entry.get("data"), entry.get("labels")
        if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            got = getattr(data, "shape", type(data).__name__)
            raise _corrupt("cifar10", path, f"'data' should be an (N, 3072) array, got {got}")
        if y is None or len(y) != len(data):
            raise _corrupt("cifar10", path, "'labels' is missing or has the wrong length")
        images.append(data.astype(np.uint8, copy=False).reshape(-1, 3, 32, 32))
        labels.append(np.asarray(y, dtype=np.int64))
    classes = _unpickle("cifar10", meta).get("label_names")
    if not classes:
        raise _corrupt("cifar10", meta, "no 'label_names'")
    return images, np.concatenate(labels), list(classes)


# --- STL-10 ---------------------------------------------------------------------------------


def _stl10_files(root: Path, split: str) -> list[Path]:
    folder = root / "stl10_binary"
    files = []
    for part in split.split("+"):
        files.append(folder / f"{part}_X.bin")
        if part != "unlabeled":
            files.append(folder / f"{part}_y.bin")
    return files


def _stl10_images(path: Path) -> np.ndarray:
    per_image = int(np.prod(_STL_SHAPE))
    size = path.stat().st_size
    if size == 0 or size % per_image:
        raise _corrupt("stl10", path, f"{size} bytes is not a multiple of {per_image}")
    # A memory map: the 100,000 unlabeled images (2.7 GB) are only read where asked for.
    mm = np.memmap(path, dtype=np.uint8, mode="r").reshape(-1, *_STL_SHAPE)
    return mm.transpose(0, 1, 3, 2)  # stored column-major: swap to (C, H, W)


def _read_stl10(root: Path, split: str):
    folder = root / "stl10_binary"
    images, labels = [], []
    for part in split.split("+"):
        x = _stl10_images(folder / f"{part}_X.bin")
        if part == "unlabeled":
            y = np.full(len(x), -1, dtype=np.int64)
        else:
            path = folder / f"{part}_y.bin"
            y = np.fromfile(path, dtype=np.uint8).astype(np.int64) - 1  # stored 1-based
            if len(y) != len(x) or (len(y) and (y.min() < 0 or y.max() > 9)):
                why = f"{len(y)} labels in 1..10 for {len(x)} images"
                raise _corrupt("stl10", path, why)
        images.append(x)
        labels.append(y)
    names_file = folder / "class_names.txt"
    classes = names_file.read_text().splitlines() if names_file.exists() else STL10_CLASSES
    return images, np.concatenate(labels), [c.strip() for c in classes if c.strip()]


# --- MNIST ----------------------------------------------------------------------------------


def _mnist_files(root: Path, split: str) -> list[Path]:
    prefix = "train" if split == "train" else "t10k"
    folder = root / "MNIST" / "raw"
    return [folder / f"{prefix}-images-idx3-ubyte", folder / f"{prefix}-labels-idx1-ubyte"]


def _exists(path: Path) -> bool:
    return path.exists() or path.with_name(path.name + ".gz").exists()


def read_idx(path: str | Path) -> np.ndarray:
    """Read a uint8 IDX file (MNIST's format), gzipped or not, into an array of its shape.

    Example:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "x-idx1-ubyte"
        >>> _ = p.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9]))
        >>> read_idx(p).tolist()
        [7, 8, 9]
    """
    path = Path(path)
    if not path.exists() and path.with_name(path.name + ".gz").exists():
        path = path.with_name(path.name + ".gz")
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as err:  # a truncated .gz raises these
        raise _corrupt("mnist", path, str(err)) from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise _corrupt("mnist", path, "bad IDX header: expected 0x00 0x00 0x08 (uint8) ...")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise _corrupt("mnist", path, "header ends early")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    if len(data) - header != int(np.prod(dims)):
        raise _corrupt("mnist", path, f"{len(data) - header} bytes of data for shape {dims}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _read_mnist(root: Path, split: str):
    image_path, label_path = _mnist_files(root, split)
    x, y = read_idx(image_path), read_idx(label_path)
    if x.ndim != 3 or y.ndim != 1 or len(x) != len(y) or (len(y) and y.max() > 9):
        raise _corrupt("mnist", image_path, f"images {x.shape} and labels {y.shape} do not match")
    return [x[:, None]], y.astype(np.int64), [str(d) for d in range(10)]


_FILES = {"cifar10": _cifar10_files, "stl10": _stl10_files, "mnist": _mnist_files}
_READERS = {"cifar10": _read_cifar10, "stl10": _read_stl10, "mnist": _read_mnist}


def _gather(parts: list[np.ndarray], idx: np.ndarray) -> np.ndarray:
    # Items `idx` (sorted) of the parts laid end to end, as one writable uint8 array.
    out, start = [], 0
    for part in parts:
        local = idx[(idx >= start) & (idx < start + len(part))] - start
        if len(local) == len(part):
            out.append(np.array(part))
        elif len(local):
            out.append(part[local])
        start += len(part)
    return np.concatenate(out) if len(out) > 1 else np.array(out[0])


def load_real(
    name: str,
    split: str = "train",
    *,
    root: str | Path | None = None,
    download: bool = False,
    n: int | None = None,
    seed: int = 0,
    size: int | None = None,
) -> ImageDataset:
    """Load a real data set from disk (downloading it first if asked) as an ImageDataset.

    Args:
        name: ``"cifar10"``, ``"stl10"`` or ``"mnist"``.
        split: ``"train"`` or ``"test"``; STL-10 also has ``"unlabeled"`` (100,000 images,
            labels -1) and ``"train+unlabeled"``.
        root: folder holding the data (default :func:`default_root`).
        download: fetch the data through torchvision when it is missing.
        n: keep only the first ``n`` images of a permutation seeded by ``seed`` (in their
            original order); only those are converted, so a slice of STL-10's unlabeled
            split costs little memory. Float32 images take 4 bytes per value: the whole
            unlabeled split is 11 GB at 96x96 and 1.2 GB with ``size=32``.
        seed: seed of that permutation.
        size: resize the images to (size, size) (bilinear, anti-aliased when shrinking).
    """
    if split not in SPLITS[name]:
        raise ValueError(f"unknown split {split!r} for {name!r}; use one of {list(SPLITS[name])}")
    root = Path(root).expanduser() if root is not None else default_root()
    files = _FILES[name](root, split)
    if not all(_exists(p) for p in files):
        if not download:
            raise _missing(name, root, files)
        _download(name, root)
        if not all(_exists(p) for p in files):
            raise _missing(name, root, files)
    parts, labels, classes = _READERS[name](root, split)

    total = len(labels)
    if n is None:
        idx = np.arange(total)
    else:
        if n > total:
            raise ValueError(
                f"n={n} but {name}/{split} has only {total} images; use n=None for all"
            )
        perm = torch.randperm(total, generator=torch.Generator().manual_seed(seed))
        idx = np.sort(perm[:n].numpy())
    c, h, w = parts[0].shape[1:]
    out_hw = (size, size) if size is not None else (h, w)
    images = torch.empty(len(idx), c, *out_hw)
    step = 4096  # convert in slices so uint8 -> float never holds two full copies
    for i in range(0, len(idx), step):
        x = torch.from_numpy(_gather(parts, idx[i : i + step])).float().div_(255)
        if size is not None and (h, w) != out_hw:
            x = F.interpolate(x, size=out_hw, mode="bilinear", align_corners=False, antialias=True)
            x = x.clamp_(0, 1)
        images[i : i + step] = x
    return ImageDataset(images, torch.from_numpy(labels[idx]), classes, name, split)
