"""Nothing silent: a changed run is never resumed, and every bad input gets a clear error."""

import json
import os
import pydoc
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import fields
from pathlib import Path

import pytest
import torch
from torch import nn

import minissl
from minissl import cli, profiles
from minissl import train as T
from minissl.data import ImageDataset
from minissl.train import TrainConfig, TrainingDiverged, TrainingInterrupted, fit
from minissl.utils import MinisslError

ROOT = Path(__file__).resolve().parents[1]
QUIET = dict(progress=False)


class Regress(nn.Module):
    """A tiny method with one constructor argument kept as an attribute."""

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.scale = scale
        self.net = nn.Linear(4, 1)

    def training_step(self, batch):
        x, y = batch
        return {"loss": ((self.net(x).squeeze(1) - y.float()) ** 2).mean() * self.scale}


def data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    return x, (x.sum(1) > 0).long()


def cfg(tmp_path, **kw):
    return TrainConfig(**{"epochs": 2, "batch_size": 16, "checkpoint_dir": tmp_path, **QUIET,
                          **kw})


# ------------------------------------------------------------------ fingerprinted checkpoints


@pytest.mark.parametrize("change, field", [
    ({"batch_size": 32}, "config.batch_size: 16 there, 32 now"),
    ({"lr": 0.01}, "config.lr"),
    ({"epochs": 1}, "config.epochs: 2 there, 1 now"),
    ({"seed": 3}, "config.seed"),
])
def test_a_changed_config_is_refused_naming_the_field(tmp_path, change, field):
    fit(Regress(), data(), cfg(tmp_path))
    with pytest.raises(MinisslError, match=re.escape(field)) as err:
        fit(Regress(), data(), cfg(tmp_path, **change))
    message = str(err.value)
    assert "resume=False" in message and "--fresh" in message and str(tmp_path) in message
    # Starting afresh is one argument away, and then trains at the new settings.
    hist = fit(Regress(), data(), cfg(tmp_path, resume=False, **change))
    assert hist.steps[-1] == T.load_checkpoint(tmp_path / "last.pt")["step"]


def test_changed_data_or_method_arguments_are_refused(tmp_path):
    fit(Regress(), data(), cfg(tmp_path))
    with pytest.raises(MinisslError, match="data.digest"):
        fit(Regress(), data(seed=1), cfg(tmp_path))  # same size, other draw
    with pytest.raises(MinisslError, match="data.size: 64 there, 48 now"):
        fit(Regress(), data(n=48), cfg(tmp_path))
    with pytest.raises(MinisslError, match="method.arguments.scale: 1.0 there, 2.0 now"):
        fit(Regress(scale=2.0), data(), cfg(tmp_path))

    class Other(Regress):
        pass

    with pytest.raises(MinisslError, match="method.name: 'Regress' there, .*Other"):
        fit(Other(), data(), cfg(tmp_path))


class Encoded(nn.Module):
    """A method with an encoder and no plain arguments: only its layers tell two apart."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def training_step(self, batch):
        return {"loss": self.encoder(batch[0]).pow(2).mean()}


def encoded(name="convnet", width=4):
    from minissl.nn import backbone

    torch.manual_seed(0)
    return Encoded(backbone(name, in_channels=3, width=width))


IMAGES = torch.rand(16, 3, 16, 16, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name, width, text", [
    ("convnet", 8, "method.layers: differ (encoder.features.0.0.weight: (2, 3, 3, 3) there, "
                   "(4, 3, 3, 3) now; "),
    ("resnet18", 4, "method.encoder: 'ConvNet' there, 'ResNet18' now; method.layers: differ "
                    "(encoder.stem.0.weight: none there, (4, 3, 3, 3) now; "),
])
def test_another_encoder_is_refused_naming_its_first_other_layer(tmp_path, name, width, text):
    fit(encoded(), IMAGES, cfg(tmp_path, epochs=1, batch_size=8))
    before = (tmp_path / "last.pt").read_bytes()
    for check in (T.check_checkpoint, fit):
        with pytest.raises(MinisslError) as err:
            check(encoded(name, width), IMAGES, cfg(tmp_path, epochs=1, batch_size=8))
        message = str(err.value)
        assert text in message and "tensors differ)" in message, message
        assert "method.arguments" not in message and len(message) < 600, message
    assert (tmp_path / "last.pt").read_bytes() == before
    fit(encoded(name, width), IMAGES, cfg(tmp_path, epochs=1, batch_size=8, resume=False))


def test_a_checkpoint_without_layers_resumes_and_a_misfit_names_few_keys(tmp_path, capsys):
    class Stop(Exception):
        pass

    first = encoded()
    first.on_after_step = lambda step, total: (_ for _ in ()).throw(Stop) if step == 2 else None
    with pytest.raises(Stop):
        fit(first, IMAGES, cfg(tmp_path, batch_size=8, checkpoint_every=1))

    def as_written_before_layers_were_recorded():
        state = torch.load(tmp_path / "last.pt", weights_only=True)
        for key in ("layers", "encoder"):
            del state["fingerprint"]["method"][key]
        torch.save(state, tmp_path / "last.pt")

    as_written_before_layers_were_recorded()
    capsys.readouterr()
    fit(encoded(), IMAGES, cfg(tmp_path, batch_size=8))
    assert capsys.readouterr().out.startswith("resuming from ")
    # Then another encoder gets past the fingerprint, and load_state_dict fails: the message
    # names five keys of each kind and counts the rest, not the hundreds torch lists.
    as_written_before_layers_were_recorded()
    with pytest.raises(MinisslError) as err:
        fit(encoded("resnet18"), IMAGES, cfg(tmp_path, batch_size=8))
    message = str(err.value)
    assert "does not fit this method/optimizer (missing encoder.stem.0.weight, " in message
    assert re.search(r"and \d+ more; unexpected encoder\.features\.0\.0\.weight, ", message)
    assert message.count("encoder.") == 10 and "\n" not in message, message


def test_the_same_run_resumes_and_says_so_on_one_line(tmp_path, capsys):
    class Stop(Exception):
        pass

    first = Regress()
    first.on_after_step = lambda step, total: (_ for _ in ()).throw(Stop) if step == 5 else None
    with pytest.raises(Stop):
        fit(first, data(), cfg(tmp_path, checkpoint_every=2))
    capsys.readouterr()
    fit(Regress(), data(), cfg(tmp_path, checkpoint_every=2))
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [f"resuming from {tmp_path / 'last.pt'} at step 4 of 8"]
    fit(Regress(), data(), cfg(tmp_path, checkpoint_every=2))
    assert "complete (step 8 of 8): nothing left to train; resume=False (--fresh on the " \
        "command line) trains it again" in capsys.readouterr().out
    # What may change between resumes: the device, logging, progress, checkpoint cadence.
    fit(Regress(), data(), cfg(tmp_path, checkpoint_every=3, log_every=2, desc="x",
                               device="cpu"))


def test_a_checkpoint_without_a_fingerprint_resumes_with_a_warning(tmp_path, capsys):
    fit(Regress(), data(), cfg(tmp_path, epochs=1))
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    del state["fingerprint"]  # as an older minissl wrote it
    torch.save(state, tmp_path / "last.pt")
    capsys.readouterr()
    hist = fit(Regress(), data(), cfg(tmp_path, epochs=2))
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("warning:") and "resuming at step 4" in out[0]
    assert hist.steps[-1] == 8


def test_check_checkpoint_does_what_fit_checks_first(tmp_path):
    assert T.check_checkpoint(Regress(), data(), cfg(tmp_path)) is None
    fit(Regress(), data(), cfg(tmp_path))
    assert T.check_checkpoint(Regress(), data(), cfg(tmp_path)) == 8
    assert T.check_checkpoint(Regress(), data(), cfg(tmp_path, resume=False)) is None
    with pytest.raises(MinisslError, match="does not fit"):
        T.check_checkpoint(Regress(), data(), cfg(tmp_path, lr=0.5))


# ------------------------------------------------------------------------------- budgets


@pytest.mark.parametrize("kw, error, text", [
    ({"epochs": 0}, ValueError, "TrainConfig.epochs must be a whole number >= 1; got 0"),
    ({"epochs": -2}, ValueError, "TrainConfig.epochs"),
    ({"epochs": "2"}, TypeError, "TrainConfig.epochs must be a whole number >= 1; got '2'"),
    ({"epochs": 2.5}, TypeError, "TrainConfig.epochs"),
    ({"max_steps": 0}, ValueError, "TrainConfig.max_steps"),
    ({"batch_size": "32"}, TypeError, "TrainConfig.batch_size"),
    ({"lr": float("nan")}, ValueError, "TrainConfig.lr"),
    ({"lr": -1e-3}, ValueError, "TrainConfig.lr"),
    ({"grad_clip": 0}, ValueError, "TrainConfig.grad_clip"),
    ({"min_lr_ratio": 2}, ValueError, "TrainConfig.min_lr_ratio"),
    ({"warmup_steps": -1}, ValueError, "TrainConfig.warmup_steps"),
    ({"checkpoint_every": 0}, ValueError, "TrainConfig.checkpoint_every"),
    ({"callback": 3}, TypeError, "TrainConfig.callback"),
    ({"optimizer": None}, TypeError, "TrainConfig.optimizer"),
])
def test_bad_budgets_fail_where_the_config_is_made(kw, error, text):
    with pytest.raises(error, match=re.escape(text)):
        TrainConfig(**kw)
    with pytest.raises(error, match=re.escape(text)):
        fit(Regress(), data(), **QUIET, **kw)


def test_epochs_zero_is_fine_when_max_steps_decides():
    assert len(fit(Regress(), data(), epochs=0, max_steps=3, batch_size=16, **QUIET)) == 3


# --------------------------------------------------------------------- checkpoint files


def test_empty_random_and_foreign_checkpoints_get_clear_errors(tmp_path):
    path = tmp_path / "last.pt"
    path.write_bytes(b"")
    with pytest.raises(MinisslError, match=r"is corrupt: the file is empty \(0 bytes\)"):
        fit(Regress(), data(), cfg(tmp_path))
    path.write_bytes(os.urandom(2000))
    with pytest.raises(MinisslError, match="corrupt.*Delete it") as err:
        fit(Regress(), data(), cfg(tmp_path))
    assert "weights_only" not in str(err.value)
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(MinisslError, match=r"not a checkpoint of minissl.train.fit \(no \["):
        fit(Regress(), data(), cfg(tmp_path))
    torch.save([1, 2], path)
    with pytest.raises(MinisslError, match="holds a list"):
        fit(Regress(), data(), cfg(tmp_path))
    with pytest.raises(MinisslError, match="is a folder"):
        T.load_checkpoint(tmp_path)


def test_unwritable_checkpoint_folders_are_named_before_training(tmp_path, monkeypatch):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(MinisslError, match="is a file, not a folder"):
        fit(Regress(), data(), cfg(a_file))

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", refuse)  # where checkpoints are written
    with pytest.raises(MinisslError, match=r"cannot write checkpoints to .*ro \(Permission denied"):
        fit(Regress(), data(), cfg(tmp_path / "ro"))


def test_a_failed_write_names_the_path_and_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    fit(Regress(), data(), cfg(tmp_path, epochs=1))
    before = (tmp_path / "last.pt").read_bytes()

    def broken(obj, f, *args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 64")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(MinisslError, match=r"cannot write the checkpoint .*last\.pt"):
        fit(Regress(), data(), cfg(tmp_path, epochs=1, resume=False))
    assert (tmp_path / "last.pt").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left


# --------------------------------------------------------------------- data and NaN/inf


def test_images_out_of_range_or_not_finite_are_refused_where_data_enters():
    y = torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match=r"\[0, 1\]; got values from 0 to 255.*divide by 255"):
        ImageDataset(torch.linspace(0, 255, 4 * 3 * 16).reshape(4, 3, 4, 4), y, ["a"], "x")
    x = torch.rand(4, 3, 4, 4)
    x[2, 0, 1, 1] = float("nan")
    with pytest.raises(ValueError, match="1 image.*NaN or infinite.*image 2"):
        ImageDataset(x, y, ["a"], "x")
    with pytest.raises(ValueError, match=r"NaN or infinite values: 4 of 256 in batch\[0\]"):
        fit(Regress(), (torch.where(torch.arange(64)[:, None] == 3, float("nan"),
                                    data()[0]), data()[1]), epochs=1, batch_size=64, **QUIET)
    pixels = torch.rand(16, 3, 4, 4) * 255

    class Images(Regress):
        def training_step(self, batch):
            return {"loss": self.net(batch[0].mean((1, 2))[:, :4]).mean()}

    with pytest.raises(ValueError, match="values up to .* images / 255"):
        fit(Images(), pixels, epochs=1, batch_size=8, **QUIET)


def test_a_nan_at_the_first_step_names_the_data_not_the_lr(tmp_path):
    class NaNFirst(Regress):
        def training_step(self, batch):
            return {"loss": super().training_step(batch)["loss"] * float("nan")}

    with pytest.raises(TrainingDiverged, match="became nan at step 0") as err:
        fit(NaNFirst(), data(), cfg(tmp_path))
    message = str(err.value)
    assert "first step" in message and "learning rate is not the cause" in message
    assert "set checkpoint_dir" not in message and "no checkpoint was written yet" in message


def test_an_infinite_loss_is_reported_as_inf():
    class Inf(Regress):
        def training_step(self, batch):
            return {"loss": super().training_step(batch)["loss"] + float("inf")}

    with pytest.raises(TrainingDiverged, match=r"became \+inf at step 0"):
        fit(Inf(), data(), epochs=1, batch_size=16, **QUIET)


def test_an_interrupt_says_where_the_checkpoint_is(tmp_path):
    method = Regress()

    def stop(step, total):
        if step == 3:
            raise KeyboardInterrupt

    method.on_after_step = stop
    with pytest.raises(TrainingInterrupted) as err:
        fit(method, data(), cfg(tmp_path, checkpoint_every=2))
    assert isinstance(err.value, KeyboardInterrupt)
    assert err.value.saved_step == 2 and err.value.checkpoint == tmp_path / "last.pt"
    assert "stopped at step 3 of 8" in str(err.value) and "(step 2)" in str(err.value)
    method.on_after_step = stop
    with pytest.raises(TrainingInterrupted, match="set checkpoint_dir"):
        fit(method, data(), epochs=1, batch_size=16, **QUIET)


# ------------------------------------------------------------------- methods, evaluation


def test_simclr_refuses_a_batch_of_one_and_flat_input():
    from minissl.methods import SimCLR
    from minissl.nn import ConvNet

    enc = ConvNet(in_channels=3, width=4)
    method = SimCLR(enc)
    with pytest.raises(ValueError, match="at least 2 images per batch.*got 1"):
        method.training_step((torch.rand(1, 3, 8, 8), None))
    with pytest.raises(ValueError, match=r"shape \(N, C, H, W\); got images of shape \(8,\)"):
        method.training_step((torch.rand(8), None))
    with pytest.raises(ValueError, match="at least 2 images"):
        fit(method, torch.rand(8, 3, 8, 8), epochs=1, batch_size=1, **QUIET)


def supervised(num_classes=3):
    from minissl.methods import Supervised
    from minissl.nn import ConvNet

    torch.manual_seed(0)
    encoder = ConvNet(in_channels=3, width=4)
    return Supervised(encoder, num_classes=num_classes)


@pytest.mark.parametrize("images, labels, error, text", [
    (torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8), torch.zeros(4, dtype=torch.long),
     TypeError, "Supervised.training_step takes float images in [0, 1]; got dtype torch.uint8 "
                "(convert 0..255 pixels with images.float() / 255)"),
    (torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 7, 2]), ValueError,
     "Supervised.training_step got label 7, but the model has 3 classes: every label must lie "
     "in [0, 3) (1 of 4 do not). Number the classes 0 .. 2, or build the model with more "
     "classes"),
    (torch.rand(4, 3, 8, 8), torch.full((4,), -1), ValueError,
     "(4 of 4 do not); -1 marks an unlabelled example, and this method learns from labelled "
     "ones only."),
    (torch.rand(0, 3, 8, 8), torch.zeros(0, dtype=torch.long), ValueError,
     "Supervised.training_step got a batch of 0 images; give it at least one image"),
    (torch.rand(4, 3, 8, 8), torch.zeros(4), TypeError,
     "Supervised.training_step takes integer class labels 0 .. 2; got dtype torch.float32 "
     "(convert them with labels.long())"),
    (torch.rand(4, 3, 8, 8), torch.zeros(3, dtype=torch.long), ValueError,
     "Supervised.training_step takes one label per image, labels of shape (4,); got labels of "
     "shape (3,)"),
])
def test_supervised_checks_its_images_and_labels(images, labels, error, text):
    with pytest.raises(error, match=re.escape(text)):
        supervised().training_step((images, labels))
    if len(images) == len(labels) > 0 and images.is_floating_point():  # through fit as well
        with pytest.raises(error, match=re.escape(text)):
            fit(supervised(), (images, labels), max_steps=1, batch_size=4, **QUIET)


def test_supervised_trains_on_int32_labels_and_refuses_images_alone():
    out = supervised().training_step((torch.rand(4, 3, 8, 8),
                                      torch.tensor([0, 1, 2, 1], dtype=torch.int32)))
    assert torch.isfinite(out["loss"]) and 0 <= float(out["acc"]) <= 1
    with pytest.raises(ValueError, match="one class label per image.*got no labels"):
        supervised().training_step(torch.rand(4, 3, 8, 8))


@pytest.mark.parametrize("loss, text", [
    ("vae_elbo", "vae_elbo: x is empty (shape (0, 1, 4, 4))"),
    ("masked_patch_mse", "masked_patch_mse: pred is empty (shape (0, 4, 6))"),
    ("gaussian_kl", "gaussian_kl: mu is empty (shape (0, 3))"),
    ("swav_loss", "scores_per_view[0] is empty (shape (0, 5)); swav_loss needs a batch"),
])
def test_losses_refuse_an_empty_batch_instead_of_returning_nan(loss, text):
    from minissl import losses

    empty = torch.zeros(0, 3)
    args = {"vae_elbo": (torch.zeros(0, 1, 4, 4), torch.zeros(0, 1, 4, 4), empty, empty),
            "masked_patch_mse": (torch.zeros(0, 4, 6), torch.zeros(0, 4, 6), torch.zeros(0, 4)),
            "gaussian_kl": (empty, empty),
            "swav_loss": ([torch.zeros(0, 5)] * 2, [torch.zeros(0, 5)])}[loss]
    with pytest.raises(ValueError, match=re.escape(text)):
        getattr(losses, loss)(*args)


@pytest.mark.parametrize("temperature", [0, -0.1, float("nan"), float("inf"), "0.07"])
def test_knn_accuracy_refuses_a_temperature_that_is_not_positive(temperature):
    from minissl.evaluate import knn_accuracy

    f = torch.eye(4)
    with pytest.raises(ValueError, match="temperature must be a number > 0"):
        knn_accuracy(f, torch.arange(4), f, torch.arange(4), k=1, temperature=temperature)


# -------------------------------------------------------------------- the command line

TINY = ["--dataset", "shapes", "--n-train", "64", "--eval-n", "32", "--epochs", "1",
        "--batch-size", "32", "--width", "4", "--no-progress"]


@pytest.fixture(autouse=True)
def quick():
    profiles.use("quick")


@pytest.mark.parametrize("args, text", [
    (["--epochs", "0"], "argument --epochs: expected a whole number >= 1, got '0'"),
    (["--epochs", "-3"], "argument --epochs: expected a whole number >= 1, got '-3'"),
    (["--batch-size", "0"], "argument --batch-size: expected a whole number >= 1"),
    (["--lr", "nan"], "argument --lr: expected a number > 0"),
    (["--checkpoint-every", "0"], "argument --checkpoint-every: expected a whole number >= 1"),
])
def test_cli_refuses_non_positive_budgets(args, text, capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "simclr", *TINY, *args])
    assert text in capsys.readouterr().err


@pytest.mark.parametrize("arg, text", [
    ("tempreature=0.2", "SimCLR has no argument 'tempreature'. Did you mean 'temperature'? "
                        "Its arguments (with defaults): proj_dim=128"),
    ("temperature=abc", "SimCLR's temperature takes a number (default 0.5); got 'abc'"),
    ("proj_dim=1.5", "SimCLR's proj_dim takes a whole number (default 128); got 1.5"),
    ("temperature", "--method-arg expects KEY=VALUE"),
    ("=3", "--method-arg expects KEY=VALUE"),
])
def test_cli_method_args_are_checked_with_suggestions(arg, text):
    with pytest.raises(SystemExit, match=re.escape(text)):
        cli.main(["train", "simclr", *TINY, "--method-arg", arg])


def test_cli_method_arg_int_for_a_float_is_accepted():
    from minissl.cli.args import method_args, method_class

    assert method_args(method_class("simclr"), ["temperature=1"]) == {"temperature": 1.0}


def test_cli_refused_runs_write_nothing_and_fresh_starts_again(tmp_path, capsys, monkeypatch):
    args = ["train", "rotation_prediction", *TINY, "--checkpoint-dir", str(tmp_path)]
    saved = []
    real_save = T.save_checkpoint

    def record(path, **state):
        saved.append(state["step"])
        real_save(path, **state)

    monkeypatch.setattr(T.loop, "save_checkpoint", record)  # what fit's loop calls
    assert cli.main([*args, "--checkpoint-every", "1"]) == 0
    assert saved == [1, 2]  # 64 images, batch 32: two steps, a checkpoint after each
    run = (tmp_path / "run.json").read_text()
    last = (tmp_path / "last.pt").read_bytes()
    with pytest.raises(MinisslError, match="does not fit.*method.name: 'RotationPrediction' "
                                           "there, 'BYOL' now"):
        cli.main(["train", "byol", *TINY, "--checkpoint-dir", str(tmp_path)])
    with pytest.raises(MinisslError, match="config.batch_size: 32 there, 16 now.*--fresh"):
        cli.main([*args, "--batch-size", "16"])
    assert (tmp_path / "run.json").read_text() == run  # untouched: evaluate still reads it
    assert (tmp_path / "last.pt").read_bytes() == last
    capsys.readouterr()
    assert cli.main([*args, "--batch-size", "16", "--fresh"]) == 0
    assert json.loads((tmp_path / "run.json").read_text())["method"] == "RotationPrediction"
    assert T.load_checkpoint(tmp_path / "last.pt")["step"] == 4
    a_file = tmp_path / "run.json"
    with pytest.raises(MinisslError, match="is a file, not a folder"):
        cli.main(["train", "rotation_prediction", *TINY, "--checkpoint-dir", str(a_file)])


def test_cli_refuses_another_backbone_before_writing_and_fresh_replaces_the_old_run(tmp_path):
    args = ["train", "simclr", *TINY, "--checkpoint-dir", str(tmp_path)]
    assert cli.main(args) == 0
    run, last = (tmp_path / "run.json").read_text(), (tmp_path / "last.pt").read_bytes()
    # The same feature size, other layers: refused before run.json is rewritten.
    with pytest.raises(MinisslError, match="method.encoder: 'ConvNet' there, 'ResNet18' now"):
        cli.main([*args, "--backbone", "resnet18"])
    assert (tmp_path / "run.json").read_text() == run
    assert (tmp_path / "last.pt").read_bytes() == last
    # --fresh with another method: the old weights go with the old run.json, even when the
    # new run stops before its first checkpoint.
    calls = []

    def stop_at_once(*a, **k):
        calls.append(1)
        raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as mp:  # `train` imports fit when it runs
        mp.setattr(T, "fit", stop_at_once)
        with pytest.raises(KeyboardInterrupt):
            cli.main(["train", "rotation_prediction", *TINY, "--checkpoint-dir", str(tmp_path),
                      "--fresh"])
    assert calls
    assert json.loads((tmp_path / "run.json").read_text())["method"] == "RotationPrediction"
    assert not (tmp_path / "last.pt").exists()


def test_a_stop_before_training_names_an_existing_checkpoint(tmp_path):
    (tmp_path / "last.pt").write_bytes(b"")
    argv = ["train", "simclr", "--checkpoint-dir", str(tmp_path)]
    line = cli._interrupted(KeyboardInterrupt(), argv)
    assert line == (f"stopped before training began; the checkpoint {tmp_path / 'last.pt'} is "
                    f"unchanged; resume with: python -m minissl train simclr --checkpoint-dir "
                    f"{tmp_path}")
    line = cli._interrupted(KeyboardInterrupt(), ["train", "simclr",
                                                  f"--checkpoint-dir={tmp_path / 'none'}"])
    assert line == "stopped before training began; nothing was saved"


@pytest.mark.parametrize("argv", [
    ["evaluate", "x", "--labels-per-class", "0"], ["evaluate", "x", "--n-train", "0"],
    ["evaluate", "x", "--eval-n", "-1"], ["evaluate", "x", "--width", "0"],
    ["bench", "--epochs", "0"], ["bench", "--width", "0"], ["bench", "--batch-size", "0"],
])
def test_evaluate_and_bench_refuse_non_positive_sizes_by_option(argv, capsys):
    with pytest.raises(SystemExit):
        cli.main(argv)
    err = capsys.readouterr().err
    assert f"argument {argv[-2]}: expected a whole number >= 1, got '{argv[-1]}'" in err


def test_info_shows_the_epochs_train_uses(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    p = profiles.current()
    assert f"train: {p.ssl_epochs} epochs for every self-supervised method, {p.epochs} for " \
           "Supervised" in out


def test_a_stop_during_a_checkpoint_write_lands_after_the_file_is_whole(tmp_path, monkeypatch):
    real_save = torch.save

    def save_with_a_stop_midway(obj, f):
        f.write(b"")
        signal.raise_signal(signal.SIGINT)  # Ctrl-C arrives while the file is being written
        real_save(obj, f)

    monkeypatch.setattr(torch, "save", save_with_a_stop_midway)
    with pytest.raises(KeyboardInterrupt):
        T.save_checkpoint(tmp_path / "last.pt", step=3, weights=torch.arange(4.0))
    state = T.load_checkpoint(tmp_path / "last.pt")
    assert state["step"] == 3 and torch.equal(state["weights"], torch.arange(4.0))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def _start(tmp_path, name):
    folder = tmp_path / name
    cmd = [sys.executable, "-m", "minissl", "train", "rotation_prediction", "--dataset",
           "shapes", "--n-train", "64", "--eval-n", "32", "--epochs", "500", "--batch-size",
           "32", "--width", "4", "--no-progress", "--checkpoint-every", "1",
           "--checkpoint-dir", str(folder)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MINISSL_PROFILE": "quick"}
    env.pop("MINISSL_DEBUG", None)
    return folder, subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)


def test_sigint_and_sigterm_print_one_line_with_the_resume_command(tmp_path):
    runs = {sig: _start(tmp_path, sig.name) for sig in (signal.SIGINT, signal.SIGTERM)}
    deadline = time.time() + 120
    for sig, (folder, proc) in runs.items():
        while not (folder / "last.pt").exists() and proc.poll() is None \
                and time.time() < deadline:
            time.sleep(0.1)
        time.sleep(0.3)
        proc.send_signal(sig)
    for sig, (folder, proc) in runs.items():
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == (130 if sig == signal.SIGINT else 143), err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in err, err
        assert re.match(r"stopped at step \d+; the last checkpoint \(step \d+\) is ", lines[0])
        assert str(folder / "last.pt") in lines[0]
        assert lines[0].endswith("resume with: python -m minissl train rotation_prediction "
                                 f"--dataset shapes --n-train 64 --eval-n 32 --epochs 500 "
                                 f"--batch-size 32 --width 4 --no-progress --checkpoint-every 1 "
                                 f"--checkpoint-dir {folder}")


# ------------------------------------------------------------------ what a student reads


def test_every_public_module_is_reachable_after_import_minissl():
    api = (ROOT / "book" / "api.md").read_text()
    named = {m.split(".")[1] for m in re.findall(r"minissl\.\w+", api)}
    assert named <= set(minissl.__all__), named - set(minissl.__all__)
    code = ("import minissl, sys; assert 'torch' not in sys.modules; "
            "[getattr(minissl, m) for m in minissl.__all__]; print(len(minissl.__all__))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr
    assert {"deploy", "cluster", "generative", "monitor", "cli"} <= set(minissl.__all__)
    with pytest.raises(AttributeError, match="Did you mean 'deploy'"):
        minissl.deplo  # noqa: B018


def test_help_lists_every_field_of_train_config_and_profile():
    from minissl.profiles import Profile

    for cls in (TrainConfig, Profile):
        text = pydoc.render_doc(cls, renderer=pydoc.plaintext)
        missing = [f.name for f in fields(cls) if not re.search(rf"\b{f.name}: \S", text)]
        assert not missing, f"{cls.__name__} fields without a description: {missing}"
    contributing = (ROOT / "CONTRIBUTING.md").read_text()
    assert not [f.name for f in fields(TrainConfig) if f"`{f.name}`" not in contributing]


def test_fine_tune_result_and_fine_tune_say_what_they_hold_and_expect():
    from minissl.evaluate import FineTuneResult, fine_tune

    assert "model[0]" in FineTuneResult.__doc__ and "model[1]" in FineTuneResult.__doc__
    assert "few_labels" in fine_tune.__doc__


def test_a_pretrained_encoder_saves_and_loads_back(tmp_path):
    from minissl import deploy
    from minissl.deploy import DeployError
    from minissl.nn import backbone

    torch.manual_seed(0)
    enc = backbone("convnet", in_channels=3, width=4).eval()
    path = deploy.save_encoder(enc, tmp_path / "enc.pt", "convnet", in_channels=3, width=4)
    again = deploy.load_encoder(path)
    x = torch.rand(2, 3, 8, 8)
    assert torch.equal(enc(x), again(x)) and not again.training
    assert again.feature_dim == enc.feature_dim
    with pytest.raises(DeployError, match="do not fit.*width"):
        deploy.save_encoder(enc, tmp_path / "bad.pt", "convnet", in_channels=3, width=8)
    with pytest.raises(DeployError, match="not a saved encoder"):
        deploy.load_encoder(deploy.save_state(
            deploy.Classifier.from_spec(deploy.ModelSpec("convnet", {"width": 4}, 3, 8, 2)),
            tmp_path / "clf.pt"))


@pytest.mark.parametrize("load, writer, what", [
    ("load_state", "save_state", "model"), ("load_encoder", "save_encoder", "encoder")])
def test_unreadable_deploy_files_name_their_writer_not_torch_advice(tmp_path, load, writer,
                                                                    what):
    from minissl import deploy
    from minissl.deploy import DeployError

    path = tmp_path / "model.pt"
    random_bytes = random.Random(0).randbytes(2000)  # fixed: some draws fail another way
    for blob, why in ((random_bytes, f"is corrupt or not a file written by deploy.{writer} "
                       "(it is not a file written by torch.save with tensors and plain values "
                       "only; minissl does not load files that can run code)"),
                      (b"", "the file is empty (0 bytes)")):
        path.write_bytes(blob)
        with pytest.raises(DeployError) as err:
            getattr(deploy, load)(path)
        message = str(err.value)
        assert why in message and f"Save the {what} again with deploy.{writer}" in message
        assert "weights_only" not in message and "arbitrary code" not in message, message
    with pytest.raises(FileNotFoundError, match=f"no saved {what} at .*deploy.{writer}"):
        getattr(deploy, load)(tmp_path / "missing.pt")


def test_another_method_is_named_without_listing_its_arguments(tmp_path):
    class Scaled(nn.Module):
        def __init__(self, width: int = 3):
            super().__init__()
            self.width = width
            self.net = nn.Linear(4, 1)

        def training_step(self, batch):
            return {"loss": self.net(batch[0]).pow(2).mean()}

    fit(Scaled(), data(), cfg(tmp_path))
    with pytest.raises(MinisslError) as err:
        fit(Regress(), data(), cfg(tmp_path))
    assert "method.name: 'test_another_method" in str(err.value)
    assert "method.arguments" not in str(err.value)


def test_history_last_of_a_quantity_without_values_says_so():
    from minissl.train import History

    h = History()
    h.log(1, {"loss": 1.0})
    h.log(2, {"knn": 0.5})
    h.records["knn"][0] = float("nan")
    assert h.last("knn") == 0.5 and h.last() == 1.0
    h.records["knn"][1] = float("nan")
    with pytest.raises(KeyError, match="'knn' has no logged value yet"):
        h.last("knn")
