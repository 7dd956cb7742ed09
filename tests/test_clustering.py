"""Sinkhorn, SwAV loss, k-means with re-splitting, SwAV and DeepCluster: references, invariants."""

from __future__ import annotations

import io
import math
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from minissl.cluster import _split_empty, kmeans, nmi, pca_whiten
from minissl.losses import sinkhorn, swav_loss
from minissl.methods import DeepCluster, SwAV
from minissl.methods.deepcluster import uniform_label_indices
from minissl.nn import ConvNet
from minissl.train import TrainConfig, fit


def sinkhorn_reference(scores, epsilon, iterations):
    """SwAV's Algorithm (Caron et al., 2020, App. A.1), one number at a time, in float64."""
    b, k = len(scores), len(scores[0])
    q = [[math.exp(float(scores[i][j]) / epsilon) for i in range(b)] for j in range(k)]  # (K, B)
    total = sum(map(sum, q))
    q = [[v / total for v in row] for row in q]
    for _ in range(iterations):
        for j in range(k):  # each prototype gets 1/K of the mass
            s = sum(q[j])
            q[j] = [v / s / k for v in q[j]]
        for i in range(b):  # each sample gets 1/B of the mass
            s = sum(q[j][i] for j in range(k))
            for j in range(k):
                q[j][i] = q[j][i] / s / b
    return torch.tensor([[q[j][i] * b for j in range(k)] for i in range(b)], dtype=torch.float64)


def _scores(b, k, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, k, generator=g) * 2 - 1  # cosine similarities lie in [-1, 1]


# ----------------------------------------------------------------------------- sinkhorn


@pytest.mark.parametrize("iterations", [1, 3, 10])
@pytest.mark.parametrize("epsilon", [0.05, 0.5])
def test_sinkhorn_matches_slow_reference(iterations, epsilon):
    s = _scores(6, 4)
    want = sinkhorn_reference(s.tolist(), epsilon, iterations)
    got = sinkhorn(s, epsilon, iterations)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-6)


def test_sinkhorn_marginals():
    b, k = 64, 16
    q = sinkhorn(_scores(b, k), epsilon=0.05, iterations=3)
    assert q.shape == (b, k) and bool((q >= 0).all())
    torch.testing.assert_close(q.sum(1), torch.ones(b))  # every row is a distribution
    cols = q.sum(0)  # 3 iterations: about B/K each, not exactly
    assert bool(((cols - b / k).abs() < 0.5 * b / k).all()), cols
    softmax_cols = torch.softmax(_scores(b, k) / 0.05, dim=1).sum(0)  # no balancing at all
    assert (cols - b / k).abs().sum() < 0.5 * (softmax_cols - b / k).abs().sum()
    q = sinkhorn(_scores(b, k), epsilon=0.05, iterations=200)  # converged: equal partition
    torch.testing.assert_close(q.sum(0), torch.full((k,), b / k), rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(q.sum(1), torch.ones(b))


def test_sinkhorn_balances_a_batch_that_prefers_one_prototype():
    s = _scores(32, 4)
    s[:, 0] += 2.5  # every sample scores prototype 0 highest
    assert s.argmax(1).unique().tolist() == [0]
    q = sinkhorn(s, epsilon=0.05, iterations=50)
    assert sorted(q.argmax(1).unique().tolist()) == [0, 1, 2, 3]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_sinkhorn_is_stable(dtype):
    # |score| <= 1 with epsilon 0.05 means exp(+-20); far larger scores must work too
    for scale in (1.0, 100.0):
        s = (torch.sign(_scores(16, 8)) * scale).to(dtype)
        q = sinkhorn(s, epsilon=0.05)
        assert q.dtype == torch.float32 and bool(torch.isfinite(q).all()), scale
        torch.testing.assert_close(q.sum(1), torch.ones(16))


def test_sinkhorn_gives_no_gradient_and_checks_input():
    s = _scores(4, 3).requires_grad_()
    assert not sinkhorn(s).requires_grad
    with pytest.raises(ValueError, match=r"shape \(B, K\); got \(4,\)"):
        sinkhorn(torch.rand(4))
    with pytest.raises(ValueError, match="epsilon"):
        sinkhorn(torch.rand(4, 3), epsilon=0.0)


# ------------------------------------------------------------------ sinkhorn under DDP

WORLD = 2


def _worker(rank: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        s = _scores(12, 5)
        n = len(s) // WORLD
        q = sinkhorn(s[rank * n:(rank + 1) * n], epsilon=0.05, iterations=3)
        torch.save(q, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_sinkhorn_across_processes_equals_one_process_on_the_whole_batch(tmp_path):
    mp.start_processes(_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True,
                       start_method="fork")
    parts = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    torch.testing.assert_close(torch.cat(parts), sinkhorn(_scores(12, 5), 0.05, 3))


# ----------------------------------------------------------------------------- swav_loss


def _l(scores, codes, t):
    """l(z, q) = -sum_k q_k log softmax(z^T c / t)_k, averaged over the batch (eq. 2)."""
    return float(-(codes * torch.log_softmax(scores / t, dim=1)).sum(1).mean())


def test_swav_loss_is_eq_1_and_symmetric_in_the_views():
    s1, s2 = _scores(8, 5, seed=1), _scores(8, 5, seed=2)
    q1, q2 = sinkhorn(s1), sinkhorn(s2)
    loss = swav_loss([s1, s2], [q1, q2], temperature=0.1)
    # eq. 1: L(z_t, z_s) = l(z_t, q_s) + l(z_s, q_t); our loss averages the two terms
    assert loss.item() == pytest.approx((_l(s1, q2, 0.1) + _l(s2, q1, 0.1)) / 2, rel=1e-5)
    swapped = swav_loss([s2, s1], [q2, q1], temperature=0.1)
    assert swapped.item() == pytest.approx(loss.item(), rel=1e-6)


def test_swav_loss_with_multi_crop():
    s = [_scores(4, 3, seed=i) for i in range(5)]  # 2 global crops, then 3 local ones
    q = [sinkhorn(s[0]), sinkhorn(s[1])]
    t = 0.2
    want = sum(sum(_l(s[v], q[i], t) for v in range(5) if v != i) / 4 for i in range(2)) / 2
    assert swav_loss(s, q, t).item() == pytest.approx(want, rel=1e-5)


def test_swav_loss_gradient_reaches_scores_not_codes():
    s1, s2 = _scores(4, 3, 1).requires_grad_(), _scores(4, 3, 2).requires_grad_()
    q1, q2 = torch.softmax(s1, 1), torch.softmax(s2, 1)  # codes still attached to the graph
    swav_loss([s1, s2], [q1, q2]).backward()
    # had the codes been differentiated, the gradient would differ from this detached one
    s1d, s2d = s1.detach().clone().requires_grad_(), s2.detach().clone().requires_grad_()
    swav_loss([s1d, s2d], [q1.detach(), q2.detach()]).backward()
    torch.testing.assert_close(s1.grad, s1d.grad)


def test_swav_loss_checks_its_input():
    s = _scores(4, 3)
    with pytest.raises(ValueError, match="at least 2 views"):
        swav_loss([s], [s])
    with pytest.raises(ValueError, match=r"codes_per_view\[1\].*\(4, 3\); got \(4, 2\)"):
        swav_loss([s, s], [s, s[:, :2]])


# ----------------------------------------------------------------------------- k-means


def _blobs(n=200, k=5, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(k, d, generator=g) * 4
    return centres[torch.randint(k, (n,), generator=g)] + torch.randn(n, d, generator=g)


@pytest.mark.parametrize("empty", ["farthest", "split", "keep"])
def test_kmeans_reduces_inertia(empty):
    x = _blobs()
    r = kmeans(x, 8, iters=30, init="random", seed=1, empty=empty)
    assert all(b <= a + 1e-3 for a, b in zip(r.history, r.history[1:])), r.history
    assert r.history[-1] < r.history[0]
    d2 = ((x - r.centroids[r.assignments]) ** 2).sum(1)  # the reported inertia is the real one
    assert r.inertia == pytest.approx(float(d2.sum()), rel=1e-4)


def test_kmeans_with_split_never_leaves_a_cluster_empty():
    # 4 distinct points, 10 copies each, and 7 clusters: 3 clusters must split a group of copies
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(0)).repeat(10, 1)
    for seed in range(5):
        for empty in ("split", "farthest"):
            r = kmeans(x, 7, init="random", seed=seed, empty=empty)
            assert torch.bincount(r.assignments, minlength=7).min() >= 1, (seed, empty)
    kept = kmeans(x, 7, init="random", seed=0, empty="keep")  # the naive variant: empty ones
    assert torch.bincount(kept.assignments, minlength=7).min() == 0


def test_split_empty_halves_a_large_cluster():
    x = torch.cat([torch.randn(30, 2), torch.randn(2, 2) + 10])  # one big cluster, one small
    assign = torch.cat([torch.zeros(30), torch.ones(2)]).long()
    c = torch.stack([x[:30].mean(0), x[30:].mean(0), torch.zeros(2)])  # cluster 2 is empty
    d2 = ((x - c[assign]) ** 2).sum(1)
    before = float(d2.sum())
    c, d2, assign = _split_empty(x, c, d2, assign, 3, torch.Generator().manual_seed(0))
    counts = torch.bincount(assign, minlength=3)
    assert counts[1] == 2 and counts[0] > 0 and counts[2] > 0  # the big one was split
    assert float(d2.sum()) < before
    torch.testing.assert_close(d2, ((x - c[assign]) ** 2).sum(1))


def test_kmeans_rejects_unknown_empty_rule():
    with pytest.raises(ValueError, match="empty must be"):
        kmeans(torch.rand(5, 2), 2, empty="drop")


def test_pca_whiten_decorrelates_and_normalises():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 6, generator=g) @ torch.randn(6, 6, generator=g)  # correlated
    y = pca_whiten(x, dim=4, normalize=False)
    cov = torch.cov(y.T)
    torch.testing.assert_close(cov, torch.eye(4), atol=1e-3, rtol=0)
    torch.testing.assert_close(pca_whiten(x, dim=4).norm(dim=1), torch.ones(400))


def test_uniform_label_indices_is_uniform_over_labels():
    labels = torch.cat([torch.zeros(900), torch.ones(90), torch.full((10,), 5.0)]).long()
    idx = uniform_label_indices(labels, 6000, torch.Generator().manual_seed(0))
    share = torch.bincount(labels[idx], minlength=6)[[0, 1, 5]].float() / 6000
    torch.testing.assert_close(share, torch.full((3,), 1 / 3), atol=0.03, rtol=0)
    within = torch.bincount(idx[labels[idx] == 5] - 990, minlength=10)  # members equally likely
    assert within.min() > 0.5 * within.float().mean()


# ----------------------------------------------------------------------------- SwAV


def _swav(**kw):
    torch.manual_seed(0)
    enc = ConvNet(in_channels=3, width=4)
    return SwAV(enc, proj_dim=8, hidden_dim=16, num_prototypes=6, n_local=2, **kw)


def test_swav_prototypes_stay_unit_norm_and_are_frozen_at_first():
    swav = _swav(freeze_prototypes_steps=3)
    w0 = swav.prototypes.weight.detach().clone()
    torch.testing.assert_close(w0.norm(dim=1), torch.ones(6))
    x = torch.rand(16, 3, 12, 12)
    cfg = TrainConfig(max_steps=3, batch_size=8, lr=0.05, progress=False)
    fit(swav, x, cfg)
    torch.testing.assert_close(swav.prototypes.weight.detach(), w0)  # frozen for 3 steps
    fit(swav, x, cfg, max_steps=6)  # steps 3, 4 and 5 update them
    w = swav.prototypes.weight.detach()
    assert not torch.allclose(w, w0)
    torch.testing.assert_close(w.norm(dim=1), torch.ones(6))


def test_swav_queue_fills_and_joins_sinkhorn():
    swav = _swav(queue_size=8)
    x = torch.rand(4, 3, 12, 12)
    out = swav.training_step((x, None))
    assert int(swav.queue_filled) == 4 and torch.isfinite(out["loss"])
    assert bool((swav.queue[:, :4].norm(dim=2) > 0.99).all())  # unit embeddings in front
    assert bool((swav.queue[:, 4:] == 0).all())
    swav.training_step((x, None))
    assert int(swav.queue_filled) == 8
    seen = {}
    real = swav._codes

    def spy(scores, i, z):
        seen[i] = len(swav.queue[i]) if int(swav.queue_filled) >= 8 else 0
        return real(scores, i, z)

    swav._codes = spy
    swav.training_step((x, None))  # the queue is full: its 8 rows join the batch's 4
    assert seen == {0: 8, 1: 8}


def test_swav_without_equal_partition_and_bad_views():
    out = _swav(equal_partition=False).training_step((torch.rand(4, 3, 12, 12), None))
    assert torch.isfinite(out["loss"]) and 1 <= out["prototypes_used"] <= 4
    with pytest.raises(ValueError, match="at least 2 views"):
        SwAV(ConvNet(in_channels=3, width=4), n_global=1, n_local=0)


def test_swav_assign_gives_a_prototype_per_image():
    swav = _swav()
    a = swav.assign(torch.rand(10, 3, 12, 12), batch_size=4)
    assert a.shape == (10,) and a.dtype == torch.long and int(a.max()) < 6
    assert swav.training  # left in train mode


# ----------------------------------------------------------------------------- DeepCluster


def _deepcluster(n=48, **kw):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 3, 8, 8, generator=g)
    y = torch.arange(n) % 3
    enc = ConvNet(in_channels=3, width=4)
    return DeepCluster(enc, data=(x, y), num_clusters=6, pca_dim=8, **kw), x


def test_deepcluster_reclusters_every_epoch_and_reports_nmi():
    dc, x = _deepcluster()
    cfg = TrainConfig(max_steps=7, batch_size=16, lr=0.01, progress=False)
    h = fit(dc, x, cfg)  # 48 images / 16 = 3 steps an epoch: clusterings at steps 0, 3, 6
    assert [r["step"] for r in dc.rounds] == [0, 3, 6]
    assert "nmi_prev" not in dc.rounds[0] and "nmi_prev" in dc.rounds[1]
    for r in dc.rounds:
        assert r["clusters_used"] == 6 and 0 <= r.get("nmi_labels", 0) <= 1
    assert len(h["nmi_labels"]) == 3 and len(h["nmi_prev"]) == 2
    assert nmi(dc.assignments, dc.assignments) == 1.0
    assert int(dc.assignments.min()) >= 0 and torch.bincount(dc.assignments).min() > 0


def test_deepcluster_resets_the_classifier_at_each_clustering():
    dc, x = _deepcluster(recluster_every=2)
    dc.training_step((x[:16], None))
    w = dc.classifier.weight.detach().clone()
    dc.on_after_step(1, 10)
    dc.training_step((x[:16], None))  # no clustering yet: same classifier
    assert torch.equal(dc.classifier.weight, w)
    dc.on_after_step(2, 10)
    dc.training_step((x[:16], None))
    assert not torch.equal(dc.classifier.weight, w) and len(dc.rounds) == 2


class _Recorder(torch.nn.Module):
    """An 'augmentation' that keeps a copy of every batch it sees."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x):
        self.seen.append(x.clone())
        return x


def test_deepcluster_samples_uniformly_over_pseudo_labels():
    dc, x = _deepcluster(n=60, augment=_Recorder())
    dc.training_step((x[:8], None))
    dc.assignments.copy_(torch.cat([torch.zeros(54), torch.arange(1, 7)]).long() % 6)
    drawn = dc.augment.seen
    drawn.clear()
    for _ in range(20):
        dc.training_step((x[:30], None))
    images = torch.cat(drawn)  # which cluster each drawn image belongs to
    match = torch.cdist(images.flatten(1), x.flatten(1)).argmin(1)  # (M,) index of each
    share_big = float((dc.assignments[match] == 0).float().mean())
    assert share_big < 0.35  # cluster 0 holds 55 of 60 images but only ~1/6 of the draws


def test_deepcluster_checks_its_arguments():
    enc = ConvNet(in_channels=3, width=4)
    with pytest.raises(ValueError, match="num_clusters must be between 2"):
        DeepCluster(enc, data=torch.rand(4, 3, 8, 8), num_clusters=5)
    with pytest.raises(TypeError, match="ImageDataset"):
        DeepCluster(enc, data=[1, 2, 3])


def test_deepcluster_without_whitening_clusters_the_normalised_raw_features():
    dc, x = _deepcluster(whiten=False)
    record = dc.cluster()
    f = torch.nn.functional.normalize(dc.features(), dim=1)  # what k-means must have seen
    g = torch.Generator().manual_seed(dc.seed * 1_000_003)  # the first clustering's seed
    expected = kmeans(f, 6, iters=dc.kmeans_iters, generator=g, empty="split").assignments
    assert torch.equal(dc.assignments, expected) and record["clusters_used"] == 6
    whitened, _ = _deepcluster()  # the default, the paper's PCA-whitening, clusters otherwise
    whitened.cluster()
    assert not torch.equal(whitened.assignments, dc.assignments)


def test_deepcluster_keeps_its_rounds_in_its_state_dict():
    # Checkpoints and the run cache hold the state dict; the clustering records, which also
    # seed each k-means, must come back with the weights.
    from minissl import data, recipes

    train = data.load("shapes", "train", n=64, size=16)
    method, cfg = recipes.build("deepcluster", train, epochs=2, width=4, batch_size=32)
    fit(method, train, cfg, progress=False)
    assert len(method.rounds) == 2
    again, _ = recipes.build("deepcluster", train, epochs=2, width=4, batch_size=32)
    again.load_state_dict(method.state_dict())
    assert again.rounds == method.rounds and again.rounds is not method.rounds
    torch.save(method.state_dict(), buffer := io.BytesIO())
    buffer.seek(0)
    assert torch.load(buffer, weights_only=True)["_extra_state"]["rounds"] == method.rounds
