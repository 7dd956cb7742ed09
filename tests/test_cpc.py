"""CPC and time-contrastive learning: losses against slow references, shapes, training."""

import math

import pytest
import torch
from torch import nn

from minissl.evaluate import ridge_r2
from minissl.methods.cpc import CPC, CPCEncoder, cpc_loss, info_nce_step
from minissl.methods.tcl import TimeContrastive, WindowEncoder, random_window_pairs
from minissl.train import TrainConfig, fit


def slow_info_nce(pred, target):
    # Loop over every prediction: -log softmax of its score with its own target among all.
    b, length, _ = pred.shape
    losses, hits = [], 0
    for i in range(b):
        for t in range(length):
            scores = torch.stack([pred[i, t] @ target[j, s]
                                  for j in range(b) for s in range(length)])
            own = i * length + t
            losses.append(-(scores[own] - torch.logsumexp(scores, 0)))
            hits += int(scores.argmax() == own)
    return torch.stack(losses).mean(), hits / (b * length)


def test_info_nce_step_matches_the_slow_reference():
    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(3, 4, 5, generator=g), torch.randn(3, 4, 5, generator=g)
    loss, acc = info_nce_step(pred, target)
    ref_loss, ref_acc = slow_info_nce(pred, target)
    assert torch.allclose(loss, ref_loss, atol=1e-5)
    assert acc.item() == pytest.approx(ref_acc)


def test_cpc_loss_averages_the_steps_with_the_right_shift():
    g = torch.Generator().manual_seed(1)
    c, z = torch.randn(2, 6, 4, generator=g), torch.randn(2, 6, 3, generator=g)
    heads = [nn.Linear(4, 3, bias=False) for _ in range(3)]
    loss, _ = cpc_loss(c, z, heads)
    with torch.no_grad():
        ref = sum(slow_info_nce(heads[k - 1](c[:, : 6 - k]), z[:, k:])[0]
                  for k in range(1, 4)) / 3
    assert torch.allclose(loss, ref, atol=1e-5)
    with pytest.raises(ValueError, match="L > K"):
        cpc_loss(c, z, heads * 2)


def test_info_nce_is_log_n_for_uninformative_scores():
    pred = torch.zeros(2, 3, 4)  # every score equal: chance among the 6 latents
    loss, _ = info_nce_step(pred, torch.randn(2, 3, 4))
    assert loss.item() == pytest.approx(math.log(6), abs=1e-6)


def test_encoder_shapes_causality_and_errors():
    enc = CPCEncoder(width=8, context_dim=5, strides=(4, 2), kernel_sizes=(8, 4), pool="both")
    x = torch.randn(2, 1, 64)
    z = enc.latents(x)
    assert z.shape == (2, 8, 8) and enc(x).shape == (2, 13) and enc.feature_dim == 13
    # c_t depends only on z_1..z_t: changing the last latent leaves earlier contexts alone
    z2 = z.clone()
    z2[:, -1] += 1
    assert torch.allclose(enc.contexts(z)[:, :-1], enc.contexts(z2)[:, :-1])
    with pytest.raises(ValueError, match="multiple of"):
        enc.latents(torch.randn(2, 1, 60))
    with pytest.raises(ValueError, match=r"\(B, 1, T\)"):
        enc.latents(torch.randn(2, 3, 64))
    with pytest.raises(ValueError, match="pool"):
        CPCEncoder(pool="max")


def test_cpc_trains_with_fit_and_beats_chance():
    torch.manual_seed(0)
    t = torch.arange(128.0)
    freq = torch.rand(64, 1) * 0.3 + 0.05
    x = torch.sin(freq * t + 6 * torch.rand(64, 1))[:, None]  # (64, 1, 128) sine waves
    model = CPC(prediction_steps=2, width=16, context_dim=16, strides=(4, 4))
    hist = fit(model, x, TrainConfig(epochs=8, batch_size=16, lr=3e-3, progress=False))
    assert hist["loss"][-1] < hist["loss"][0] - 0.5
    assert hist["acc"][-1] > 3 / 128  # well above chance (1 in 16 * 8 latents)


def test_random_window_pairs_are_shifted_copies():
    x = torch.arange(2 * 3 * 30, dtype=torch.float32).view(2, 3, 30)
    a, p = random_window_pairs(x, 5, 3, 4, torch.Generator().manual_seed(0))
    assert a.shape == p.shape == (8, 3, 5)
    shift = p[:, 0, 0] - a[:, 0, 0]
    assert ((shift >= 1) & (shift <= 3)).all()
    assert torch.equal(p - a, shift[:, None, None].expand_as(a))  # the same shift everywhere
    with pytest.raises(ValueError, match="too short"):
        random_window_pairs(x, 29, 3, 1)


def test_time_contrastive_step_and_training():
    torch.manual_seed(0)
    series = torch.cumsum(torch.randn(32, 2, 40), dim=2)  # random walks: nearby is similar
    model = TimeContrastive(WindowEncoder(2, 6, hidden=32, dim=8), window=6, proj_dim=8)
    hist = fit(model, series, TrainConfig(epochs=10, batch_size=16, lr=3e-3, progress=False))
    assert hist["loss"][-1] < hist["loss"][0]
    with pytest.raises(ValueError, match=r"\(B, 2, 6\)"):
        model.encoder(torch.randn(3, 2, 5))


def test_ridge_r2_perfect_linear_and_useless_features():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 4, generator=g)
    y = torch.stack([x @ torch.tensor([1.0, -2.0, 0.5, 0.0]), torch.randn(200, generator=g)], 1)
    r2 = ridge_r2(x[:150], y[:150], x[150:], y[150:], alpha=1e-6)
    assert r2[0] > 0.999 and r2[1] < 0.1
