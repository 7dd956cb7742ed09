"""Scores across label budgets and the book's summary of an encoder (kNN and a probe).

Also the ridge-regression probe of continuous targets, :func:`ridge_r2`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from minissl.data.dataset import few_label_indices
from minissl.evaluate._data import count_classes
from minissl.evaluate.features import extract_features, knn_accuracy
from minissl.evaluate.probe import linear_probe


def epochs_for_steps(num_examples: int, batch_size: int, steps: int) -> int:
    """Epochs of :func:`fine_tune` that give about ``steps`` optimizer steps on a training set.

    With few labels an epoch is one or two steps, so a fixed number of epochs would train
    the 1-label-per-class model far less than the 50-label one. Comparing label budgets at a
    fixed number of *steps* gives every budget the same optimisation.

    Args:
        num_examples: N, size of the labelled training set.
        batch_size: examples per step.
        steps: the wanted number of optimizer steps (at least 1).

    Example:
        >>> epochs_for_steps(8, 64, 100), epochs_for_steps(400, 64, 100)
        (100, 14)
    """
    if num_examples < 1 or batch_size < 1 or steps < 1:
        raise ValueError(
            f"num_examples, batch_size and steps must be positive; got {num_examples}, "
            f"{batch_size}, {steps}"
        )
    per_epoch = -(-num_examples // batch_size)  # ceil: the last partial batch is a step too
    return max(1, round(steps / per_epoch))


def label_efficiency(
    protocols: dict[str, Callable[[torch.Tensor, int], float]], labels,
    budgets: Sequence[int], seeds: Sequence[int] = (0,), num_classes: int | None = None,
) -> dict[str, np.ndarray]:
    """Score several evaluation protocols at several label budgets, on the same label draws.

    For every budget b (labels per class) and seed s, the labelled examples are
    ``few_label_indices(labels, b, seed=s)``; every protocol is called on exactly the same
    indices, so differences between protocols are not differences in luck. Because the
    draws are nested (a smaller budget is a subset of a larger one with the same seed), a
    curve over budgets adds labels rather than redrawing them.

    Args:
        protocols: name -> ``fn(indices, seed) -> accuracy``; ``indices`` (b * K,) int64
            index the labelled training set; ``seed`` should seed any randomness of ``fn``.
        labels: (N,) labels of the training set the indices point into.
        budgets: labels per class to try, e.g. ``(1, 5, 10, 50)``.
        seeds: one draw of labelled examples per seed.
        num_classes: K, checked to be all present (see :func:`few_label_indices`).

    Returns:
        name -> (len(seeds), len(budgets)) float array of scores, ready for
        ``minissl.viz.plot_curves(budgets, result, ...)`` (drawn as mean ± std over seeds).

    Example:
        >>> y = torch.arange(40) % 4
        >>> count = {"n labelled": lambda idx, seed: float(len(idx))}
        >>> label_efficiency(count, y, budgets=[1, 5], seeds=[0, 1])["n labelled"].tolist()
        [[4.0, 20.0], [4.0, 20.0]]
    """
    if not protocols:
        raise ValueError("protocols is empty: pass a dict such as {'kNN': fn}")
    if not budgets or not seeds:
        raise ValueError(f"need at least one budget and one seed; got {budgets}, {seeds}")
    out = {name: np.zeros((len(seeds), len(budgets))) for name in protocols}
    for i, seed in enumerate(seeds):
        for j, per_class in enumerate(budgets):
            idx = few_label_indices(labels, per_class, seed=seed, num_classes=num_classes)
            for name, fn in protocols.items():
                out[name][i, j] = float(fn(idx, seed))
    return out


def ridge_r2(
    train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
    alpha: float = 1e-3,
) -> torch.Tensor:
    """A linear regression probe: fit ridge regression on frozen features, return test R^2.

    Features are standardised with the training set's statistics; the targets are centred.
    The ridge penalty is ``alpha * N * ||W||^2`` (so ``alpha`` does not depend on N).

    Args:
        train_x: (N, D) features; train_y: (N, Q) targets.
        test_x: (M, D); test_y: (M, Q).
        alpha: the ridge penalty.

    Returns:
        (Q,) the coefficient of determination ``1 - SSE / SST`` of each target on the test
        set (1 is perfect, 0 is no better than predicting the mean, it can be negative).

    Example:
        >>> x = torch.randn(100, 3)
        >>> y = x @ torch.tensor([[1.0], [2.0], [0.0]])
        >>> ridge_r2(x[:80], y[:80], x[80:], y[80:]).round(decimals=3)
        tensor([1.])
    """
    if train_y.dim() == 1:
        train_y, test_y = train_y[:, None], test_y[:, None]
    if train_x.dim() != 2 or len(train_x) != len(train_y) or test_x.shape[1] != train_x.shape[1]:
        raise ValueError(
            f"expected train_x (N, D), train_y (N, Q), test_x (M, D); got "
            f"{tuple(train_x.shape)}, {tuple(train_y.shape)}, {tuple(test_x.shape)}"
        )
    x, xt = train_x.double(), test_x.double()
    mean, std = x.mean(0), x.std(0).clamp_min(1e-8)
    x, xt = (x - mean) / std, (xt - mean) / std
    y_mean = train_y.double().mean(0)
    eye = torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
    w = torch.linalg.solve(x.T @ x + alpha * len(x) * eye, x.T @ (train_y.double() - y_mean))
    pred = xt @ w + y_mean
    sse = ((test_y.double() - pred) ** 2).sum(0)
    sst = ((test_y.double() - test_y.double().mean(0)) ** 2).sum(0)
    return (1 - sse / sst).float()


def evaluate_encoder(
    encoder: nn.Module, train_data, test_data, labels_per_class: int = 10, k: int = 20,
    seed: int = 0, draws: int = 1,
) -> dict:
    """The book's two standard scores of a frozen encoder: kNN and a few-label linear probe.

    Args:
        encoder: maps (B, C, H, W) to (B, D).
        train_data, test_data: ImageDataset, Dataset, DataLoader or (images, labels) pair.
        labels_per_class: labelled training examples per class given to the linear probe.
        k: neighbours of the kNN classifier, which uses *all* training labels.
        seed: seed of the choice of labelled examples and of the probe.
        draws: independent draws of the labelled examples (seeds ``seed``, ``seed + 1``,
            ...; draw ``j`` is the single draw of ``seed + j``); ``linear`` is the mean of
            their probes. With ten labels per class one draw moves the accuracy by a point
            or two, so comparisons of close methods want a few.

    Returns:
        ``{"knn": float, "linear": float}``, accuracies in [0, 1]; with ``draws > 1`` also
        ``"linear_per_draw"``, the list of each draw's probe accuracy.

    Example:
        >>> x, y = torch.rand(40, 1, 2, 2), torch.arange(40) % 2
        >>> sorted(evaluate_encoder(nn.Flatten(), (x, y), (x, y), labels_per_class=3))
        ['knn', 'linear']
    """
    if draws < 1:
        raise ValueError(f"draws must be at least 1 (one draw of labelled examples); got {draws}")
    ftr, ytr = extract_features(encoder, train_data)
    fte, yte = extract_features(encoder, test_data)
    labelled = ytr >= 0  # (N,) an unlabelled split (label -1) may be part of the train data
    ftr, ytr = ftr[labelled], ytr[labelled]
    K = getattr(train_data, "num_classes", None) or count_classes(ytr, yte)
    linear = []
    for s in range(seed, seed + draws):
        idx = few_label_indices(ytr, labels_per_class, seed=s)
        linear.append(linear_probe(ftr[idx], ytr[idx], fte, yte, num_classes=K,
                                   seed=s).accuracy)
    scores = {"knn": knn_accuracy(ftr, ytr, fte, yte, k=k, num_classes=K),
              "linear": sum(linear) / draws}
    return {**scores, "linear_per_draw": linear} if draws > 1 else scores
