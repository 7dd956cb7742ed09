"""fit with several optimizers: phases in order, each stepping only its own parameters."""

import pytest
import torch
from torch import nn

from minissl.train import TrainConfig, fit, load_checkpoint


class TwoPlayers(nn.Module):
    """Phase "a" pulls a to 1 but would pull b to 5; phase "b" pulls b to 2.

    If phase "a"'s gradient on b leaked into b's optimizer, b would not end at 2.
    """

    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.zeros(1))
        self.b = nn.Parameter(torch.zeros(1))
        self.calls: list[str] = []

    def optimizers(self):
        return {"a": [self.a], "b": [{"params": [self.b], "lr": 0.2}]}

    def training_step(self, batch, phase):
        self.calls.append(phase)
        x, _ = batch
        noise = 0.01 * x.mean()  # the data matter a little, so resumption must replay them
        if phase == "a":
            loss = (self.a - 1 - noise) ** 2 + 100 * (self.b - 5) ** 2
            return {"loss": loss.sum(), "gap": (self.a - 1).abs().sum().detach()}
        return {"loss": ((self.b - 2 - noise) ** 2).sum()}


def _cfg(**kw):
    base = dict(max_steps=60, batch_size=4, lr=0.1, optimizer="sgd", momentum=0.0,
                weight_decay=0.0, schedule="constant", progress=False)
    return TrainConfig(**{**base, **kw})


def test_each_optimizer_updates_only_its_parameters_from_its_phase():
    torch.manual_seed(0)
    m = TwoPlayers()
    h = fit(m, torch.rand(32, 3), _cfg())
    assert m.a.item() == pytest.approx(1.0, abs=0.02)
    assert m.b.item() == pytest.approx(2.0, abs=0.02)  # not pulled towards 5
    assert m.calls[:4] == ["a", "b", "a", "b"] and len(m.calls) == 120
    assert {"a/loss", "a/gap", "b/loss", "loss", "lr"} <= set(h.keys())
    assert h["loss"][-1] == pytest.approx(h["a/loss"][-1] + h["b/loss"][-1])
    assert h["lr"][-1] == pytest.approx(0.1)  # the first phase's learning rate


def test_per_group_learning_rate_and_schedule_per_optimizer():
    torch.manual_seed(0)
    m = TwoPlayers()
    fit(m, torch.rand(32, 3), _cfg(max_steps=1))
    # one SGD step each: a moves by lr * 2 * (0 - 1 - noise), b by 0.2 * 2 * (0 - 2 - noise)
    assert m.a.item() == pytest.approx(0.2, abs=0.01)
    assert m.b.item() == pytest.approx(0.8, abs=0.01)


def test_multi_optimizer_resumes_exactly_from_a_checkpoint(tmp_path):
    data = torch.rand(32, 3)
    ref = TwoPlayers()
    fit(ref, data, _cfg(max_steps=12, optimizer="adam", schedule="cosine"))

    class Crash(Exception):
        pass

    def crash(method, step):
        if step == 7:
            raise Crash  # the run dies after step 7; the checkpoint holds step 5

    with pytest.raises(Crash):
        fit(TwoPlayers(), data, _cfg(max_steps=12, optimizer="adam", schedule="cosine",
                                     checkpoint_dir=tmp_path, checkpoint_every=5,
                                     eval_every=1, callback=crash))
    state = load_checkpoint(tmp_path / "last.pt")
    assert set(state["optimizers"]) == {"a", "b"} and "optimizer" not in state
    resumed = TwoPlayers()
    h = fit(resumed, data, _cfg(max_steps=12, optimizer="adam", schedule="cosine",
                                checkpoint_dir=tmp_path, checkpoint_every=5))
    assert torch.equal(resumed.a, ref.a) and torch.equal(resumed.b, ref.b)
    assert h.steps[-1] == 12 and len(resumed.calls) == 2 * 7


def test_bad_optimizers_spec_is_explained():
    class Bad(TwoPlayers):
        def optimizers(self):
            return {"a/b": [self.a]}

    with pytest.raises(ValueError, match="without '/'"):
        fit(Bad(), torch.rand(8, 3), _cfg(max_steps=1))
