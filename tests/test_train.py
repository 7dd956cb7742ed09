"""The generic loop: schedules, hooks, precision, checkpoints, exact resume, divergence."""

import math

import pytest
import torch
from torch import nn

from minissl.train import (
    History,
    TrainConfig,
    TrainingDiverged,
    fit,
    load_checkpoint,
    lr_factor,
)
from minissl.utils import MinisslError


class NoisyRegression(nn.Module):
    """A tiny method that uses every source of randomness a real one does.

    Dropout (torch RNG), an 'augmentation' drawn from the global torch RNG, and a hook
    that keeps an EMA copy, like BYOL's target network.
    """

    def __init__(self, scale=1.0):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 1))
        self.register_buffer("ema", torch.zeros(1))
        self.scale = scale
        self.hook_calls = []

    def training_step(self, batch):
        x, y = batch
        x = x + 0.01 * torch.randn_like(x)  # per-step randomness, like an augmentation
        pred = self.net(x).squeeze(1)
        loss = ((pred - y.float()) ** 2).mean() * self.scale
        return {"loss": loss, "mean_pred": pred.mean().detach()}

    def on_after_step(self, step, total):
        self.hook_calls.append((step, total))
        self.ema.mul_(0.9).add_(0.1 * self.net[0].weight.detach().mean())


def make_data(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = (x @ torch.tensor([1.0, -2.0, 0.5, 3.0])).round().long()
    return x, y


def params(module):
    return torch.cat([p.detach().flatten() for p in module.state_dict().values()
                      if p.dtype.is_floating_point])


QUIET = dict(progress=False)


def test_loss_goes_down_and_history_is_complete():
    torch.manual_seed(0)
    method = NoisyRegression()
    hist = fit(method, make_data(), TrainConfig(epochs=20, batch_size=32, lr=0.02, **QUIET))
    assert len(hist["loss"]) == 20 * 3
    assert hist["loss"][-1] < 0.5 * hist["loss"][0]
    assert hist.steps == list(range(1, 61))
    assert "mean_pred" in hist and "lr" in hist
    assert method.hook_calls[0] == (1, 60) and method.hook_calls[-1] == (60, 60)
    assert "loss=" in repr(hist)


def test_same_seed_same_weights():
    a, b = NoisyRegression(), NoisyRegression()
    b.load_state_dict(a.state_dict())
    cfg = TrainConfig(epochs=3, batch_size=16, **QUIET)
    fit(a, make_data(), cfg)
    fit(b, make_data(), cfg)
    assert torch.equal(params(a), params(b))


def test_interrupted_run_resumes_to_identical_weights(tmp_path):
    torch.manual_seed(1)
    init = NoisyRegression().state_dict()
    cfg = TrainConfig(epochs=4, batch_size=16, lr=0.01, warmup_steps=3,
                      checkpoint_every=5, **QUIET)  # 6 steps/epoch: checkpoints mid-epoch too

    whole = NoisyRegression()
    whole.load_state_dict(init)
    h_whole = fit(whole, make_data(), cfg, checkpoint_dir=tmp_path / "whole")

    class Interrupt(Exception):
        pass

    first = NoisyRegression()
    first.load_state_dict(init)

    def crash(step, total):
        NoisyRegression.on_after_step(first, step, total)
        if step == 13:  # after the checkpoint at step 10, mid-way through epoch 2
            raise Interrupt

    first.on_after_step = crash
    with pytest.raises(Interrupt):
        fit(first, make_data(), cfg, checkpoint_dir=tmp_path / "split")
    assert load_checkpoint(tmp_path / "split" / "last.pt")["step"] == 10

    second = NoisyRegression()  # a fresh process would start from fresh weights
    h_split = fit(second, make_data(), cfg, checkpoint_dir=tmp_path / "split")
    assert torch.equal(params(whole), params(second))
    assert h_split.steps == h_whole.steps
    assert h_split["loss"] == h_whole["loss"]

    # A finished run resumes to "already done" without training further.
    again = NoisyRegression()
    h_again = fit(again, make_data(), cfg, checkpoint_dir=tmp_path / "split")
    assert torch.equal(params(again), params(whole)) and len(h_again) == len(h_whole)


def test_nan_loss_stops_with_step_and_keeps_last_good_checkpoint(tmp_path):
    class Explodes(NoisyRegression):
        def training_step(self, batch):
            out = super().training_step(batch)
            if self.steps_done >= 7:
                out["loss"] = out["loss"] * float("nan")
            self.steps_done += 1
            return out

    method = Explodes()
    method.steps_done = 0
    with pytest.raises(TrainingDiverged, match=r"became nan at step 7 .*step 6\)"):
        fit(method, make_data(), TrainConfig(epochs=5, batch_size=16, checkpoint_every=3,
                                             checkpoint_dir=tmp_path, **QUIET))
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["step"] == 6
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_corrupt_checkpoint_gets_a_clear_error(tmp_path):
    (tmp_path / "last.pt").write_bytes(b"this is not a checkpoint")
    with pytest.raises(MinisslError, match="corrupt.*Delete it"):
        fit(NoisyRegression(), make_data(),
            TrainConfig(epochs=1, batch_size=32, checkpoint_dir=tmp_path, **QUIET))
    with pytest.raises(MinisslError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_checkpoint_of_another_model_is_refused(tmp_path):
    fit(NoisyRegression(), make_data(), TrainConfig(epochs=1, batch_size=32,
                                                    checkpoint_dir=tmp_path, **QUIET))

    class Other(NoisyRegression):
        def __init__(self):
            super().__init__()
            self.extra = nn.Linear(3, 3)

    with pytest.raises(MinisslError, match="does not fit"):
        fit(Other(), make_data(), TrainConfig(epochs=2, batch_size=32, checkpoint_dir=tmp_path,
                                              **QUIET))


def test_schedule_warmup_cosine_and_fixed_lr_groups():
    assert lr_factor(0, 100, warmup_steps=10) == pytest.approx(0.1)
    assert lr_factor(9, 100, warmup_steps=10) == pytest.approx(1.0)
    assert lr_factor(55, 100, warmup_steps=10) == pytest.approx(0.5)
    assert lr_factor(100, 100, warmup_steps=10) == pytest.approx(0.0)
    assert lr_factor(100, 100, min_ratio=0.1) == pytest.approx(0.1)
    assert lr_factor(50, 100, schedule="constant") == 1.0
    with pytest.raises(ValueError, match="unknown schedule"):
        lr_factor(1, 10, schedule="step")

    class TwoGroups(NoisyRegression):
        def param_groups(self):  # the predictor-style group keeps its lr (SimSiam, Sec. 4.1)
            return [{"params": self.net[0].parameters()},
                    {"params": self.net[3].parameters(), "fixed_lr": True}]

    method = TwoGroups()
    seen = []
    method.on_after_step = lambda step, total: None
    hist = fit(method, make_data(), TrainConfig(epochs=2, batch_size=32, lr=0.1, **QUIET),
               callback=lambda m, s: seen.append(s) or {"probe": float(s)}, eval_every=2)
    assert hist["lr"][-1] == pytest.approx(0.0, abs=1e-9)
    assert seen == [2, 4, 6] and hist["probe"] == [2.0, 4.0, 6.0]
    assert hist.steps_of("probe") == [2, 4, 6]


def test_gradient_clipping_bounds_the_update():
    class Huge(NoisyRegression):
        def training_step(self, batch):
            return {"loss": super().training_step(batch)["loss"] * 1e6}

    method = Huge()
    before = params(method).clone()
    fit(method, make_data(), TrainConfig(max_steps=1, batch_size=32, lr=0.1, optimizer="sgd",
                                         momentum=0.0, weight_decay=0.0, grad_clip=1.0, **QUIET))
    # With clipping, one SGD step moves the weights by at most lr * clip.
    assert (params(method) - before).norm() <= 0.1 * 1.0 + 1e-5


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_precision_modes_run_on_cpu(precision):
    hist = fit(NoisyRegression(), make_data(), TrainConfig(epochs=2, batch_size=32,
                                                           precision=precision, **QUIET))
    assert all(math.isfinite(v) for v in hist["loss"])


def test_inputs_dataset_dataloader_and_errors():
    x, y = make_data()
    ds = torch.utils.data.TensorDataset(x, y)
    h1 = fit(NoisyRegression(), ds, TrainConfig(epochs=1, batch_size=32, **QUIET))
    loader = torch.utils.data.DataLoader(ds, batch_size=48)
    h2 = fit(NoisyRegression(), loader, TrainConfig(epochs=1, **QUIET))
    assert len(h1) == 3 and len(h2) == 2
    with pytest.raises(ValueError, match="fewer than one batch"):
        fit(NoisyRegression(), (x[:4], y[:4]), TrainConfig(batch_size=8, **QUIET))
    with pytest.raises(TypeError, match="training_step"):
        fit(nn.Linear(2, 2), x, TrainConfig(**QUIET))
    with pytest.raises(ValueError, match="unknown optimizer"):
        fit(NoisyRegression(), (x, y), TrainConfig(optimizer="lamb", **QUIET))
    with pytest.raises(ValueError, match="unknown precision"):
        fit(NoisyRegression(), (x, y), TrainConfig(precision="fp8", **QUIET))


def test_history_access_and_errors():
    h = History()
    h.log(1, {"loss": 2.0})
    h.log(2, {"loss": 1.0, "knn": 0.5})
    assert h["loss"] == [2.0, 1.0] and h["knn"] == [0.5] and h.last("knn") == 0.5
    with pytest.raises(KeyError, match="logged quantities"):
        h["acc"]
    clone = History()
    clone.load_state_dict(h.state_dict())
    assert clone.steps == h.steps and clone["knn"] == [0.5]


def test_compiled_training_step_matches_eager():
    # torch.compile must change speed, not results (CPU inductor needs a C++ compiler: gcc).
    class Linear(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Linear(4, 1)

        def training_step(self, batch):
            x, y = batch
            return {"loss": ((self.w(x).squeeze(1) - y.float()) ** 2).mean()}

    eager, compiled = Linear(), Linear()
    compiled.load_state_dict(eager.state_dict())
    cfg = TrainConfig(epochs=2, batch_size=32, lr=0.01, **QUIET)
    h_eager = fit(eager, make_data(), cfg)
    h_compiled = fit(compiled, make_data(), cfg, compile=True)
    assert torch.allclose(params(eager), params(compiled), atol=1e-5)
    assert h_compiled["loss"] == pytest.approx(h_eager["loss"], rel=1e-4)


def test_a_checkpoint_in_the_older_single_optimizer_format_still_resumes(tmp_path):
    # One format is written (states by phase); the older one-optimizer layout is read too.
    from minissl.train import save_checkpoint

    torch.manual_seed(2)
    init = NoisyRegression().state_dict()
    cfg = TrainConfig(epochs=2, batch_size=16, lr=0.01, checkpoint_every=4, **QUIET)
    whole = NoisyRegression()
    whole.load_state_dict(init)
    fit(whole, make_data(), cfg, checkpoint_dir=tmp_path / "whole")

    class Interrupt(Exception):
        pass

    half = NoisyRegression()
    half.load_state_dict(init)

    def crash(step, total):
        NoisyRegression.on_after_step(half, step, total)
        if step == 5:  # after the checkpoint at step 4
            raise Interrupt

    half.on_after_step = crash
    with pytest.raises(Interrupt):
        fit(half, make_data(), cfg, checkpoint_dir=tmp_path / "old")
    state = load_checkpoint(tmp_path / "old" / "last.pt")
    assert set(state["optimizers"]) == {""} and "optimizer" not in state
    for old, new in (("optimizer", "optimizers"), ("scheduler", "schedulers"),
                     ("scaler", "scalers")):
        state[old] = state.pop(new)[""]
    state.pop("fingerprint")  # older files recorded no run either
    save_checkpoint(tmp_path / "old" / "last.pt", **state)

    resumed = NoisyRegression()
    fit(resumed, make_data(), cfg, checkpoint_dir=tmp_path / "old")
    assert torch.equal(params(resumed), params(whole))
