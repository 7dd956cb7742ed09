"""Property-based tests: bad inputs to the public entry points end in a clear error.

Every generated input must end either in a minissl error (a ``MinisslError``, or a
``ValueError``/``TypeError`` whose message names what is wrong) or in a correct result; never
in an error from deep inside torch and never in a silently wrong number. The examples are
fixed by the ``ci`` hypothesis profile (tests/conftest.py), so every run tries the same ones;
the methods' training steps and ``fit`` are tried on every pair of a method and a bad batch of
its kind of input (images, labels, token ids or signals), enumerated with ``parametrize``.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import os
import re

import pytest
import torch
from torch import nn

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from minissl import augment, data, recipes  # noqa: E402
from minissl import evaluate as ev  # noqa: E402
from minissl import train as T  # noqa: E402
from minissl.cli.args import method_args, method_class  # noqa: E402
from minissl.cli.parser import make_parser  # noqa: E402
from minissl.data import ImageDataset  # noqa: E402
from minissl.losses import (  # noqa: E402
    gaussian_kl,
    info_nce,
    masked_patch_mse,
    nt_xent,
    swav_loss,
    vae_elbo,
)
from minissl.train import TrainConfig, TrainingDiverged  # noqa: E402
from minissl.utils import MinisslError  # noqa: E402

DTYPES = [torch.float32, torch.float64, torch.float16, torch.uint8, torch.int64, torch.bool]
VALUES = ["unit", "pixels", "normal", "nan", "inf", "zeros"]


def make(shape, dtype, values, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g)
    if values == "pixels":
        x = x * 255
    elif values == "normal":
        x = torch.randn(shape, generator=g) * 3
    elif values == "zeros":
        x = torch.zeros(shape)
    elif values in ("nan", "inf") and x.numel():
        x.view(-1)[len(x.view(-1)) // 2] = float(values)
    if dtype == torch.bool:
        return x > 0.5
    if not dtype.is_floating_point:
        return x.nan_to_num(0, 0, 0).clamp(0, 255).to(dtype)
    return x.to(dtype)


shapes = st.lists(st.integers(0, 6), min_size=0, max_size=5).map(tuple)
tensors = st.tuples(shapes, st.sampled_from(DTYPES), st.sampled_from(VALUES))


def names_the_problem(err: Exception, *words: str) -> bool:
    text = str(err).lower()
    return bool(text) and any(w.lower() in text for w in words)


# ----------------------------------------------------------------------------- data


@given(tensors, st.integers(0, 6), st.sampled_from([torch.int64, torch.int32, torch.float32]),
       st.integers(-2, 4), st.integers(0, 3))
def test_image_dataset_accepts_only_valid_images_and_labels(spec, n_labels, label_dtype,
                                                            label_value, n_classes):
    images = make(*spec)
    labels = torch.full((n_labels,), label_value).to(label_dtype)
    try:
        ds = ImageDataset(images, labels, [f"c{i}" for i in range(n_classes)], "fuzz")
    except (ValueError, TypeError) as err:
        assert names_the_problem(err, "images", "labels", "label"), err
        return
    # Accepted: everything the contract promises holds.
    assert ds.images.dim() == 4 and ds.images.dtype == torch.float32
    assert bool(torch.isfinite(ds.images).all())
    assert ds.images.numel() == 0 or 0 <= float(ds.images.min()) <= float(ds.images.max()) <= 1
    assert len(ds.labels) == len(ds.images) and ds.labels.dtype == torch.int64
    assert all(-1 <= int(v) < n_classes for v in ds.labels)


@given(st.text(min_size=0, max_size=12))
def test_unknown_data_set_names_list_the_valid_ones(name):
    if name in data.available():
        return
    with pytest.raises((ValueError, MinisslError)) as err:
        data.load(name, "train", n=4)
    assert "shapes" in str(err.value), err.value


# ---------------------------------------------------------------------- augmentations


AUGMENTS = {
    "simclr": lambda: augment.SimCLRAugment(8),
    "mocov2": lambda: augment.MoCoV2Augment(8),
    "crop": lambda: augment.RandomResizedCrop(8),
    "flip": lambda: augment.RandomHorizontalFlip(),
    "jitter": lambda: augment.ColorJitter(0.4, 0.4, 0.4, 0.1),
    "gray": lambda: augment.RandomGrayscale(0.5),
    "blur": lambda: augment.GaussianBlur(3),
    "solarize": lambda: augment.Solarize(),
}


@settings(max_examples=60)
@given(st.sampled_from(sorted(AUGMENTS)), tensors)
def test_augmentations_give_images_in_range_or_a_clear_error(name, spec):
    shape, dtype, values = spec
    x = make(shape, dtype, values)
    torch.manual_seed(0)
    try:
        out = AUGMENTS[name]()(x)
    except (ValueError, TypeError) as err:
        assert names_the_problem(err, "image", "shape", "dtype", "float", "channel", "batch",
                                 "size"), err
        return
    assert isinstance(out, torch.Tensor) and out.dim() == x.dim() and len(out) == len(x)
    assert out.is_floating_point()
    if values in ("unit", "zeros") and out.numel():  # images in [0, 1] stay in [0, 1]
        assert bool(torch.isfinite(out).all())
        assert -1e-5 <= float(out.min()) and float(out.max()) <= 1 + 1e-5


# -------------------------------------------------------------------------- methods


VOCAB, MAX_LEN = 30, 12  # of the BERT and GPT below


def other_methods(ds):
    """The methods recipes.build does not make: baselines, text, signals and a GAN."""
    from minissl.methods import BERT, CPC, GAN, GPT, PseudoLabel, Supervised, TimeContrastive
    from minissl.methods.gan import Discriminator, Generator
    from minissl.methods.setting import Setting, build_method
    from minissl.methods.tcl import WindowEncoder
    from minissl.nn import ConvNet

    setting = Setting(ds, batch_size=8, width=4)
    labelled = ds.images[:6], torch.tensor([0, 1, 2, 0, 1, 2])
    return {
        "supervised": build_method(Supervised, ConvNet(3, width=4), setting, num_classes=3),
        "pseudolabel": build_method(PseudoLabel, ConvNet(3, width=4), setting, num_classes=3,
                                    labeled_images=labelled[0], labeled_labels=labelled[1],
                                    ramp_up=0.0),
        "gan": GAN(Generator(16, channels=3, z_dim=4, num_classes=3, width=16),
                   Discriminator(16, channels=3, num_classes=3, width=8), rotation=True),
        "bert": BERT(vocab_size=VOCAB, dim=16, depth=1, heads=2, max_len=MAX_LEN),
        "gpt": GPT(vocab_size=VOCAB, dim=16, depth=1, heads=2, max_len=MAX_LEN),
        "cpc": CPC(prediction_steps=2, width=8, context_dim=8, strides=(4, 2)),
        "timecontrastive": build_method(TimeContrastive, WindowEncoder(2, 4, hidden=8, dim=6),
                                        setting, window=4, proj_dim=3),
    }


@pytest.fixture(scope="module")
def methods():
    torch.manual_seed(0)
    ds = data.load("shapes", "train", n=16, size=16)
    built = {name: recipes.build(name, ds, width=4, epochs=1, batch_size=8)[0]
             for name in recipes.available()}
    built.update(other_methods(ds))
    return {name: (m, copy.deepcopy(m.state_dict())) for name, m in built.items()}


def fresh(methods, name):
    """The method as built: a queue or an EMA target filled by an earlier example is reset."""
    method, state = methods[name]
    method.load_state_dict(state)
    return method.cpu().train()


def zeros(n):
    return torch.zeros(n, dtype=torch.long)


# What each kind of batch is, by the kind of input a method takes. Each kind says what must
# come of it: "finite" (a finite loss), "refuse" (a clear error), "either" (one of the two),
# or "nan" (a clear error, or any loss: NaN in, NaN out, and fit stops on it naming the data).
IMAGE_BATCHES = {
    "flat": ("refuse", lambda: (torch.rand(8), zeros(8))),
    "no_channels": ("refuse", lambda: (torch.rand(4, 16, 16), zeros(4))),
    "one_channel": ("either", lambda: (torch.rand(4, 1, 16, 16), zeros(4))),
    "nan": ("nan", lambda: (torch.full((4, 3, 16, 16), float("nan")), zeros(4))),
    "good": ("finite", lambda: (torch.rand(4, 3, 16, 16), zeros(4))),
    "uint8": ("refuse", lambda: (torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8),
                                 zeros(4))),
    "float64": ("refuse", lambda: (torch.rand(4, 3, 16, 16, dtype=torch.float64), zeros(4))),
    "empty": ("refuse", lambda: (torch.rand(0, 3, 16, 16), zeros(0))),
    # 0..255 pixels and tiny images are refused where data enters (ImageDataset, fit); a
    # method may train on them.
    "tiny_images": ("either", lambda: (torch.rand(4, 3, 4, 4), zeros(4))),
    "pixels_0_255": ("either", lambda: (torch.rand(4, 3, 16, 16) * 255, zeros(4))),
}
# Labels matter only to the methods that learn from them; the others must ignore them.
LABEL_BATCHES = {
    "label_out_of_range": lambda: (torch.rand(4, 3, 16, 16), torch.tensor([0, 1, 7, 2])),
    "label_unlabelled": lambda: (torch.rand(4, 3, 16, 16), torch.full((4,), -1)),
    "label_float": lambda: (torch.rand(4, 3, 16, 16), torch.zeros(4)),
    "label_one_short": lambda: (torch.rand(4, 3, 16, 16), zeros(3)),
    "images_alone": lambda: torch.rand(4, 3, 16, 16),
}
USES_LABELS = {"supervised", "gan"}
TOKEN_BATCHES = {
    "good": ("finite", lambda: (torch.randint(5, VOCAB, (4, MAX_LEN)), None)),
    "flat": ("refuse", lambda: (torch.randint(5, VOCAB, (MAX_LEN,)), None)),
    "float": ("refuse", lambda: (torch.rand(4, MAX_LEN) * VOCAB, None)),
    "bool": ("refuse", lambda: (torch.rand(4, MAX_LEN) > 0.5, None)),
    "images": ("refuse", lambda: (torch.rand(4, 3, 16, 16), None)),
    "empty": ("refuse", lambda: (zeros(0).view(0, MAX_LEN), None)),
    "no_tokens": ("refuse", lambda: (zeros(0).view(4, 0), None)),
    "one_token": ("either", lambda: (torch.randint(5, VOCAB, (4, 1)), None)),  # GPT: < 2
    "out_of_vocab": ("refuse", lambda: (torch.full((4, MAX_LEN), VOCAB + 5), None)),
    "negative": ("refuse", lambda: (torch.full((4, MAX_LEN), -3), None)),
    "too_long": ("refuse", lambda: (torch.randint(5, VOCAB, (4, 4 * MAX_LEN)), None)),
    "only_padding": ("refuse", lambda: (zeros(4 * MAX_LEN).view(4, MAX_LEN), None)),
}
SIGNAL_BATCHES = {  # for signals of c channels
    "good": ("finite", lambda c: torch.randn(3, c, 64)),
    "one_signal": ("finite", lambda c: torch.randn(1, c, 64)),
    "flat": ("refuse", lambda c: torch.randn(64)),
    "no_channels": ("refuse", lambda c: torch.randn(3, 64)),
    "images": ("refuse", lambda c: torch.rand(3, c, 16, 16)),
    "wrong_channels": ("refuse", lambda c: torch.randn(3, c + 2, 64)),
    "int": ("refuse", lambda c: torch.randint(0, 5, (3, c, 64))),
    "float64": ("refuse", lambda c: torch.randn(3, c, 64, dtype=torch.float64)),
    "nan": ("nan", lambda c: torch.full((3, c, 64), float("nan"))),
    "empty": ("refuse", lambda c: torch.zeros(0, c, 64)),
    "too_short": ("refuse", lambda c: torch.randn(3, c, 3)),
}
SIGNAL_CHANNELS = {"cpc": 1, "timecontrastive": 2}
IMAGE_METHODS = sorted([*recipes.available(), "supervised", "pseudolabel", "gan"])


def batch_of(name, kind):
    """(what must come of it, the batch) of this kind for the method called ``name``."""
    if name in SIGNAL_CHANNELS:
        expect, make = SIGNAL_BATCHES[kind]
        return expect, (make(SIGNAL_CHANNELS[name]), None)
    if name in ("bert", "gpt"):
        expect, make = TOKEN_BATCHES[kind]
        return expect, make()
    if kind in LABEL_BATCHES:
        return "refuse" if name in USES_LABELS else "finite", LABEL_BATCHES[kind]()
    expect, make = IMAGE_BATCHES[kind]
    return expect, make()


STEP_CASES = sorted([(m, k) for m in IMAGE_METHODS for k in [*IMAGE_BATCHES, *LABEL_BATCHES]]
                    + [(m, k) for m in ("bert", "gpt") for k in TOKEN_BATCHES]
                    + [(m, k) for m in SIGNAL_CHANNELS for k in SIGNAL_BATCHES])
WORDS = ("image", "shape", "channel", "batch", "dtype", "float", "size", "input", "at least",
         "gap", "label", "token", "signal", "series", "multiple", "max_len")


def training_steps(method, batch):
    """``training_step`` of every phase of the method (a GAN has two)."""
    phases = list(method.optimizers()) if hasattr(method, "optimizers") else [None]
    return [method.training_step(batch) if phase is None else
            method.training_step(batch, phase=phase) for phase in phases]


def check_step(method, batch, expect):
    try:
        outs = training_steps(method, batch)
    except (ValueError, TypeError, MinisslError) as err:
        assert expect != "finite", err
        assert names_the_problem(err, *WORDS), err
        return
    assert expect != "refuse", "a bad batch was accepted"
    for out in outs:
        loss = out["loss"]
        assert isinstance(loss, torch.Tensor) and loss.dim() == 0
        assert expect == "nan" or math.isfinite(loss.item()), f"loss {loss.item()}"


@pytest.mark.parametrize("case", STEP_CASES, ids="-".join)
def test_every_methods_training_step_ends_in_a_clear_error_or_a_finite_loss(methods, case):
    name, kind = case
    expect, batch = batch_of(name, kind)
    torch.manual_seed(0)
    check_step(fresh(methods, name), batch, expect)


# fit checks what every batch must be, and each method what its own input must be: every bad
# kind of input is refused, except tiny images (a method may take them) and one token (BERT
# learns from it).
FIT_CASES = sorted(
    [(m, k) for m in IMAGE_METHODS for k in ("flat", "no_channels", "one_channel", "nan",
                                             "uint8", "float64", "tiny_images", "pixels_0_255")]
    + [(m, k) for m in ("bert", "gpt") for k in TOKEN_BATCHES if k not in ("good", "empty")]
    + [(m, k) for m in SIGNAL_CHANNELS for k in SIGNAL_BATCHES
       if k not in ("good", "one_signal", "empty")])
FIT_MAY_TRAIN = {"tiny_images", "one_token"}
# Methods whose training_step draws from their own copy of the data set and ignores the batch
# (but for its size and device).
IGNORES_BATCH = {"deepcluster"}


@pytest.mark.parametrize("case", FIT_CASES, ids="-".join)
def test_fit_refuses_every_bad_batch(methods, case):
    name, kind = case
    x, labels = batch_of(name, kind)[1]
    x = torch.cat([x] * 2)
    # Methods that learn from labels get good ones, so that the inputs are what is wrong.
    dataset = (x, zeros(len(x))) if name in USES_LABELS else x
    method = fresh(methods, name)
    try:
        T.fit(method, dataset, max_steps=1, batch_size=len(x), progress=False)
    except (ValueError, TypeError, MinisslError) as err:
        assert isinstance(err, TrainingDiverged) or names_the_problem(
            err, *WORDS, "data", "nan"), err
    else:
        assert kind in FIT_MAY_TRAIN or name in IGNORES_BATCH, f"{kind} trained silently"
    finally:
        fresh(methods, name)


# ---------------------------------------------------------------------------- losses


@given(st.tuples(st.integers(0, 4), st.integers(0, 5)), st.tuples(st.integers(0, 4),
       st.integers(0, 5)), st.sampled_from([torch.float32, torch.int64]),
       st.sampled_from([0.5, 0.0, -1.0, float("nan"), float("inf")]))
def test_losses_check_their_arguments(shape1, shape2, dtype, temperature):
    z1, z2 = make(shape1, dtype, "normal"), make(shape2, dtype, "normal", seed=1)
    queue = torch.randn(6, max(shape1[1], 1))
    # (name, the loss as a scalar, the fewest examples, the fewest features, takes tau)
    for name, loss, min_n, min_d, tau in (
            ("nt_xent", lambda: nt_xent(z1, z2, temperature), 2, 0, True),
            ("info_nce", lambda: info_nce(z1, z2, queue, temperature), 1, 0, True),
            ("swav_loss", lambda: swav_loss([z1, z2], [z2], temperature), 1, 1, True),
            ("gaussian_kl", lambda: gaussian_kl(z1, z2).sum(), 1, 1, False),
            ("vae_elbo", lambda: vae_elbo(z1[:, None, None], z2[:, None, None], z1, z2)["loss"],
             1, 1, False),
            ("masked_patch_mse", lambda: masked_patch_mse(z1[:, None], z2[:, None],
                                                          torch.ones(len(z1), 1)), 1, 1, False)):
        try:
            value = loss()
        except (ValueError, TypeError) as err:
            assert names_the_problem(err, "z1", "z2", "q", "k", "queue", "temperature",
                                     "shape", "dtype", "empty", name, "scores_per_view",
                                     "codes_per_view"), err
            continue
        assert value.dim() == 0 and math.isfinite(float(value)), (name, float(value))
        # Only well-formed arguments get a number.
        assert shape1 == shape2 and shape1[0] >= min_n and shape1[1] >= min_d, name
        assert dtype == torch.float32 and (temperature == 0.5 or not tau), name


# ----------------------------------------------------------------------- fit, config

CONFIG_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-3, 300),
                          st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5),
                          st.just([1]), st.just(object()))


@settings(max_examples=120)
@given(st.sampled_from([f for f in TrainConfig.__dataclass_fields__]), CONFIG_VALUES)
def test_train_config_fields_are_checked(field, value):
    try:
        TrainConfig(**{field: value})
    except (ValueError, TypeError) as err:
        assert f"TrainConfig.{field}" in str(err), err
        return
    # Accepted values are ones fit can use; the choices are checked by fit itself.
    if field in ("optimizer", "schedule", "precision") and value not in (
            "adamw", "adam", "sgd", "cosine", "constant", "auto", "fp32", "bf16", "fp16"):
        with pytest.raises(ValueError, match=f"unknown {field}"):
            T.fit(Tiny(), torch.randn(8, 2), TrainConfig(**{field: value}), batch_size=4,
                  max_steps=1, progress=False)


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Linear(2, 1)

    def training_step(self, batch):
        x = batch[0]
        if x.dim() != 2 or x.shape[1] != 2:  # a method checks its own input's shape
            raise ValueError(f"Tiny takes inputs of shape (N, 2); got {tuple(x.shape)}")
        return {"loss": self.w(x.float()).pow(2).mean()}


@given(st.one_of(tensors.map(lambda s: make(*s)), st.just([1, 2, 3]), st.just("data"),
                 st.just({"x": torch.zeros(4, 2)}), st.just(None)),
       st.integers(1, 4))
def test_fit_takes_data_or_names_what_is_wrong(x, batch_size):
    try:
        history = T.fit(Tiny(), x, batch_size=batch_size, max_steps=2, progress=False)
    except (ValueError, TypeError, MinisslError) as err:
        assert names_the_problem(err, "fit() expects", "examples", "nan", "images", "dtype",
                                 "float", "diverged", "became", "shape", "mat", "size"), err
        return
    assert len(history) == 2 and all(math.isfinite(v) for v in history["loss"])


# ------------------------------------------------------------------------ evaluators


@given(st.integers(0, 6), st.integers(1, 4), st.integers(-1, 8),
       st.sampled_from([0.07, 0.0, -1.0, float("nan"), 1e9]), st.booleans())
def test_knn_accuracy_is_a_fraction_or_a_clear_error(n, d, k, temperature, mismatch):
    train = torch.randn(n, d)
    labels = torch.arange(n) % 2
    test = torch.randn(3, d + int(mismatch))
    try:
        acc = ev.knn_accuracy(train, labels, test, torch.tensor([0, 1, 0]), k=k,
                              temperature=temperature)
    except (ValueError, TypeError) as err:
        assert names_the_problem(err, "k ", "k must", "temperature", "feature", "shape",
                                 "train", "test", "label", "empty"), err
        return
    assert 0.0 <= acc <= 1.0
    assert temperature > 0 and k >= 1 and not mismatch and n > 0


@given(st.integers(0, 6), st.integers(0, 4), st.booleans(), st.sampled_from(
    ["good", "nan", "int", "labels_1d_wrong", "labels_float"]))
def test_linear_probe_is_a_fraction_or_a_clear_error(n, d, mismatch, kind):
    train = torch.randn(n, d)
    labels = torch.arange(n) % 2
    if kind == "nan" and train.numel():
        train[0, 0] = float("nan")
    if kind == "int":
        train = train.long()
    if kind == "labels_1d_wrong":
        labels = labels[:-1] if n else torch.zeros(1, dtype=torch.long)
    if kind == "labels_float":
        labels = labels.float()
    test = torch.randn(3, d + int(mismatch))
    try:
        result = ev.linear_probe(train, labels, test, torch.tensor([0, 1, 0]), epochs=5)
    except (ValueError, TypeError) as err:
        assert names_the_problem(err, "feature", "shape", "train", "test", "label", "empty",
                                 "finite", "float", "D="), err
        return
    assert 0.0 <= result.accuracy <= 1.0
    assert n > 0 and d > 0 and not mismatch and kind in ("good", "int")  # ints: converted


@settings(max_examples=12)
@given(st.sampled_from(["good", "flat", "wrong_channels", "empty", "uint8"]),
       st.integers(-1, 3), st.sampled_from([2, 0, -3]))
def test_fine_tune_is_a_fraction_or_a_clear_error(kind, epochs, num_classes):
    from minissl.nn import ConvNet

    torch.manual_seed(0)
    images = {"good": torch.rand(6, 3, 8, 8), "flat": torch.rand(6, 192),
              "wrong_channels": torch.rand(6, 1, 8, 8), "empty": torch.rand(0, 3, 8, 8),
              "uint8": torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8)}[kind]
    labels = torch.arange(len(images)) % 2
    test = (torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 0, 1]))
    try:
        result = ev.fine_tune(ConvNet(3, width=2, depth=1), (images, labels), test,
                              num_classes, epochs=epochs, batch_size=4)
    except (ValueError, TypeError, MinisslError) as err:
        assert names_the_problem(err, "image", "shape", "channel", "epochs", "num_classes",
                                 "empty", "float", "dtype", "class", "label"), err
        return
    assert 0.0 <= result.accuracy <= 1.0
    assert kind == "good" and epochs >= 1 and num_classes >= 2


@given(st.lists(st.integers(-2, 4), max_size=8), st.lists(st.integers(-2, 4), max_size=8))
def test_classification_metrics_are_fractions_or_a_clear_error(y_true, y_pred):
    try:
        m = ev.classification_metrics(y_true, y_pred)
    except (ValueError, TypeError) as err:
        assert names_the_problem(err, "label", "length", "same", "empty", "negative",
                                 "y_true", "y_pred"), err
        return
    assert len(y_true) == len(y_pred) and len(y_true) > 0
    for key in ("accuracy", "precision", "recall", "f1"):
        assert 0.0 <= m[key] <= 1.0, (key, m[key])
    assert m["accuracy"] == sum(a == b for a, b in zip(y_true, y_pred)) / len(y_true)


# ------------------------------------------------------------------------ checkpoints


@pytest.fixture(scope="module")
def good_files(tmp_path_factory):
    """The bytes of a good file of each kind minissl reads back: checkpoint, model, encoder."""
    from minissl import deploy
    from minissl.nn import backbone

    folder = tmp_path_factory.mktemp("good")
    T.fit(Tiny(), torch.randn(8, 2), batch_size=4, epochs=1, checkpoint_dir=folder,
          progress=False)
    spec = deploy.ModelSpec("convnet", {"width": 2}, 3, 8, 2)
    deploy.save_state(deploy.Classifier.from_spec(spec), folder / "model.pt")
    deploy.save_encoder(backbone("convnet", in_channels=3, width=2), folder / "encoder.pt",
                        "convnet", width=2)
    return {"checkpoint": (folder / "last.pt").read_bytes(),
            "model": (folder / "model.pt").read_bytes(),
            "encoder": (folder / "encoder.pt").read_bytes()}


def read_back(kind, folder):
    """Read the file of ``kind`` in ``folder`` as minissl does; the error type it may raise."""
    from minissl import deploy

    if kind == "checkpoint":
        T.fit(Tiny(), torch.randn(8, 2), batch_size=4, epochs=1, checkpoint_dir=folder,
              progress=False)
        return
    getattr(deploy, f"load_{'state' if kind == 'model' else kind}")(folder / f"{kind}.pt")


@pytest.mark.parametrize("kind", ["checkpoint", "model", "encoder"])
@settings(max_examples=40)
@given(damage=st.one_of(st.binary(max_size=300).map(lambda b: ("random", b)),
                        st.floats(0, 0.999).map(lambda f: ("truncated", f)),
                        st.integers(0, 10_000).map(lambda i: ("flipped", i))))
def test_damaged_files_get_a_minissl_error(tmp_path_factory, good_files, kind, damage):
    good = good_files[kind]
    how, arg = damage
    if how == "random":
        blob = arg
    elif how == "truncated":
        blob = good[:int(arg * len(good))]
    else:
        i = arg % len(good)
        blob = good[:i] + bytes([good[i] ^ 0xFF]) + good[i + 1:]
    folder = tmp_path_factory.mktemp("bad")
    name = "last.pt" if kind == "checkpoint" else f"{kind}.pt"
    (folder / name).write_bytes(blob)
    try:
        read_back(kind, folder)
    except MinisslError as err:  # deploy.DeployError is one
        message = str(err)
        assert name in message and "weights_only" not in message, message
        if kind == "encoder" and "corrupt" in message:
            assert "deploy.save_encoder" in message and "save_state" not in message, message
    else:
        # A flipped byte can land in padding or a tensor's values: then it loads.
        assert how == "flipped", f"{how} {kind} file read without an error"


# ---------------------------------------------------------------------- command line


def parse(argv):
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            return make_parser().parse_args(argv), ""
    except SystemExit:
        return None, stderr.getvalue()


@settings(max_examples=60)
@given(st.sampled_from(["--epochs", "--batch-size", "--checkpoint-every", "--lr", "--n-train",
                        "--width", "--warmup-steps", "--eval-every"]),
       st.one_of(st.integers(-5, 5).map(str), st.floats(allow_nan=True).map(str),
                 st.text(alphabet="0123456789.-eaxn ", max_size=5)))
def test_cli_budgets_are_numbers_in_range_or_refused_by_name(option, text):
    args, err = parse(["train", "simclr", f"{option}={text}"])
    if args is None:
        assert f"argument {option}" in err, err
        return
    value = getattr(args, option[2:].replace("-", "_"))
    if option == "--warmup-steps":
        assert isinstance(value, int) and value >= 0
    elif option == "--lr":
        assert math.isfinite(value) and value > 0
    else:
        assert isinstance(value, int) and value >= 1


@settings(max_examples=80)
@given(st.sampled_from(["simclr", "moco", "byol", "jigsaw", "supervised", "vae"]),
       st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=0, max_size=14),
       st.sampled_from(["0.2", "abc", "3", "true", "1.5", "", "none", "-1"]),
       st.booleans())
def test_cli_method_args_are_checked_against_the_method(method, key, value, with_equals):
    cls = method_class(method)
    text = f"{key}={value}" if with_equals else key
    try:
        out = method_args(cls, [text])
    except SystemExit as err:
        message = str(err)
        assert message.startswith("--method-arg"), message
        if with_equals and key and re.search("has no argument", message):
            assert "Its arguments (with defaults)" in message
        return
    import inspect

    params = inspect.signature(cls.__init__).parameters
    assert key in params and set(out) == {key}
    default = params[key].default
    if default is not params[key].empty and default is not None:
        assert isinstance(out[key], type(default)), (key, out[key], default)


def test_the_ci_profile_is_fixed():
    current = settings()
    assert current.derandomize and current.max_examples <= 25 or \
        os.environ.get("HYPOTHESIS_PROFILE") not in (None, "ci")
