"""What only a GPU can check: every method under every precision, compile, exact resume.

Every test here is marked ``gpu`` and is skipped where CUDA is absent. ``tools/gpu_check.py``
runs them (``pytest -m gpu``); its ``--dry-run`` sets ``MINISSL_GPU_TESTS_ON_CPU=1``, which runs
the same tests on the CPU with the precisions a CPU has (fp32, bf16), so the kit itself is
tested without a GPU.
"""

from __future__ import annotations

import math
import os

import pytest
import torch
from torch import nn

from minissl import data, methods, recipes
from minissl.train import TrainConfig, fit, load_checkpoint

ON_CPU = os.environ.get("MINISSL_GPU_TESTS_ON_CPU") == "1"
HAVE_CUDA = torch.cuda.is_available()

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not (HAVE_CUDA or ON_CPU), reason="needs a CUDA GPU"),
]

DEVICE = torch.device("cuda" if HAVE_CUDA else "cpu")
PRECISIONS = ("fp32", "bf16", "fp16") if HAVE_CUDA else ("fp32", "bf16")
QUIET = {"progress": False, "device": str(DEVICE)}


# ------------------------------------------------------------------------ tiny methods
def _shapes(n: int = 32) -> data.ImageDataset:
    return data.load("shapes", "train", n=n)


def _image_recipe(name: str):
    def make():
        ds = _shapes()
        method, _ = recipes.build(name, ds, epochs=1, width=4)
        return method, ds
    return make


def _supervised():
    ds = _shapes()
    enc = recipes.make_encoder(ds, width=4)
    return methods.Supervised(enc, ds.num_classes), ds


def _pseudo_label():
    ds = _shapes()
    enc = recipes.make_encoder(ds, width=4)
    labelled = ds.subset(torch.arange(8))
    method = methods.PseudoLabel(enc, ds.num_classes, labelled.images,
                                 labelled.labels, ramp_up=0.0)
    return method, ds


def _bert():
    windows = torch.randint(5, 25, (32, 1), generator=torch.Generator().manual_seed(0))
    return (methods.BERT(vocab_size=25, dim=16, depth=1, heads=2, max_len=16),
            windows.repeat(1, 16))


def _gpt():
    windows = (torch.arange(32 * 17) % 20 + 5).view(32, 17)
    return methods.GPT(vocab_size=25, dim=16, depth=1, heads=2, max_len=16), windows


def _cpc():
    from minissl.methods.cpc import CPC

    t = torch.arange(128.0)
    x = torch.sin(0.1 * t + torch.rand(32, 1))[:, None]  # (32, 1, 128)
    return CPC(prediction_steps=2, width=8, context_dim=8, strides=(4, 4)), x


def _time_contrastive():
    from minissl.methods.tcl import TimeContrastive, WindowEncoder

    series = torch.cumsum(torch.randn(32, 2, 40), dim=2)
    return TimeContrastive(WindowEncoder(2, 6, hidden=16, dim=8), window=6, proj_dim=8), series


def _gan():
    from minissl.methods.gan import Discriminator, Generator

    gan = methods.GAN(Generator(8, channels=1, z_dim=4, width=8),
                      Discriminator(8, channels=1, width=8))
    return gan, torch.rand(32, 1, 8, 8)


MAKERS = {**{name: _image_recipe(name) for name in recipes.available()},
          "supervised": _supervised, "pseudolabel": _pseudo_label, "bert": _bert,
          "gpt": _gpt, "cpc": _cpc, "timecontrastive": _time_contrastive, "gan": _gan}


def test_every_method_is_covered():
    covered = {name.replace("_", "") for name in MAKERS}
    assert {name.lower() for name in methods.available()} <= covered


def _tensors_of(module: nn.Module):
    """(name, tensor) for every parameter, buffer and tensor attribute of every submodule."""
    yield from module.named_parameters()
    yield from module.named_buffers()
    for mod_name, mod in module.named_modules():
        for attr, value in vars(mod).items():
            values = value if isinstance(value, (list, tuple)) else (
                value.values() if isinstance(value, dict) else (value,))
            for v in values:
                if isinstance(v, torch.Tensor):
                    yield f"{mod_name}.{attr}", v


def _off_device(method: nn.Module, out: dict | None = None) -> list[str]:
    found = [name for name, t in _tensors_of(method) if t.device.type != DEVICE.type]
    if out is not None:
        found += [f"output {k}" for k, v in out.items()
                  if isinstance(v, torch.Tensor) and v.device.type != DEVICE.type]
    return found


# ------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("name", sorted(MAKERS))
def test_training_step_under_each_precision_leaves_nothing_on_the_cpu(name, precision):
    torch.manual_seed(0)
    method, train = MAKERS[name]()
    history = fit(method, train, TrainConfig(max_steps=2, batch_size=8, lr=1e-3,
                                             precision=precision, **QUIET))
    assert math.isfinite(history["loss"][-1])
    assert not _off_device(method), f"left on the CPU: {_off_device(method)}"
    # One more step by hand, the way fit runs it, to see what training_step returns.
    from minissl.train.batches import _Batches
    from minissl.train.optim import _precision

    batch = next(_Batches(train, 8, True, 0, device=DEVICE).epoch(0))
    dtype = _precision(TrainConfig(precision=precision), DEVICE)
    with torch.autocast(DEVICE.type, dtype=dtype, enabled=dtype is not None):
        out = (method.training_step(batch) if not hasattr(method, "optimizers")
               else method.training_step(batch, phase=next(iter(method.optimizers()))))
    assert torch.isfinite(out["loss"].float())
    assert not _off_device(method, out), f"left on the CPU: {_off_device(method, out)}"


def _simclr():
    torch.manual_seed(0)
    ds = _shapes(64)
    method, _ = recipes.build("simclr", ds, epochs=1, width=8)
    return method, ds


@pytest.mark.parametrize("precision", ["auto", "bf16", "fp16"])
def test_fit_under_each_precision(precision, monkeypatch):
    if precision == "fp16" and not HAVE_CUDA:
        pytest.skip("fp16 with a GradScaler is checked on the GPU")
    import minissl.train.loop as train_module  # where fit sets up its run

    runs, updates = [], []
    real_set_up = train_module._set_up

    def spy(*args, **kwargs):  # keep the run fit sets up: its scalers are the ones it steps
        run = real_set_up(*args, **kwargs)
        for scaler in run.scalers.values():  # and count the updates fit makes with them
            real_update = scaler.update
            scaler.update = lambda *a, _real=real_update, **k: (updates.append(1), _real(*a, **k))
        runs.append(run)
        return run

    monkeypatch.setattr(train_module, "_set_up", spy)
    method, ds = _simclr()
    history = fit(method, ds, TrainConfig(max_steps=4, batch_size=16, precision=precision,
                                          **QUIET))
    assert all(math.isfinite(v) for v in history["loss"])
    from minissl.train.optim import _precision

    dtype = _precision(TrainConfig(precision=precision), DEVICE)
    (run,) = runs
    assert run.amp_dtype == dtype and run.scalers
    assert len(updates) == 4 * len(run.scalers)  # one update of each scaler per step
    fp16 = dtype == torch.float16
    for scaler in run.scalers.values():
        assert scaler.is_enabled() == fp16
        if fp16:  # fit scaled the loss with this scaler: its scale exists, on the device
            assert scaler._scale is not None and scaler._scale.device.type == DEVICE.type
            assert math.isfinite(scaler.get_scale()) and scaler.get_scale() > 0
    if precision == "fp16":
        assert fp16
    if HAVE_CUDA and precision == "auto":
        major, _ = torch.cuda.get_device_capability()
        assert dtype == (torch.bfloat16 if major >= 8 else torch.float16)


def test_fit_with_compile():
    if not HAVE_CUDA:
        pytest.skip("torch.compile is checked on the GPU (on a CPU it needs a C++ compiler)")
    method, ds = _simclr()
    history = fit(method, ds, TrainConfig(max_steps=3, batch_size=16, compile=True, **QUIET))
    assert all(math.isfinite(v) for v in history["loss"])


def test_in_memory_data_is_sliced_on_the_device(monkeypatch):
    import minissl.train.loop as train_module  # where fit builds its batches

    seen = []

    class Spy(train_module._Batches):
        def epoch(self, epoch, skip=0):
            for batch in super().epoch(epoch, skip):
                seen.append((self.tensors[0].device.type, batch[0].device.type))
                yield batch

    monkeypatch.setattr(train_module, "_Batches", Spy)
    monkeypatch.setattr(torch.utils.data.DataLoader, "__init__", _no_loader)
    method, ds = _simclr()
    fit(method, ds, TrainConfig(max_steps=2, batch_size=16, **QUIET))
    assert seen and all(s == (DEVICE.type, DEVICE.type) for s in seen)
    assert ds.images.device.type == "cpu"  # the caller's data set is left where it was


def _no_loader(*args, **kwargs):
    raise AssertionError("fit built a DataLoader for in-memory data")


def test_cli_train_uses_the_device_path(monkeypatch, tmp_path, capsys):
    import minissl.train.batches as train_module  # where batches are placed
    from minissl import cli, profiles

    devices = []
    real = train_module._place

    def spy(tensors, device):
        out = real(tensors, device)
        devices.append(out[0].device.type)
        return out

    monkeypatch.setattr(train_module, "_place", spy)
    monkeypatch.setattr(torch.utils.data.DataLoader, "__init__", _no_loader)
    profiles.use("quick")
    rc = cli.main(["train", "simclr", "--n-train", "128", "--eval-n", "64", "--epochs", "1",
                   "--batch-size", "32", "--width", "4", "--no-progress",
                   "--device", str(DEVICE)])
    assert rc == 0 and devices and set(devices) == {DEVICE.type}
    assert "done:" in capsys.readouterr().out


def test_exact_resume_on_the_device(tmp_path):
    deterministic = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        cfg = TrainConfig(max_steps=6, batch_size=16, checkpoint_every=3, **QUIET)
        whole, ds = _simclr()
        h_whole = fit(whole, ds, cfg, checkpoint_dir=tmp_path / "whole")

        class Interrupt(Exception):
            pass

        first, _ = _simclr()

        def crash(step, total):
            if step == 4:  # after the checkpoint at step 3
                raise Interrupt

        first.on_after_step = crash
        with pytest.raises(Interrupt):
            fit(first, ds, cfg, checkpoint_dir=tmp_path / "split")
        assert load_checkpoint(tmp_path / "split" / "last.pt")["step"] == 3
        second, _ = _simclr()
        h_split = fit(second, ds, cfg, checkpoint_dir=tmp_path / "split")
        for (name, a), b in zip(whole.state_dict().items(), second.state_dict().values()):
            assert torch.equal(a, b), name
        assert h_split["loss"] == h_whole["loss"]
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = deterministic
