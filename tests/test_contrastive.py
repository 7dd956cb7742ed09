"""NT-Xent, InfoNCE, SimCLR and MoCo: slow references, invariants, queue, EMA, bad input."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from minissl.losses import alignment, info_nce, nt_xent, uniformity
from minissl.methods import MoCo, SimCLR
from minissl.nn import ConvNet
from minissl.train import TrainConfig, fit


def _cos(a, b):
    return float(a @ b / (a.norm() * b.norm()))


def nt_xent_reference(z1, z2, t):
    """Eq. 1 of SimCLR, one anchor at a time."""
    z = list(z1) + list(z2)
    n2, n = len(z), len(z1)
    total = 0.0
    for i in range(n2):
        j = (i + n) % n2  # the partner view
        denom = sum(math.exp(_cos(z[i], z[k]) / t) for k in range(n2) if k != i)
        total += -math.log(math.exp(_cos(z[i], z[j]) / t) / denom)
    return total / n2


def info_nce_reference(q, k, queue, t):
    """Eq. 1 of MoCo, one query at a time; the queue is already normalized."""
    total = 0.0
    for qi, ki in zip(q, k):
        pos = math.exp(_cos(qi, ki) / t)
        neg = sum(math.exp(_cos(qi, kj) / t) for kj in queue)
        total += -math.log(pos / (pos + neg))
    return total / len(q)


def _unit(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return nn.functional.normalize(torch.randn(*shape, generator=g), dim=1)


def _randn64(*shape, g):
    return torch.randn(*shape, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("t", [0.1, 0.5, 1.0])
def test_nt_xent_matches_loop_reference(t):
    g = torch.Generator().manual_seed(0)
    z1, z2 = _randn64(5, 7, g=g), _randn64(5, 7, g=g)
    want = nt_xent_reference(z1, z2, t)
    assert nt_xent(z1, z2, t).item() == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("t", [0.07, 0.2, 1.0])
def test_info_nce_matches_loop_reference(t):
    g = torch.Generator().manual_seed(1)
    q, k = _randn64(4, 6, g=g), _randn64(4, 6, g=g)
    queue = nn.functional.normalize(_randn64(9, 6, g=g), dim=1)
    want = info_nce_reference(q, k, queue, t)
    assert info_nce(q, k, queue, t).item() == pytest.approx(want, rel=1e-9)


def test_losses_ignore_input_norm():
    z1, z2, queue = torch.randn(4, 8), torch.randn(4, 8), _unit(10, 8)
    scale = torch.rand(4, 1) * 10 + 0.1  # a different positive scale per row
    torch.testing.assert_close(nt_xent(z1 * scale, z2 * 3.0), nt_xent(z1, z2))
    torch.testing.assert_close(info_nce(z1 * scale, z2 * 7.0, queue), info_nce(z1, z2, queue))


def test_temperature_scaling():
    # Positives more similar than negatives: a lower temperature sharpens the softmax and
    # lowers the loss; as t grows the loss tends to log(2N - 1) (all candidates alike).
    z1 = torch.eye(4, 8)
    z2 = z1 + 0.1 * torch.randn(4, 8, generator=torch.Generator().manual_seed(0))
    losses = [nt_xent(z1, z2, t).item() for t in (0.05, 0.1, 0.5, 1.0, 1e4)]
    assert losses == sorted(losses)
    assert losses[-1] == pytest.approx(math.log(7), abs=1e-3)
    q_losses = [info_nce(z1, z2, _unit(16, 8), t).item() for t in (0.05, 0.2, 1e4)]
    assert q_losses == sorted(q_losses) and q_losses[-1] == pytest.approx(math.log(17), abs=1e-3)


def test_info_nce_gives_no_gradient_to_keys_or_queue():
    q, k = torch.randn(3, 5, requires_grad=True), torch.randn(3, 5, requires_grad=True)
    queue = _unit(6, 5).requires_grad_()
    info_nce(q, k, queue).backward()
    assert q.grad is not None and q.grad.abs().sum() > 0
    assert k.grad is None and queue.grad is None


@pytest.mark.parametrize("call", [
    lambda: nt_xent(torch.randn(4, 8), torch.randn(3, 8)),
    lambda: info_nce(torch.randn(4, 8), torch.randn(4, 6), _unit(5, 8)),
])
def test_mismatched_shapes_name_both(call):
    with pytest.raises(ValueError, match=r"\(4, 8\) and \((3|4), (8|6)\)"):
        call()


def test_bad_temperature_and_queue_shape():
    for t in (0.0, -1.0):
        with pytest.raises(ValueError, match="temperature"):
            nt_xent(torch.randn(2, 3), torch.randn(2, 3), t)
        with pytest.raises(ValueError, match="temperature"):
            info_nce(torch.randn(2, 3), torch.randn(2, 3), _unit(4, 3), t)
    with pytest.raises(ValueError, match="queue"):
        info_nce(torch.randn(2, 3), torch.randn(2, 3), _unit(4, 5))
    with pytest.raises(ValueError, match="temperature"):
        SimCLR(_enc(), temperature=0)
    with pytest.raises(ValueError, match="temperature"):
        MoCo(_enc(), temperature=0)


def _images(n=4, seed=0):
    return torch.rand(n, 3, 8, 8, generator=torch.Generator().manual_seed(seed))


def _enc():
    torch.manual_seed(0)
    return ConvNet(in_channels=3, width=4)


def test_queue_smaller_than_batch_names_both_numbers():
    moco = MoCo(_enc(), queue_size=3)
    with pytest.raises(ValueError, match=r"queue_size=3.*batch of 4"):
        moco.training_step((_images(), None))


def test_moco_queue_fifo_with_wraparound():
    moco = MoCo(_enc(), proj_dim=6, queue_size=10)
    keys_seen = []
    # Record the keys each step enqueues: they are the normalized outputs of the key side.
    orig = moco._enqueue
    moco._enqueue = lambda k: (keys_seen.append(k.clone()), orig(k))
    initial = moco.queue.clone()
    ptrs = []
    for i, n in enumerate([4, 3, 2, 5]):  # 4 + 3 + 2 = 9, then 5 wraps: slots 9, 0, 1, 2, 3
        moco.training_step((_images(n, seed=i), None))
        ptrs.append(int(moco.queue_ptr))
    assert ptrs == [4, 7, 9, 4]
    k0, k1, k2, k3 = keys_seen
    torch.testing.assert_close(moco.queue[0:4], k3[1:5])
    torch.testing.assert_close(moco.queue[4:7], k1)
    torch.testing.assert_close(moco.queue[7:9], k2)
    torch.testing.assert_close(moco.queue[9], k3[0])
    assert not torch.equal(moco.queue, initial)
    torch.testing.assert_close(moco.queue.norm(dim=1), torch.ones(10))


def test_moco_gradients_stay_on_the_query_side():
    moco = MoCo(_enc(), queue_size=8)
    out = moco.training_step((_images(), None))
    out["loss"].backward()
    key_params = [*moco.key_encoder.parameters(), *moco.key_head.parameters()]
    assert all(not p.requires_grad and p.grad is None for p in key_params)
    assert all(p.grad is not None for p in moco.encoder.parameters())
    trainable = {id(p) for p in moco.parameters() if p.requires_grad}
    assert trainable == {id(p) for p in [*moco.encoder.parameters(), *moco.head.parameters()]}
    assert moco.encoder is not moco.key_encoder


def test_moco_ema_update_formula():
    moco = MoCo(_enc(), queue_size=8, momentum=0.9)
    old_k = [p.clone() for p in moco.key_encoder.parameters()]
    opt = torch.optim.SGD([p for p in moco.parameters() if p.requires_grad], lr=0.5)
    moco.training_step((_images(), None))["loss"].backward()
    opt.step()
    new_q = [p.clone() for p in moco.encoder.parameters()]
    assert any(not torch.equal(a, b) for a, b in zip(old_k, new_q))  # the step did something
    moco.on_after_step(1, 10)
    for pk, ok, nq in zip(moco.key_encoder.parameters(), old_k, new_q):
        torch.testing.assert_close(pk, 0.9 * ok + 0.1 * nq)


@pytest.mark.parametrize("make", [
    lambda: SimCLR(_enc(), proj_dim=16),
    lambda: MoCo(_enc(), proj_dim=16, queue_size=16),
])
def test_forward_backward_and_loss_decreases_on_a_fixed_batch(make):
    method = make()
    out = method.training_step((_images(), None))
    assert out["loss"].dim() == 0 and torch.isfinite(out["loss"])
    out["loss"].backward()
    assert all(p.grad is not None for p in method.encoder.parameters())
    method.zero_grad()
    # The same 4 images every step; identity "augmentation" keeps the loss deterministic.
    del method.augment  # the default the first step built, a submodule
    method.augment = lambda x: (x, x)
    if isinstance(method, MoCo):
        # On one fixed batch the queue would fill with the batch's own keys (its positives
        # as negatives) and the loss would rightly rise; freeze it, and let the keys follow
        # the queries at once, to see the optimisation itself work.
        method._enqueue, method.momentum = (lambda keys: None), 0.0
    x = _images()
    hist = fit(method, torch.utils.data.TensorDataset(x, torch.zeros(4, dtype=torch.long)),
               TrainConfig(max_steps=15, batch_size=4, lr=1e-2, device="cpu", progress=False,
                           log_every=1, warmup_steps=0))
    losses = hist["loss"]
    assert losses[-1] < losses[0]


def test_alignment_and_uniformity_match_pairwise_loops():
    z1, z2 = _unit(6, 4, seed=1), _unit(6, 4, seed=2)
    align = sum(float((a - b).norm() ** 2) for a, b in zip(z1, z2)) / 6
    pairs = [(i, j) for i in range(6) for j in range(i + 1, 6)]
    pot = sum(math.exp(-2 * float((z1[i] - z1[j]).norm() ** 2)) for i, j in pairs) / len(pairs)
    assert float(alignment(3 * z1, z2)) == pytest.approx(align, rel=1e-5)
    assert float(uniformity(5 * z1)) == pytest.approx(math.log(pot), rel=1e-5)


def test_uniformity_orders_collapsed_below_spread():
    spread = _unit(256, 16, seed=3)
    collapsed = spread[:1] + 0.01 * _unit(256, 16, seed=4)
    assert float(uniformity(collapsed)) > -0.01 > -3.0 > float(uniformity(spread))
    with pytest.raises(ValueError, match="N >= 2"):
        uniformity(spread[:1])
    with pytest.raises(ValueError, match="same shape"):
        alignment(spread[:4], spread[:5])


def test_symmetric_moco_averages_both_directions_and_queues_both_keys():
    moco = MoCo(_enc(), proj_dim=6, queue_size=16, symmetric=True).eval()  # eval: fixed BN
    moco.augment = lambda x: (_images(4, seed=1), _images(4, seed=2))  # (x_q, x_k)
    queue = moco.queue.clone()
    loss = moco.training_step((_images(4), None))["loss"]
    x1, x2 = _images(4, seed=1), _images(4, seed=2)
    with torch.no_grad():
        k1 = moco.key_head(moco.key_encoder(x1))
        k2 = moco.key_head(moco.key_encoder(x2))
    q1, q2 = moco.project(x1), moco.project(x2)
    expected = (info_nce(q1, k2, queue, 0.2) + info_nce(q2, k1, queue, 0.2)) / 2
    torch.testing.assert_close(loss, expected)
    assert int(moco.queue_ptr) == 8  # both views' keys entered the queue
    torch.testing.assert_close(moco.queue[:4], nn.functional.normalize(k2, dim=1))
    torch.testing.assert_close(moco.queue[4:8], nn.functional.normalize(k1, dim=1))
    with pytest.raises(ValueError, match="queue_size=6"):
        MoCo(_enc(), queue_size=6, symmetric=True).training_step((_images(4), None))


def test_moco_batch_norm_heads_spread_the_initial_embeddings():
    plain = MoCo(_enc(), proj_dim=16, queue_size=16)
    normed = MoCo(_enc(), proj_dim=16, queue_size=16, batch_norm=True)
    assert not any(isinstance(m, nn.BatchNorm1d) for m in plain.head.modules())
    for head in (normed.head, normed.key_head):
        assert sum(isinstance(m, nn.BatchNorm1d) for m in head.modules()) == 2
    x = _images(16)
    q_plain, q_normed = (nn.functional.normalize(m.project(x), dim=1) for m in (plain, normed))
    off = ~torch.eye(16, dtype=torch.bool)
    # all-positive ReLU features: the plain head maps the images into a narrow cone, while the
    # normalised head centres the batch (its mean cosine is about 0)
    cos_plain = (q_plain @ q_plain.T)[off].mean()
    cos_normed = (q_normed @ q_normed.T)[off].mean()
    assert cos_plain > 0.4 and abs(cos_normed) < 0.1, (cos_plain, cos_normed)


def test_moco_shuffle_bn_groups_normalise_queries_and_keys_in_different_groups():
    torch.manual_seed(0)
    moco = MoCo(_enc(), proj_dim=6, queue_size=32, batch_norm=True, bn_groups=2)
    x_q, x_k = _images(8, seed=1), _images(8, seed=2)
    moco.augment = lambda x: (x_q, x_k)
    torch.manual_seed(3)
    order = torch.randperm(8)  # the permutation training_step will draw after this seed
    torch.manual_seed(3)
    moco.training_step((_images(8), None))
    keys = moco.queue[:8].clone()
    # the reference: keys of the permuted batch, normalised in two halves, then un-permuted
    ref = MoCo(_enc(), proj_dim=6, queue_size=32, batch_norm=True)
    ref.load_state_dict(moco.state_dict(), strict=False)  # same weights (BN stats aside)
    with torch.no_grad():
        k = torch.cat([ref.key_head(ref.key_encoder(c)) for c in x_k[order].chunk(2)])
        k = nn.functional.normalize(k[torch.argsort(order)], dim=1)
        whole = nn.functional.normalize(ref.key_head(ref.key_encoder(x_k)), dim=1)
    torch.testing.assert_close(keys, k)
    assert not torch.allclose(keys, whole, atol=1e-3)  # the groups did change the statistics
    with pytest.raises(ValueError, match="bn_groups=8 needs at least 16"):
        MoCo(_enc(), queue_size=32, bn_groups=8).training_step((_images(8), None))
    with pytest.raises(ValueError, match="bn_groups"):
        MoCo(_enc(), bn_groups=0)
