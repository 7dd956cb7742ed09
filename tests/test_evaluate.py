"""Tests for minissl.evaluate: kNN, few-label splits, probes, fine-tuning and metrics."""

import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from minissl import evaluate as ev
from minissl.nn import ConvNet


class StandIn(torch.utils.data.Dataset):
    """The parts of minissl.data.ImageDataset that evaluate relies on."""

    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.images[i], self.labels[i]


def halves(n: int, seed: int = 0):
    """An easy 2-class image task: class 0 is bright on the left half, class 1 on the right."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.rand(n, 1, 8, 8, generator=g) * 0.5
    x[y == 0, :, :, :4] += 0.5
    x[y == 1, :, :, 4:] += 0.5
    return x, y


def blobs(n_per_class: int, dim: int, k: int, spread: float, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(k, dim, generator=g) * spread
    y = torch.arange(k).repeat_interleave(n_per_class)
    return centres[y] + torch.randn(len(y), dim, generator=g), y


# ----------------------------------------------------------------------------- kNN


def knn_reference(ftr, ytr, fte, k, T, K):
    """Slow, obviously-correct weighted kNN: one test point at a time, in float64."""
    a = ftr.double() / ftr.double().norm(dim=1, keepdim=True)
    b = fte.double() / fte.double().norm(dim=1, keepdim=True)
    preds = []
    for q in b:
        sims = [(float(q @ a[i]), i) for i in range(len(a))]
        sims.sort(reverse=True)
        votes = [0.0] * K
        for s, i in sims[:k]:
            votes[int(ytr[i])] += float(np.exp(s / T))
        preds.append(max(range(K), key=lambda c: (votes[c], -c)))
    return torch.tensor(preds)


@pytest.mark.parametrize("k,T", [(1, 0.07), (5, 0.07), (7, 0.5), (200, 0.1)])
def test_knn_matches_slow_reference(k, T):
    g = torch.Generator().manual_seed(k)
    ftr, fte = torch.randn(60, 8, generator=g), torch.randn(25, 8, generator=g)
    ytr = torch.randint(0, 4, (60,), generator=g)
    pred = ev.knn_predict(ftr, ytr, fte, k=k, temperature=T, chunk_size=7)
    assert torch.equal(pred, knn_reference(ftr, ytr, fte, min(k, 60), T, 4))
    yte = torch.randint(0, 4, (25,), generator=g)
    acc = ev.knn_accuracy(ftr, ytr, fte, yte, k=k, temperature=T)
    assert acc == pytest.approx((pred == yte).float().mean().item())


def test_knn_k1_on_train_is_perfect_and_scale_invariant():
    f, y = blobs(10, 16, 5, spread=0.1)
    assert ev.knn_accuracy(f, y, f, y, k=1) == 1.0
    # cosine similarity: rescaling test points changes nothing
    assert torch.equal(ev.knn_predict(f, y, 3 * f[:7], k=5), ev.knn_predict(f, y, f[:7], k=5))


def test_knn_bad_inputs():
    f, y = torch.randn(10, 4), torch.arange(10) % 2
    with pytest.raises(ValueError, match=r"train_labels must have shape \(10,\)"):
        ev.knn_accuracy(f, y[:9], f, y)
    with pytest.raises(ValueError, match=r"test_features must have shape \(M, 4\)"):
        ev.knn_accuracy(f, y, torch.randn(10, 5), y)
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        ev.knn_predict(f[None], y, f)
    with pytest.raises(ValueError, match="unlabelled"):
        ev.knn_predict(f, y - 1, f)


# ----------------------------------------------------------------------------- few labels


def test_few_label_indices_counts_determinism_and_nesting():
    y = torch.arange(300) % 3
    idx = ev.few_label_indices(y, per_class=10, seed=1)
    assert len(idx) == 30 and len(idx.unique()) == 30
    assert torch.bincount(y[idx]).tolist() == [10, 10, 10]
    assert torch.equal(idx, ev.few_label_indices(y, per_class=10, seed=1))
    assert not torch.equal(idx, ev.few_label_indices(y, per_class=10, seed=2))
    small = ev.few_label_indices(y, per_class=4, seed=1)
    assert set(small.tolist()) <= set(idx.tolist())
    # numpy labels and unlabelled (-1) examples are fine
    y2 = np.concatenate([y.numpy(), -np.ones(5, dtype=np.int64)])
    assert torch.bincount(y[ev.few_label_indices(y2, 2)]).tolist() == [2, 2, 2]


def test_few_label_indices_errors():
    y = torch.tensor([0] * 20 + [1] * 3)
    with pytest.raises(ValueError, match="class 1 has only 3 examples"):
        ev.few_label_indices(y, per_class=5)
    with pytest.raises(ValueError, match="class 2 has only 0 examples"):
        ev.few_label_indices(y, per_class=2, num_classes=3)


# ----------------------------------------------------------------------------- linear probe


def test_linear_probe_separates_gaussian_blobs_deterministically():
    xtr, ytr = blobs(10, 64, 5, spread=1.0, seed=0)
    xte, yte = blobs(40, 64, 5, spread=1.0, seed=0)
    threads = torch.get_num_threads()
    res = ev.linear_probe(xtr, ytr, xte, yte)
    assert torch.get_num_threads() == threads  # the one-thread fast path restores the setting
    assert res.accuracy > 0.95 and res.train_accuracy == 1.0
    assert res.predictions.shape == (200,) and res.predictions.dtype == torch.int64
    # the classifier holds the standardisation: raw features in, the same predictions out
    assert torch.equal(res.classifier(xte).argmax(1), res.predictions)
    again = ev.linear_probe(xtr, ytr, xte, yte)
    assert torch.equal(again.classifier.linear.weight, res.classifier.linear.weight)


def test_linear_probe_is_competitive_with_sklearn_on_digits():
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    X, y = torch.tensor(X, dtype=torch.float32) / 16, torch.tensor(y)
    idx = ev.few_label_indices(y[:1000], per_class=10, seed=0)
    res = ev.linear_probe(X[idx], y[idx], X[1000:], y[1000:])
    scaler = StandardScaler().fit(X[idx].numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk = LogisticRegression(C=1.0, max_iter=1000).fit(scaler.transform(X[idx]), y[idx])
    sk_acc = sk.score(scaler.transform(X[1000:]), y[1000:].numpy())
    assert res.accuracy > 0.8
    assert res.accuracy > sk_acc - 0.03


def test_linear_probe_bad_inputs():
    f, y = torch.randn(10, 4), torch.arange(10) % 2
    with pytest.raises(ValueError, match="same encoder"):
        ev.linear_probe(f, y, torch.randn(10, 5), y)
    with pytest.raises(ValueError, match=r"test_labels must have shape \(10,\)"):
        ev.linear_probe(f, y, f, y[:3])
    with pytest.raises(ValueError, match=r"train_features must have shape \(N, D\)"):
        ev.linear_probe(f[:, :, None], y, f, y)


# ----------------------------------------------------------------------------- features


def small_encoder():
    torch.manual_seed(0)
    enc = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5), nn.Flatten())
    enc[1].eval()  # a frozen BN inside a training model: its mode must survive too
    return enc


def test_extract_features_fast_path_restores_modes():
    enc = small_encoder()
    x, y = halves(10)
    f, labels = ev.extract_features(enc, StandIn(x, y), batch_size=4)
    assert f.shape == (10, 4 * 6 * 6) and f.dtype == torch.float32
    assert labels.dtype == torch.int64 and torch.equal(labels, y)
    assert enc.training and not enc[1].training and enc[2].training
    with torch.no_grad():
        expected = enc.eval()(x)
    assert torch.allclose(f, expected, atol=1e-6)


def test_extract_features_dataset_and_loader_paths_agree():
    enc = small_encoder()
    x, y = halves(9)
    fast, _ = ev.extract_features(enc, StandIn(x, y))
    slow, ys = ev.extract_features(enc, TensorDataset(x, y), batch_size=4)
    loader, _ = ev.extract_features(enc, DataLoader(TensorDataset(x, y), batch_size=5))
    pair, _ = ev.extract_features(enc, (x, y))
    assert torch.equal(ys, y)
    for other in (slow, loader, pair):
        assert torch.allclose(fast, other, atol=1e-6)
    with pytest.raises(ValueError, match="cannot read images"):
        ev.extract_features(enc, x)


# ----------------------------------------------------------------------------- fine-tuning


def test_fine_tune_learns_and_leaves_the_encoder_alone():
    x, y = halves(64, seed=0)
    xt, yt = halves(64, seed=1)
    torch.manual_seed(0)
    enc = ConvNet(in_channels=1, width=4, depth=2)
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    res = ev.fine_tune(enc, StandIn(x, y), StandIn(xt, yt), num_classes=2, epochs=12, lr=1e-2,
                       batch_size=16)
    assert res.accuracy > 0.8 and res.predictions.shape == (64,)
    after = enc.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN running stats too
    assert enc.training
    # the fine-tuned copy did change, and the run is reproducible
    tuned = res.model[0].state_dict()
    assert not all(torch.equal(before[k], tuned[k]) for k in before)
    again = ev.fine_tune(enc, StandIn(x, y), StandIn(xt, yt), num_classes=2, epochs=12, lr=1e-2,
                         batch_size=16)
    assert torch.equal(again.predictions, res.predictions)


def test_fine_tune_augments_every_labelled_batch_reproducibly():
    x, y = halves(32, seed=0)
    seen = []

    def flip_some(images, generator):
        seen.append(images.shape)
        keep = torch.rand(len(images), generator=generator) < 0.5  # drawn from the run's seed
        return torch.where(keep[:, None, None, None], images, images.flip(-1))

    def run(augment):
        torch.manual_seed(0)
        enc = ConvNet(in_channels=1, width=4, depth=2)
        return ev.fine_tune(enc, (x, y), (x, y), num_classes=2, epochs=3, batch_size=8,
                            lr=1e-2, augment=augment)

    plain, first = run(None), run(flip_some)
    assert seen == [torch.Size([8, 1, 8, 8])] * 12  # 3 epochs of 4 batches, each augmented
    assert torch.equal(run(flip_some).model[1].weight, first.model[1].weight)  # seeded
    assert not torch.equal(plain.model[1].weight, first.model[1].weight)


def test_fine_tune_decays_the_learning_rate_to_zero_unless_asked_not_to(monkeypatch):
    x, y = halves(32, seed=0)
    seen = []
    real_step = torch.optim.AdamW.step

    def step(self, *args, **kwargs):
        seen.append([group["lr"] for group in self.param_groups])
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", step)
    enc = ConvNet(in_channels=1, width=4, depth=2)
    ev.fine_tune(enc, (x, y), (x, y), num_classes=2, epochs=2, batch_size=8, lr=1e-2)
    assert len(seen) == 8 and seen[0] == pytest.approx([1e-2, 1e-3])  # head, encoder
    assert all(a[0] > b[0] for a, b in zip(seen, seen[1:]))  # falls at every step
    assert seen[-1][0] == pytest.approx(1e-2 * 0.5 * (1 + math.cos(math.pi * 7 / 8)))
    seen.clear()
    ev.fine_tune(enc, (x, y), (x, y), num_classes=2, epochs=2, batch_size=8, lr=1e-2,
                 schedule="constant")
    assert seen == [pytest.approx([1e-2, 1e-3])] * 8
    with pytest.raises(ValueError, match="schedule must be 'cosine' or 'constant'"):
        ev.fine_tune(enc, (x, y), (x, y), num_classes=2, schedule="linear")


def test_fine_tune_frozen_keeps_encoder_weights():
    x, y = halves(32)
    enc = ConvNet(in_channels=1, width=4, depth=2)
    res = ev.fine_tune(enc, TensorDataset(x, y), (x, y), num_classes=2, epochs=2,
                       freeze_encoder=True)
    for k, v in enc.state_dict().items():
        assert torch.equal(v, res.model[0].state_dict()[k]), k


# ----------------------------------------------------------------------------- metrics


def test_classification_metrics_match_sklearn():
    from sklearn import metrics as skm

    g = torch.Generator().manual_seed(0)
    t = torch.randint(0, 5, (200,), generator=g)
    p = torch.where(torch.rand(200, generator=g) < 0.6, t, torch.randint(0, 4, (200,),
                                                                         generator=g))
    m = ev.classification_metrics(t, p)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(t, p))
    for name in ("precision", "recall", "f1"):
        ref = getattr(skm, f"{name}_score")(t, p, average="macro", zero_division=0)
        assert m[name] == pytest.approx(ref)
    P, R, F, S = skm.precision_recall_fscore_support(t, p, zero_division=0)
    np.testing.assert_allclose(m["per_class_precision"], P)
    np.testing.assert_allclose(m["per_class_recall"], R)
    np.testing.assert_allclose(m["per_class_f1"], F)
    np.testing.assert_array_equal(m["support"], S)
    np.testing.assert_array_equal(m["confusion"], skm.confusion_matrix(t, p))
    # a class that never occurs: in the confusion matrix, not in the macro averages
    m7 = ev.classification_metrics(t.numpy(), p.tolist(), num_classes=7)
    assert m7["confusion"].shape == (7, 7) and m7["f1"] == pytest.approx(m["f1"])


def test_classification_metrics_bad_inputs():
    with pytest.raises(ValueError, match="y_true has 3 labels but y_pred has 2"):
        ev.classification_metrics([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        ev.classification_metrics([0, 1], [0, 2], num_classes=2)


# ----------------------------------------------------------------------------- all at once


def test_evaluate_encoder_on_an_easy_task():
    x, y = halves(60, seed=0)
    xt, yt = halves(40, seed=1)
    scores = ev.evaluate_encoder(nn.Flatten(), StandIn(x, y), StandIn(xt, yt),
                                 labels_per_class=10, k=5)
    assert set(scores) == {"knn", "linear"}
    assert scores["knn"] > 0.9 and scores["linear"] > 0.9
    # unlabelled training images (label -1) are left out of both evaluations
    x2, y2 = torch.cat([x, torch.rand(10, 1, 8, 8)]), torch.cat([y, -torch.ones(10).long()])
    assert ev.evaluate_encoder(nn.Flatten(), StandIn(x2, y2), StandIn(xt, yt), k=5) == scores


def test_evaluate_encoder_averages_the_probe_over_label_draws():
    # A hard task (noise features), so that different draws of 2 labels per class disagree.
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(60, 1, 4, 4, generator=g), torch.arange(60) % 3
    xt, yt = torch.rand(60, 1, 4, 4, generator=g), torch.arange(60) % 3
    train, test = StandIn(x, y), StandIn(xt, yt)
    three = ev.evaluate_encoder(nn.Flatten(), train, test, labels_per_class=2, seed=4, draws=3)
    per_draw = three["linear_per_draw"]
    assert len(per_draw) == 3 and len(set(per_draw)) > 1
    assert three["linear"] == pytest.approx(sum(per_draw) / 3)
    for j in range(3):  # draw j is the single draw of seed + j
        one = ev.evaluate_encoder(nn.Flatten(), train, test, labels_per_class=2, seed=4 + j)
        assert set(one) == {"knn", "linear"} and one["knn"] == three["knn"]
        assert one["linear"] == per_draw[j]
    with pytest.raises(ValueError, match="draws must be at least 1"):
        ev.evaluate_encoder(nn.Flatten(), train, test, draws=0)


def test_real_image_dataset_fast_path_and_same_few_labels_as_data_module():
    from minissl.data import ImageDataset, few_labels

    x, y = halves(40)
    ds = ImageDataset(x, y, ["left", "right"], "halves")
    f, labels = ev.extract_features(nn.Flatten(), ds)
    assert torch.equal(f, x.flatten(1)) and torch.equal(labels, y)
    # both ways of drawing "10 labels per class" pick the same images for the same seed
    idx = ev.few_label_indices(ds.labels, per_class=10, seed=3)
    sub = few_labels(ds, 10, seed=3)
    assert sorted(map(tuple, sub.images.flatten(1).tolist())) == sorted(
        map(tuple, x[idx].flatten(1).tolist())
    )
