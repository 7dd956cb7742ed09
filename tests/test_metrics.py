"""Classification metrics agree with scikit-learn; the label-efficiency helper gives every
protocol the same nested label draws; fine-tuning budgets are counted in steps."""

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from minissl import evaluate as ev


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classification_metrics_match_scikit_learn(seed):
    g = torch.Generator().manual_seed(seed)
    y_true = torch.randint(0, 5, (300,), generator=g)
    noisy = torch.randint(0, 5, (300,), generator=g)
    y_pred = torch.where(torch.rand(300, generator=g) < 0.6, y_true, noisy)
    m = ev.classification_metrics(y_true, y_pred, num_classes=5)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=range(5),
                                                 zero_division=0)
    assert m["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    np.testing.assert_allclose(m["per_class_precision"], p)
    np.testing.assert_allclose(m["per_class_recall"], r)
    np.testing.assert_allclose(m["per_class_f1"], f)
    np.testing.assert_array_equal(m["support"], s)
    assert m["precision"] == pytest.approx(p.mean())
    assert m["f1"] == pytest.approx(f.mean())
    np.testing.assert_array_equal(m["confusion"], confusion_matrix(y_true, y_pred))


def test_a_class_never_predicted_has_zero_precision_not_nan():
    m = ev.classification_metrics([0, 1, 2, 2], [0, 0, 2, 2], num_classes=3)
    assert m["per_class_precision"].tolist() == [0.5, 0.0, 1.0]
    assert m["per_class_recall"].tolist() == [1.0, 0.0, 1.0]
    assert m["confusion"].sum() == 4 and np.isfinite(m["f1"])


def test_label_efficiency_gives_every_protocol_the_same_nested_draws():
    y = torch.arange(200) % 4
    seen = {"a": [], "b": []}

    def record(name):
        def fn(idx, seed):
            seen[name].append((seed, idx.clone()))
            return float(len(idx)) + seed
        return fn

    out = ev.label_efficiency({"a": record("a"), "b": record("b")}, y, budgets=[1, 5, 10],
                              seeds=[0, 3])
    assert set(out) == {"a", "b"} and out["a"].shape == (2, 3)
    np.testing.assert_array_equal(out["a"], [[4, 20, 40], [7, 23, 43]])
    for (sa, ia), (sb, ib) in zip(seen["a"], seen["b"]):
        assert sa == sb and torch.equal(ia, ib)  # the same draw for both protocols
    one, five, ten = (set(i.tolist()) for _, i in seen["a"][:3])
    assert one < five < ten  # nested: more labels add examples, never redraw them
    for _, idx in seen["a"]:
        counts = torch.bincount(y[idx], minlength=4)
        assert (counts == counts[0]).all()  # balanced over classes


def test_label_efficiency_errors():
    y = torch.arange(8) % 2
    with pytest.raises(ValueError, match="protocols is empty"):
        ev.label_efficiency({}, y, budgets=[1])
    with pytest.raises(ValueError, match="at least one budget"):
        ev.label_efficiency({"a": lambda i, s: 0.0}, y, budgets=[])
    with pytest.raises(ValueError, match="has only"):
        ev.label_efficiency({"a": lambda i, s: 0.0}, y, budgets=[50])


def test_epochs_for_steps_keeps_the_number_of_steps_about_fixed():
    for n in (8, 40, 80, 400):
        epochs = ev.epochs_for_steps(n, batch_size=64, steps=100)
        steps = epochs * -(-n // 64)
        assert abs(steps - 100) <= -(-n // 64) / 2 + 1e-9, (n, epochs, steps)
    assert ev.epochs_for_steps(1000, 64, 1) == 1
    with pytest.raises(ValueError, match="must be positive"):
        ev.epochs_for_steps(0, 64, 100)
