"""Tests of minissl.data: data sets, on-disk formats (tiny fixtures), corpus and tokenizers."""

from __future__ import annotations

import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

from minissl import data
from minissl.data import (
    CharTokenizer,
    ImageDataset,
    WordTokenizer,
    few_labels,
    load,
    make_shapes,
    text_corpus,
)
from minissl.data import real as real_mod
from minissl.utils import MinisslError

# --- fixture writers: the exact on-disk formats, a handful of images each -------------------


def write_cifar10(root, n_train_per_batch=2, n_test=3, seed=0):
    """Write cifar-10-batches-py/ and return the images (N, 3, 32, 32) uint8 and labels."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    out = {}
    for split, names, per in (
        ("train", [f"data_batch_{i}" for i in range(1, 6)], n_train_per_batch),
        ("test", ["test_batch"], n_test),
    ):
        xs, ys = [], []
        for name in names:
            x = rng.integers(0, 256, size=(per, 3, 32, 32), dtype=np.uint8)
            y = rng.integers(0, 10, size=per).tolist()
            with open(folder / name, "wb") as f:
                # Same layout as the real batches: rows of 3072 = R plane, G plane, B plane.
                entry = {"batch_label": name, "data": x.reshape(per, -1), "labels": y,
                         "filenames": [f"{i}.png" for i in range(per)]}
                pickle.dump(entry, f, protocol=2)
            xs.append(x)
            ys += y
        out[split] = (np.concatenate(xs), np.array(ys))
    names = ["airplane", "automobile", "bird", "cat", "deer",
             "dog", "frog", "horse", "ship", "truck"]
    with open(folder / "batches.meta", "wb") as f:
        meta = {"label_names": names, "num_cases_per_batch": n_train_per_batch, "num_vis": 3072}
        pickle.dump(meta, f)
    return out, names


def write_stl10(root, n_train=4, n_test=3, n_unlabeled=5, seed=0):
    rng = np.random.default_rng(seed)
    folder = root / "stl10_binary"
    folder.mkdir(parents=True)
    out = {}
    for split, n in (("train", n_train), ("test", n_test), ("unlabeled", n_unlabeled)):
        x = rng.integers(0, 256, size=(n, 3, 96, 96), dtype=np.uint8)  # (N, C, H, W)
        # The binary stores each channel column by column (Fortran order): swap H and W.
        stored = np.ascontiguousarray(x.transpose(0, 1, 3, 2))
        (folder / f"{split}_X.bin").write_bytes(stored.tobytes())
        y = rng.integers(0, 10, size=n)
        if split != "unlabeled":
            (folder / f"{split}_y.bin").write_bytes((y + 1).astype(np.uint8).tobytes())
        out[split] = (x, y if split != "unlabeled" else np.full(n, -1))
    (folder / "class_names.txt").write_text("\n".join(real_mod.STL10_CLASSES) + "\n")
    return out


def idx_bytes(arr):
    header = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def write_mnist(root, n_train=5, n_test=4, seed=0, gz_test=True):
    rng = np.random.default_rng(seed)
    folder = root / "MNIST" / "raw"
    folder.mkdir(parents=True)
    out = {}
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, size=n).astype(np.uint8)
        for kind, arr in (("images-idx3", x), ("labels-idx1", y)):
            path = folder / f"{prefix}-{kind}-ubyte"
            if gz_test and split == "test":  # torchvision keeps the .gz; check we read those too
                with gzip.open(str(path) + ".gz", "wb") as f:
                    f.write(idx_bytes(arr))
            else:
                path.write_bytes(idx_bytes(arr))
        out[split] = (x, y)
    return out


# --- ImageDataset ---------------------------------------------------------------------------


def test_image_dataset_basics_and_validation():
    images = torch.rand(6, 3, 4, 4)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    ds = ImageDataset(images, labels, ["a", "b", "c"], "toy", factors={"f": torch.arange(6)})
    assert len(ds) == 6 and ds.num_classes == 3 and ds.image_shape == (3, 4, 4)
    x, y = ds[4]
    assert torch.equal(x, images[4]) and y == 1 and isinstance(y, int)
    sub = ds.subset([5, 0])
    assert torch.equal(sub.images, images[[5, 0]]) and sub.factors["f"].tolist() == [5, 0]
    assert sub.classes == ["a", "b", "c"] and sub.name == "toy"
    assert "toy" in repr(ds) and "n=6" in repr(ds)
    assert ds.describe().startswith("toy/train: 6 images of shape (3, 4, 4)")
    assert ds.class_counts().tolist() == [2, 2, 2]

    with pytest.raises(ValueError, match=r"\(N, C, H, W\); got \(3, 4, 4\)"):
        ImageDataset(torch.rand(3, 4, 4), torch.zeros(3, dtype=torch.long), ["a"], "x")
    with pytest.raises(ValueError, match="float32"):
        ImageDataset(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.zeros(2).long(), ["a"], "x")
    with pytest.raises(ValueError, match="int64"):
        ImageDataset(torch.rand(2, 1, 4, 4), torch.zeros(2, dtype=torch.int32), ["a"], "x")
    with pytest.raises(ValueError, match="same length"):
        ImageDataset(torch.rand(2, 1, 4, 4), torch.zeros(3, dtype=torch.long), ["a"], "x")
    with pytest.raises(ValueError, match="no class name"):
        ImageDataset(torch.rand(2, 1, 4, 4), torch.tensor([0, 1]), ["a"], "x")


def test_few_labels_picks_per_class_and_is_seeded():
    ds = load("digits", "train")
    few = few_labels(ds, 10, seed=0)
    assert few.class_counts().tolist() == [10] * 10
    assert torch.equal(few.images, few_labels(ds, 10, seed=0).images)
    assert not torch.equal(few.images, few_labels(ds, 10, seed=1).images)
    with pytest.raises(ValueError, match="has only 2 examples"):
        few_labels(ds.subset(torch.arange(20)), 10)


# --- names, splits and errors ---------------------------------------------------------------


def test_available_lists_every_name_with_a_description():
    names = data.available()
    assert set(names) == {"digits", "shapes", "cifar10", "stl10", "mnist"}
    assert all(isinstance(d, str) and d for d in names.values())


def test_unknown_name_lists_valid_names_and_suggests():
    msg = r"valid names are \['digits', 'shapes'.*Did you mean 'cifar10'"
    with pytest.raises(ValueError, match=msg):
        load("cifar")
    with pytest.raises(ValueError, match="valid names are"):
        load("imagenet")


def test_bad_split_lists_the_splits_of_that_data_set():
    msg = r"unknown split 'val' for 'digits'; use one of \['train', 'test'\]"
    with pytest.raises(ValueError, match=msg):
        load("digits", "val")
    with pytest.raises(ValueError, match="'unlabeled', 'train\\+unlabeled'"):
        load("stl10", "unlabelled")
    with pytest.raises(ValueError, match="use one of"):
        load("shapes", "unlabeled")


@pytest.mark.parametrize("name", ["cifar10", "stl10", "mnist"])
def test_missing_files_say_how_to_download(tmp_path, name):
    with pytest.raises(MinisslError, match=rf"load\('{name}', download=True\)") as err:
        load(name, root=tmp_path)
    assert str(tmp_path) in str(err.value)


def test_default_root_follows_env(tmp_path, monkeypatch):
    monkeypatch.setenv("MINISSL_DATA", str(tmp_path))
    assert data.default_root() == tmp_path
    write_mnist(tmp_path)
    assert len(load("mnist", "train")) == 5  # found through $MINISSL_DATA


def test_download_is_only_called_when_asked_and_missing(tmp_path, monkeypatch):
    calls = []

    def fake_download(name, root):  # stands in for torchvision: writes the extracted files
        calls.append(name)
        write_mnist(root)

    monkeypatch.setattr(real_mod, "_download", fake_download)
    with pytest.raises(MinisslError):
        load("mnist", root=tmp_path)
    assert calls == []
    assert len(load("mnist", root=tmp_path, download=True)) == 5
    assert len(load("mnist", "test", root=tmp_path, download=True)) == 4
    assert calls == ["mnist"]  # the second call found the files


# --- real formats, round-tripped through tiny fixtures ---------------------------------------


def test_cifar10_fixture_round_trip(tmp_path):
    written, names = write_cifar10(tmp_path)
    for split in ("train", "test"):
        ds = load("cifar10", split, root=tmp_path)
        x, y = written[split]
        assert ds.images.shape == (len(x), 3, 32, 32) and ds.images.dtype == torch.float32
        assert torch.equal((ds.images * 255).round().to(torch.uint8), torch.from_numpy(x))
        assert ds.labels.tolist() == y.tolist() and ds.classes == names
        assert ds.name == "cifar10" and ds.split == split
    # A pixel checked by hand: channel 1 (green), row 2, column 3 of image 0.
    ds = load("cifar10", "train", root=tmp_path)
    assert ds.images[0, 1, 2, 3].item() == pytest.approx(written["train"][0][0, 1, 2, 3] / 255)


def test_cifar10_n_size_and_corrupt_file(tmp_path):
    write_cifar10(tmp_path)
    sub = load("cifar10", "train", root=tmp_path, n=4, seed=1, size=16)
    full = load("cifar10", "train", root=tmp_path)
    assert sub.images.shape == (4, 3, 16, 16) and 0 <= sub.images.min() and sub.images.max() <= 1
    assert set(sub.labels.tolist()) <= set(full.labels.tolist())
    truncated = b"\x80\x02}q\x00(X"
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(truncated)
    with pytest.raises(MinisslError, match=r"corrupt.*Delete the folder.*download=True"):
        load("cifar10", "train", root=tmp_path)


def test_stl10_fixture_round_trip_with_unlabeled(tmp_path):
    written = write_stl10(tmp_path)
    for split in ("train", "test", "unlabeled"):
        ds = load("stl10", split, root=tmp_path)
        x, y = written[split]
        assert ds.images.shape == (len(x), 3, 96, 96)
        assert torch.equal((ds.images * 255).round().to(torch.uint8), torch.from_numpy(x))
        assert ds.labels.tolist() == y.tolist()
        assert ds.classes == real_mod.STL10_CLASSES
    unl = load("stl10", "unlabeled", root=tmp_path)
    assert (unl.labels == -1).all() and "5 unlabeled" in unl.describe()
    both = load("stl10", "train+unlabeled", root=tmp_path)
    assert len(both) == 9 and both.labels[:4].tolist() == written["train"][1].tolist()
    assert torch.equal(both.images[4:], unl.images)
    # n picks from the concatenation; size shrinks the images.
    sub = load("stl10", "train+unlabeled", root=tmp_path, n=6, size=32)
    assert sub.images.shape == (6, 3, 32, 32)


def test_stl10_corrupt_file(tmp_path):
    write_stl10(tmp_path)
    path = tmp_path / "stl10_binary" / "test_X.bin"
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(MinisslError, match=r"test_X.bin looks corrupt.*download=True"):
        load("stl10", "test", root=tmp_path)


def test_mnist_fixture_round_trip_plain_and_gzip(tmp_path):
    written = write_mnist(tmp_path)
    for split in ("train", "test"):  # the test files are gzipped
        ds = load("mnist", split, root=tmp_path)
        x, y = written[split]
        assert ds.images.shape == (len(x), 1, 28, 28)
        assert torch.equal((ds.images[:, 0] * 255).round().to(torch.uint8), torch.from_numpy(x))
        assert ds.labels.tolist() == y.tolist()
        assert ds.classes == [str(d) for d in range(10)]


def test_mnist_bad_header(tmp_path):
    write_mnist(tmp_path, gz_test=False)
    float_typed = b"\x00\x00\x0d\x01\x00\x00\x00\x01"  # type 0x0d (float32), not uint8
    (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").write_bytes(float_typed)
    with pytest.raises(MinisslError, match="bad IDX header"):
        load("mnist", "test", root=tmp_path)


# --- digits ---------------------------------------------------------------------------------


def test_digits_splits_sizes_ranges_and_resize():
    train, test = load("digits", "train"), load("digits", "test")
    assert (len(train), len(test)) == (1347, 450)
    assert train.images.shape[1:] == (1, 8, 8) and train.images.dtype == torch.float32
    assert train.images.min() == 0 and train.images.max() == 1
    # Stratified: each class keeps about a quarter of its images in the test split.
    counts_tr, counts_te = train.class_counts(), test.class_counts()
    frac = counts_te.float() / (counts_tr + counts_te).float()
    assert ((frac - 0.25).abs() < 0.01).all()
    # No image is in both splits (digits has a few exact duplicates, so compare indices
    # through the deterministic split rather than pixels): the split is fixed across calls.
    assert torch.equal(load("digits", "test").images, test.images)
    big = load("digits", "train", size=32, n=50)
    assert big.images.shape == (50, 1, 32, 32) and 0 <= big.images.min() and big.images.max() <= 1


def test_n_keeps_rough_class_balance_and_is_seeded():
    a = load("digits", "train", n=500, seed=0)
    assert len(a) == 500 and a.class_counts().min() >= 30
    assert torch.equal(a.images, load("digits", "train", n=500, seed=0).images)
    assert not torch.equal(a.labels, load("digits", "train", n=500, seed=1).labels)
    with pytest.raises(ValueError, match="only 1347 images"):
        load("digits", "train", n=5000)


# --- shapes ---------------------------------------------------------------------------------


def test_shapes_shape_dtype_range_and_balance():
    ds = load("shapes", "train", n=1024)
    assert ds.images.shape == (1024, 3, 32, 32) and ds.images.dtype == torch.float32
    assert ds.labels.dtype == torch.int64 and 0 <= ds.images.min() and ds.images.max() <= 1
    assert ds.num_classes >= 6 and len(set(ds.classes)) == ds.num_classes
    counts = ds.class_counts()
    assert counts.max() - counts.min() <= 1  # balanced within every chunk of 256
    for key in ("colour", "position", "scale", "rotation", "background", "clutter"):
        assert len(ds.factors[key]) == 1024
    assert ds.images.std() > 0.1  # not blank


def test_shapes_seeded_prefix_and_splits_differ():
    a = make_shapes(300, seed=0)
    assert torch.equal(a.images, make_shapes(300, seed=0).images)
    assert torch.equal(a.images[:100], make_shapes(100, seed=0).images)  # n only cuts
    assert not torch.equal(a.images, make_shapes(300, seed=1).images)
    test = make_shapes(300, seed=0, split="test")
    # No test image equals any train image.
    dist = torch.cdist(a.images.flatten(1), test.images.flatten(1))
    assert dist.min() > 1.0


def test_shapes_image_size_and_nuisance_switches():
    plain = make_shapes(64, image_size=48, nuisance={k: False for k in data.shapes.NUISANCES})
    assert plain.images.shape == (64, 3, 48, 48)
    assert load("shapes", n=8, size=16).images.shape == (8, 3, 16, 16)
    assert (plain.factors["rotation"] == 0).all() and (plain.factors["position"] == 0).all()
    assert (plain.factors["clutter"] == 0).all()
    # With every nuisance off, the corner pixel is the flat background and all colours agree.
    assert torch.allclose(plain.images[:, :, 0, 0], torch.full((64, 3), 0.1))
    assert torch.allclose(plain.factors["colour"], torch.full((64, 3), 0.95))
    # Switching one factor off leaves the others as they were.
    no_rot = make_shapes(64, nuisance={"rotation": False})
    full = make_shapes(64)
    assert torch.equal(no_rot.factors["colour"], full.factors["colour"])
    assert torch.equal(no_rot.factors["position"], full.factors["position"])
    with pytest.raises(ValueError, match="unknown nuisance 'color'"):
        make_shapes(4, nuisance={"color": False})


def test_shapes_default_is_upright_on_a_flat_background_and_cluttered_switches_all_on():
    default = load("shapes", n=64)
    cluttered = load("shapes", n=64, nuisance=data.CLUTTERED)
    assert set(data.CLUTTERED) == set(data.DEFAULT_NUISANCE) == set(data.shapes.NUISANCES)
    # The default: flat dark background at every corner, no clutter, no noise, upright ...
    corners = default.images[:, :, [0, 0, -1, -1], [0, -1, 0, -1]]  # (64, 3, 4)
    assert torch.allclose(corners, torch.full_like(corners, 0.1))
    assert (default.factors["clutter"] == 0).all()
    assert (default.factors["rotation"] == 0).all()
    # ... while colour, position and scale vary, as they do in the cluttered variant.
    assert torch.equal(default.labels, cluttered.labels)
    for factor in ("position", "scale"):
        assert torch.equal(default.factors[factor], cluttered.factors[factor])
        assert default.factors[factor].std() > 0
    assert default.factors["colour"].std(0).min() > 0.05
    # Every nuisance on: any rotation, textured backgrounds and some clutter.
    assert cluttered.factors["rotation"].std() > 1.0
    assert cluttered.factors["clutter"].float().mean() > 1.0
    corners = cluttered.images[:, :, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert corners.std() > 0.1


def test_shapes_nuisance_factors_do_not_depend_on_class():
    ds = make_shapes(2048, seed=3)
    img_mean = ds.images.mean(dim=(1, 2, 3))  # overall brightness of each image
    per_class = []
    for k in range(ds.num_classes):
        m = ds.labels == k
        per_class.append(torch.cat([
            ds.factors["colour"][m].mean(0), ds.factors["background"][m].mean(0),
            ds.factors["position"][m].mean(0), ds.factors["scale"][m].mean()[None],
            ds.factors["bright_background"][m].float().mean()[None], img_mean[m].mean()[None],
        ]))
    per_class = torch.stack(per_class)  # (K, 11)
    # About 256 images a class: the class means of a [0, 1] factor vary by ~0.02.
    spread = per_class.max(0).values - per_class.min(0).values
    assert (spread < 0.12).all(), spread


def test_shapes_pixels_mark_the_shape_where_the_factors_say():
    # Without nuisances, shapes sit in the centre: the centre pixel has the shape's colour
    # for filled shapes (circle, square) and the background for a ring.
    ds = make_shapes(64, nuisance={k: False for k in data.shapes.NUISANCES})
    centre = ds.images[:, :, 15:17, 15:17].mean(dim=(2, 3))  # (N, 3)
    for name, expect in (("circle", 0.95), ("square", 0.95), ("ring", 0.1)):
        m = ds.labels == ds.classes.index(name)
        assert torch.allclose(centre[m], torch.full_like(centre[m], expect), atol=0.02), name


# --- text -----------------------------------------------------------------------------------


def test_text_corpus_is_deterministic_and_split():
    text = text_corpus()
    assert len(text) > 100_000 and text == text_corpus()
    assert "assert" in text and "def " in text
    train, valid = text_corpus("train"), text_corpus("valid")
    assert text == train[:-1] + "\n\n" + valid  # a cut between topics, nothing lost
    assert 0.05 < len(valid) / len(text) < 0.15
    with pytest.raises(ValueError, match="use one of"):
        text_corpus("test")


def test_char_tokenizer_round_trip_bytes_and_specials():
    text = text_corpus("train")[:20_000]
    tok = CharTokenizer.from_text(text)
    ids = tok.encode(text)
    assert tok.decode(ids) == text and max(ids) < tok.vocab_size
    odd = "naïve café — 日本語 🙂\x00"
    assert tok.decode(tok.encode(odd)) == odd  # byte fallback: any text round-trips
    assert tok.decode(torch.tensor(tok.encode(odd))) == odd
    assert tok.special_ids == {"pad": 0, "unk": 1, "mask": 2, "bos": 3, "eos": 4}
    wrapped = tok.encode("ab", add_bos=True, add_eos=True)
    assert wrapped[0] == tok.bos_id and wrapped[-1] == tok.eos_id
    assert tok.decode(wrapped) == "ab"
    shown = tok.decode([tok.mask_id, *tok.encode("ab"), tok.pad_id], skip_special=False)
    assert shown == "<mask>ab<pad>"

    strict = CharTokenizer.from_text("abc", byte_fallback=False)
    assert strict.vocab_size == 5 + 3
    assert strict.encode("abz") == [5, 6, strict.unk_id]
    assert strict.decode(strict.encode("abz")) == "ab\ufffd"
    with pytest.raises(ValueError, match="out of range"):
        strict.decode([99])


def test_word_tokenizer_round_trip_and_unknowns():
    text = text_corpus("train")[:30_000]
    tok = WordTokenizer.from_text(text)
    assert tok.decode(tok.encode(text)) == text  # every piece is in the vocabulary
    small = WordTokenizer.from_text(text, max_vocab=200)
    assert small.vocab_size == 200
    ids = small.encode(text)
    assert small.unk_id in ids  # rare words became unk ...
    assert small.decode(ids).count("\n") == text.count("\n")  # ... but the layout survived
    assert WordTokenizer.from_text(text, max_vocab=200).itos == small.itos  # deterministic
    frequent = WordTokenizer.from_text(text, min_freq=5)
    assert frequent.vocab_size < tok.vocab_size
    sentence = "The object is a value."
    assert tok.tokenize(sentence) == ["The", " ", "object", " ", "is", " ", "a", " ", "value", "."]
    assert tok.decode(tok.encode(sentence)) == sentence
    assert tok.decode(tok.encode("The zyzzyva is")) == "The <unk> is"
    assert tok.decode(tok.encode("a\t\t\t\tb")) in ("a\t\t\t\tb", "a<unk><unk><unk><unk>b")
    lower = WordTokenizer.from_text("Hello hello", lowercase=True)
    assert lower.encode("HELLO") == lower.encode("hello")
