"""Tests for the chapter-1 pieces: k-means and its scores, Supervised and PseudoLabel."""

import pytest
import torch
from sklearn.metrics import normalized_mutual_info_score
from torch import nn

from minissl.cluster import cluster_accuracy, kmeans, match_clusters, nmi
from minissl.methods.supervised import PseudoLabel, Supervised


def blobs(n_per=50, k=4, dim=5, spread=0.1, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(k, dim, generator=g) * 10
    labels = torch.arange(k).repeat_interleave(n_per)
    return centres[labels] + spread * torch.randn(k * n_per, dim, generator=g), labels


def tiny_encoder(dim=8):
    # (B, 1, 8, 8) -> (B, dim): enough of an encoder to test a method's plumbing
    enc = nn.Sequential(nn.Flatten(), nn.Linear(64, dim), nn.BatchNorm1d(dim), nn.ReLU())
    enc.feature_dim = dim  # what a method reads to size its head
    return enc


# ----------------------------------------------------------------------------- k-means

@pytest.mark.parametrize("init", ["k-means++", "random"])
def test_kmeans_inertia_never_increases(init):
    x = torch.randn(300, 4, generator=torch.Generator().manual_seed(1))
    result = kmeans(x, 8, iters=30, init=init, seed=3)
    hist = result.history
    assert len(hist) >= 2
    assert all(b <= a * (1 + 1e-5) for a, b in zip(hist, hist[1:]))
    assert result.inertia == pytest.approx(hist[-1])
    # the reported inertia is that of the returned centroids and assignments
    direct = ((x - result.centroids[result.assignments]) ** 2).sum()
    assert float(direct) == pytest.approx(result.inertia, rel=1e-4)


def test_kmeans_recovers_separated_blobs():
    x, labels = blobs()
    result = kmeans(x, 4, seed=0)
    assert cluster_accuracy(result.assignments, labels) == 1.0
    assert nmi(result.assignments, labels) == pytest.approx(1.0)


def test_kmeans_leaves_no_cluster_empty():
    # 12 points in 3 tight groups and k=6: three clusters must take points from the others;
    # random init on duplicated points easily starts with coincident (so empty) centroids.
    x = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]]).repeat_interleave(4, 0)
    x = x + 0.01 * torch.arange(12.0).unsqueeze(1)
    for seed in range(5):
        result = kmeans(x, 6, init="random", seed=seed)
        assert torch.bincount(result.assignments, minlength=6).min() >= 1
    exact_duplicates = torch.zeros(10, 3)
    result = kmeans(exact_duplicates, 4)
    assert torch.bincount(result.assignments, minlength=4).min() >= 1


def test_kmeans_rejects_bad_arguments():
    with pytest.raises(ValueError, match="k must be"):
        kmeans(torch.zeros(3, 2), 5)
    with pytest.raises(ValueError, match="init"):
        kmeans(torch.zeros(3, 2), 2, init="forgy")


def test_kmeans_is_reproducible():
    x = torch.randn(200, 3, generator=torch.Generator().manual_seed(0))
    a = kmeans(x, 5, seed=7).assignments
    b = kmeans(x, 5, generator=torch.Generator().manual_seed(7)).assignments
    assert torch.equal(a, b)


# ----------------------------------------------------------------------------- scores

def test_nmi_matches_sklearn():
    g = torch.Generator().manual_seed(0)
    for k_a, k_b in [(3, 3), (5, 2), (7, 10)]:
        a = torch.randint(k_a, (200,), generator=g)
        noise = torch.randint(k_b, (200,), generator=g)
        b = torch.where(torch.rand(200, generator=g) < 0.5, a % k_b, noise)  # related to a
        expected = normalized_mutual_info_score(a.numpy(), b.numpy())
        assert nmi(a, b) == pytest.approx(expected, abs=1e-9)
    assert nmi([0, 0, 0], [1, 1, 1]) == normalized_mutual_info_score([0, 0, 0], [1, 1, 1])
    assert nmi([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(0.0, abs=1e-12)


def test_cluster_accuracy_is_one_for_a_renamed_labelling():
    labels = torch.randint(5, (100,), generator=torch.Generator().manual_seed(0))
    renamed = torch.tensor([3, 0, 4, 1, 2])[labels] + 10  # a permutation and new ids
    assert cluster_accuracy(renamed, labels) == 1.0
    assert match_clusters(renamed, labels) == {13: 0, 10: 1, 14: 2, 11: 3, 12: 4}


def test_cluster_accuracy_is_one_to_one():
    # two clusters cannot both be mapped to class 0: the best matching gets 3 of 4 right
    assert cluster_accuracy([0, 0, 1, 2], [0, 0, 0, 1]) == pytest.approx(0.75)


# ----------------------------------------------------------------------------- methods

def test_supervised_forward_backward_and_learns_a_fixed_batch():
    torch.manual_seed(0)
    model = Supervised(tiny_encoder(), num_classes=3)
    x, y = torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 1])
    losses = []
    for _ in range(20):
        out = model.training_step((x, y))
        model.zero_grad()
        out["loss"].backward()
        with torch.no_grad():  # plain gradient descent (torch.optim's first step imports a lot)
            for p in model.parameters():
                p -= 0.5 * p.grad
        losses.append(float(out["loss"].detach()))
    assert all(p.grad is not None for p in model.parameters())
    assert losses[-1] < 0.5 * losses[0]
    assert 0.0 <= float(out["acc"]) <= 1.0
    assert model.predict(x).shape == (4,)


def test_supervised_applies_augment_in_training():
    calls = []
    model = Supervised(tiny_encoder(), 2, augment=lambda x: calls.append(x.shape) or x.flip(3))
    model.training_step((torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 0, 1])))
    model.predict(torch.rand(3, 1, 8, 8))
    assert calls == [torch.Size([4, 1, 8, 8])]  # training only, never in predict


def make_pseudo(threshold, **kw):
    torch.manual_seed(0)
    xl, yl = torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 0])
    return PseudoLabel(tiny_encoder(), 3, xl, yl, threshold=threshold, ramp_up=0.0, **kw)


def test_pseudo_label_ignores_unlabelled_images_below_the_threshold():
    model = make_pseudo(threshold=1.01)  # a softmax never reaches 1.01: nothing passes
    x_u = torch.rand(6, 1, 8, 8)
    out = model.training_step((x_u, torch.full((6,), -1)))
    assert float(out["mask_rate"]) == 0.0
    assert float(out["loss_pseudo"]) == 0.0
    assert float(out["loss"].detach()) == pytest.approx(float(out["loss_labeled"]))
    # the labels that come with the unlabelled batch are never used
    other = model.training_step((x_u, torch.tensor([2, 1, 0, 2, 1, 0])))
    assert float(other["loss"].detach()) == pytest.approx(float(out["loss"].detach()), rel=1e-5)


def test_pseudo_label_uses_exactly_the_confident_images():
    model = make_pseudo(threshold=0.0)  # everything passes
    out = model.training_step((torch.rand(6, 1, 8, 8), torch.full((6,), -1)))
    assert float(out["mask_rate"]) == 1.0
    assert float(out["loss_pseudo"]) > 0.0
    total = float(out["loss_labeled"] + out["loss_pseudo"])
    assert float(out["loss"].detach()) == pytest.approx(total)
    out["loss"].backward()
    assert all(p.grad is not None for p in model.parameters())


def test_pseudo_label_weight_ramps_up():
    torch.manual_seed(0)
    model = PseudoLabel(tiny_encoder(), 3, torch.rand(3, 1, 8, 8), torch.tensor([0, 1, 2]),
                        unlabeled_weight=2.0, ramp_up=0.5)
    assert model.alpha == 0.0
    model.on_after_step(25, 100)
    assert model.alpha == pytest.approx(1.0)
    model.on_after_step(80, 100)
    assert model.alpha == pytest.approx(2.0)


def test_pseudo_label_from_supervised_copies_the_model():
    torch.manual_seed(0)
    sup = Supervised(tiny_encoder(), 3)
    pl = PseudoLabel.from_supervised(sup, torch.rand(3, 1, 8, 8), torch.tensor([0, 1, 2]))
    x = torch.rand(5, 1, 8, 8)
    assert torch.equal(pl.predict(x), sup.predict(x))
    with torch.no_grad():
        pl.head.weight.add_(1.0)
    assert not torch.equal(pl.head.weight, sup.head.weight)  # a copy, not shared
    assert pl.alpha == 1.0  # no ramp-up when starting from a trained model
