"""Tests for the self-prediction methods (BYOL, SimSiam), their loss and the collapse monitor."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn

from minissl.losses import negative_cosine
from minissl.methods import BYOL, SimSiam
from minissl.monitor import CollapseMonitor, CollapseWarning, effective_rank, embedding_std
from minissl.nn import ConvNet
from minissl.train import TrainConfig, fit, make_optimizer


def _images(n=4, seed=0):
    return torch.rand(n, 3, 8, 8, generator=torch.Generator().manual_seed(seed))


def _same_views(x):
    return x, x.flip(-1)  # deterministic "augmentation": the test controls the views


def _byol(**kw):
    torch.manual_seed(0)
    return BYOL(ConvNet(width=4), augment=_same_views, proj_dim=8, hidden_dim=16, **kw)


def _simsiam(**kw):
    torch.manual_seed(0)
    return SimSiam(ConvNet(width=4), augment=_same_views, proj_dim=16, hidden_dim=4, **kw)


# ------------------------------------------------------------------------------- the loss


def test_negative_cosine_matches_reference():
    g = torch.Generator().manual_seed(0)
    p, z = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g)
    ref = -sum(float(p[i] @ z[i]) / (float(p[i].norm()) * float(z[i].norm())) for i in range(5)) / 5
    assert negative_cosine(p, z).item() == pytest.approx(ref, abs=1e-6)
    assert negative_cosine(p, 3 * p).item() == pytest.approx(-1.0, abs=1e-6)
    # BYOL's 2 - 2 cos is the same loss up to an affine map
    byol = ((p / p.norm(dim=1, keepdim=True) - z / z.norm(dim=1, keepdim=True)) ** 2).sum(1).mean()
    assert byol.item() == pytest.approx(2 + 2 * negative_cosine(p, z).item(), abs=1e-5)


def test_negative_cosine_gradient_reaches_p_not_z():
    p = torch.randn(3, 4, requires_grad=True)
    z = torch.randn(3, 4, requires_grad=True)
    negative_cosine(p, z).backward()
    assert p.grad is not None and p.grad.abs().sum() > 0
    assert z.grad is None
    negative_cosine(p, z, stop_gradient=False).backward()
    assert z.grad is not None and z.grad.abs().sum() > 0


def test_negative_cosine_shape_error_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(3, 5\)"):
        negative_cosine(torch.zeros(3, 4), torch.zeros(3, 5))


# ---------------------------------------------------------------------------------- BYOL


def test_byol_target_gets_no_gradient_and_is_not_optimized():
    byol = _byol()
    byol.training_step((_images(), None))["loss"].backward()
    target = list(byol.target_parameters())
    assert target and all(p.grad is None and not p.requires_grad for p in target)
    assert all(p.grad is not None for p in byol.predictor.parameters())
    optimized = {id(p) for g in make_optimizer(byol, TrainConfig()).param_groups
                 for p in g["params"]}
    assert not optimized & {id(p) for p in target}
    assert {id(p) for p in byol.encoder.parameters()} <= optimized


def test_byol_ema_update_equals_formula():
    byol = _byol()
    with torch.no_grad():
        for p in byol.encoder.parameters():
            p.add_(torch.randn_like(p))  # make online and target differ
    online = [p.clone() for p in [*byol.encoder.parameters(), *byol.projector.parameters()]]
    before = [p.clone() for p in byol.target_parameters()]
    byol.on_after_step(3, 10)
    tau = 1 - (1 - 0.996) * (math.cos(math.pi * 3 / 10) + 1) / 2
    assert byol.tau == pytest.approx(tau)
    for xi, xi0, theta in zip(byol.target_parameters(), before, online):
        torch.testing.assert_close(xi, tau * xi0 + (1 - tau) * theta)


def test_byol_momentum_schedule_ends():
    byol = _byol(base_momentum=0.99)
    assert byol.momentum_at(0, 100) == pytest.approx(0.99)
    assert byol.momentum_at(100, 100) == pytest.approx(1.0)
    assert byol.momentum_at(50, 100) == pytest.approx(0.995)
    taus = [byol.momentum_at(k, 100) for k in range(101)]
    assert all(a <= b for a, b in zip(taus, taus[1:]))  # rises monotonically


def test_byol_momentum_zero_copies_online():
    byol = _byol(momentum=0.0)
    with torch.no_grad():
        for p in byol.projector.parameters():
            p.add_(1.0)
    byol.on_after_step(1, 10)
    for xi, theta in zip(byol.target_parameters(),
                         [*byol.encoder.parameters(), *byol.projector.parameters()]):
        torch.testing.assert_close(xi, theta)


# -------------------------------------------------------------------------------- SimSiam


def _grads_wrt_z(model):
    """d loss / d z1 through the target branch only, and through the predictor branch only."""
    x = _images()
    v1, v2 = model.augment(x)
    z1 = model.projector(model.encoder(v1)).detach().requires_grad_(True)
    z2 = model.projector(model.encoder(v2)).detach().requires_grad_(True)
    p1, p2 = model.predictor(z1), model.predictor(z2)
    sg = model.stop_gradient
    loss = (negative_cosine(p1, z2, stop_gradient=sg)
            + negative_cosine(p2, z1, stop_gradient=sg)) / 2
    loss.backward()
    # z2 enters as a target (of p1) and as the predictor's input (p2); p2's path alone:
    z2_pred = z2.detach().requires_grad_(True)
    ((negative_cosine(model.predictor(z2_pred), z1.detach())) / 2).backward()
    return z2.grad, z2_pred.grad


def test_simsiam_stop_gradient_stops():
    model = _simsiam()
    total, via_predictor = _grads_wrt_z(model)
    # with the stop-gradient, all of z2's gradient comes through the predictor branch
    torch.testing.assert_close(total, via_predictor)
    model = _simsiam(stop_gradient=False)
    total, via_predictor = _grads_wrt_z(model)
    assert (total - via_predictor).abs().max() > 1e-4  # the target branch now adds gradient


def test_simsiam_training_step_matches_detached_reference():
    model = _simsiam()
    model.training_step((_images(), None))["loss"].backward()
    grads = [p.grad.clone() for p in model.encoder.parameters()]
    model.zero_grad()
    v1, v2 = _same_views(_images())
    z1, z2 = model.projector(model.encoder(v1)), model.projector(model.encoder(v2))
    p1, p2 = model.predictor(z1), model.predictor(z2)
    ref = (-nn.functional.cosine_similarity(p1, z2.detach()).mean()
           - nn.functional.cosine_similarity(p2, z1.detach()).mean()) / 2
    ref.backward()
    for g, p in zip(grads, model.encoder.parameters()):
        torch.testing.assert_close(g, p.grad)


def test_simsiam_predictor_group_has_fixed_lr():
    model = _simsiam()
    groups = model.param_groups()
    fixed = {id(p) for g in groups if g.get("fixed_lr") for p in g["params"]}
    assert fixed == {id(p) for p in model.predictor.parameters()}
    listed = [id(p) for g in groups for p in g["params"]]
    assert sorted(listed) == sorted(id(p) for p in model.parameters())  # each param exactly once


def test_simsiam_without_predictor_compares_projections():
    model = _simsiam(predictor=False)
    assert isinstance(model.predictor, nn.Identity)
    out = model.training_step((_images(), None))
    out["loss"].backward()
    assert all(not g.get("fixed_lr") for g in model.param_groups() if g["params"])


# ----------------------------------------------------------------- training on a fixed batch


@pytest.mark.parametrize("make", [_byol, _simsiam], ids=["BYOL", "SimSiam"])
def test_loss_decreases_on_a_fixed_batch(make):
    model = make()
    x = _images(8, seed=1)
    history = fit(model, x, TrainConfig(max_steps=15, batch_size=8, lr=1e-2, progress=False,
                                        device="cpu"))
    assert history["loss"][-1] < history["loss"][0]


def test_default_augmentations_run():
    for model in (BYOL(ConvNet(width=4), proj_dim=8, hidden_dim=16),
                  SimSiam(ConvNet(width=4), proj_dim=8, hidden_dim=4)):
        out = model.training_step((_images(), None))
        out["loss"].backward()
        assert -1.0 <= out["loss"].item() <= 1.0


# -------------------------------------------------------------------------------- monitor


def test_embedding_std_gaussian_and_constant():
    g = torch.Generator().manual_seed(0)
    for d in (8, 64):
        std = embedding_std(torch.randn(2000, d, generator=g))
        assert std == pytest.approx(1 / math.sqrt(d), rel=0.05)
    assert embedding_std(torch.full((50, 16), 3.0)) < 1e-6


def test_effective_rank():
    g = torch.Generator().manual_seed(0)
    u, _ = torch.linalg.qr(torch.randn(40, 3, generator=g))  # (40, 3) orthonormal columns
    v, _ = torch.linalg.qr(torch.randn(20, 3, generator=g))  # (20, 3)
    assert effective_rank(u @ v.T) == pytest.approx(3.0, abs=1e-3)  # equal singular values
    low = torch.randn(40, 3, generator=g) @ torch.randn(3, 20, generator=g)  # rank 3
    assert 2.0 < effective_rank(low) <= 3.0 + 1e-6
    assert effective_rank(torch.randn(400, 16, generator=g)) > 14


class _Constant(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(8))

    def forward(self, x):
        return self.w.expand(len(x), 8)  # (B, 8) every image maps to the same vector


def test_collapse_warning_fires_for_a_constant_encoder():
    method = nn.Module()
    method.encoder = _Constant()
    method.train()
    monitor = CollapseMonitor(_images(16), every=5)
    with pytest.warns(CollapseWarning, match="step 12"):
        out = monitor(method, 12)
    assert out["emb_std"] < 1e-6 and out["emb_std_healthy"] == pytest.approx(1 / math.sqrt(8))
    assert out["eff_rank"] == pytest.approx(1.0, abs=1e-3)
    assert monitor.collapsed_at == 12 and method.training  # train mode restored


def test_monitor_quiet_when_healthy():
    method = nn.Module()
    method.encoder = nn.Flatten()  # centred random pixels: spread embeddings
    monitor = CollapseMonitor(_images(64) - 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CollapseWarning)
        out = monitor(method, 1)
    assert out["emb_std"] > 0.5 * out["emb_std_healthy"] and monitor.collapsed_at is None


def test_monitor_is_logged_by_fit():
    model = _simsiam()
    monitor = CollapseMonitor(_images(16, seed=2), every=2,
                              embed=lambda m, x: m.projector(m.encoder(x)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CollapseWarning)  # BN statistics after 2 steps are raw
        history = fit(model, _images(8), TrainConfig(max_steps=4, batch_size=8, lr=1e-3,
                      progress=False, device="cpu", callback=monitor, eval_every=2))
    assert history.steps_of("emb_std") == [2, 4] and [r["step"] for r in monitor.records] == [2, 4]
    assert len(history["eff_rank"]) == 2 and len(history["emb_std_healthy"]) == 2
    assert model.training
