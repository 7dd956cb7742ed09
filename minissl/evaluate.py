"""How good is a representation? Features, kNN, linear probes, fine-tuning and metrics.

Everything returns plain floats and CPU tensors, and runs on whatever device the encoder is
on. The usual recipe of the book::

    ftr, ytr = extract_features(encoder, train_ds)          # (N, D) float32, (N,) int64
    fte, yte = extract_features(encoder, test_ds)
    knn_accuracy(ftr, ytr, fte, yte, k=20)                  # no training at all
    idx = few_label_indices(ytr, per_class=10, seed=0)      # 10 labels per class
    linear_probe(ftr[idx], ytr[idx], fte, yte).accuracy     # logistic regression

Data may be a ``minissl.data.ImageDataset`` (anything with in-memory ``.images`` (N, C, H, W)
and ``.labels`` (N,): sliced directly, no DataLoader), any ``Dataset`` of ``(image, label)``,
a ``DataLoader`` of such batches, or a pair ``(images, labels)`` of tensors.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from minissl.data.dataset import few_label_indices  # re-exported: the book draws labels here

# ----------------------------------------------------------------------------- data access


def _as_tensor_pair(data) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(images, labels) when the whole split is in memory, else None (use a DataLoader)."""
    if hasattr(data, "images") and hasattr(data, "labels"):
        return torch.as_tensor(data.images), torch.as_tensor(data.labels)
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(
        isinstance(t, torch.Tensor) for t in data
    ):
        return data[0], data[1]
    return None


def _batches(
    data, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (images, labels) batches on the CPU from any supported kind of data."""
    pair = _as_tensor_pair(data)
    if pair is not None:
        images, labels = pair
        if len(images) != len(labels):
            raise ValueError(
                f"data has {len(images)} images but {len(labels)} labels; they must match"
            )
        n = len(images)
        order = torch.randperm(n, generator=generator) if shuffle else None
        for i in range(0, n, batch_size):
            if order is None:
                yield images[i : i + batch_size], labels[i : i + batch_size]
            else:
                j = order[i : i + batch_size]
                yield images[j], labels[j]
        return
    if isinstance(data, DataLoader):
        loader = data
    elif isinstance(data, Dataset):
        loader = DataLoader(data, batch_size=batch_size, shuffle=shuffle, generator=generator)
    else:
        raise ValueError(
            f"cannot read images from a {type(data).__name__}; pass a minissl ImageDataset, "
            "a torch Dataset or DataLoader of (image, label), or a pair (images, labels)"
        )
    for batch in loader:
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise ValueError("each item/batch must be (image, label); got a single tensor")
        yield torch.as_tensor(batch[0]), torch.as_tensor(batch[1])


def _device_of(module: nn.Module, device) -> torch.device:
    if device is not None:
        return torch.device(device)
    p = next(module.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _check_features(features: torch.Tensor, labels: torch.Tensor, name: str) -> None:
    if features.dim() != 2:
        raise ValueError(
            f"{name}_features must have shape (N, D); got {tuple(features.shape)}"
        )
    if labels.dim() != 1 or len(labels) != len(features):
        raise ValueError(
            f"{name}_labels must have shape ({len(features)},) to match {name}_features "
            f"{tuple(features.shape)}; got {tuple(labels.shape)}"
        )
    if features.shape[0] == 0 or features.shape[1] == 0:
        raise ValueError(f"{name}_features is empty (shape {tuple(features.shape)}); give at "
                         "least one example with at least one feature")
    if features.is_floating_point() and not bool(torch.isfinite(features).all()):
        raise ValueError(f"{name}_features hold NaN or infinite values; the encoder that made "
                         "them diverged, or its input was not finite")


def _num_classes(*label_sets: torch.Tensor) -> int:
    return int(max(int(y.max()) for y in label_sets if len(y)) + 1)


# ----------------------------------------------------------------------------- features


@torch.no_grad()
def extract_features(
    encoder: nn.Module, data, batch_size: int = 512, device=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run a frozen encoder over a data set and return its features and labels.

    The encoder runs in eval mode (batch norm uses its running statistics, dropout is off),
    without gradients and in float32 (autocast off); afterwards every submodule is put back
    in the train/eval mode it was in.

    Args:
        encoder: maps (B, C, H, W) to (B, D); outputs with more dims are flattened.
        data: an ImageDataset (``.images``/``.labels`` in memory), a Dataset or DataLoader
            of ``(image, label)``, or a pair ``(images, labels)``.
        batch_size: images per forward pass.
        device: where to run; defaults to the device of the encoder's parameters.

    Returns:
        features (N, D) float32 on the CPU and labels (N,) int64 on the CPU.

    Example:
        >>> enc = nn.Sequential(nn.Flatten(), nn.Linear(4, 3)).train()
        >>> f, y = extract_features(enc, (torch.rand(5, 1, 2, 2), torch.arange(5)))
        >>> f.shape, y.dtype, enc.training
        (torch.Size([5, 3]), torch.int64, True)
    """
    dev = _device_of(encoder, device)
    modes = [(m, m.training) for m in encoder.modules()]
    encoder.eval()
    feats, labels = [], []
    try:
        with torch.autocast(device_type=dev.type, enabled=False):
            for x, y in _batches(data, batch_size):
                out = encoder(x.to(dev, non_blocking=True).float())  # (B, D)
                feats.append(out.flatten(1).float().cpu())
                labels.append(y.reshape(-1).long().cpu())
    finally:
        for m, mode in modes:
            m.training = mode
    if not feats:
        raise ValueError("extract_features got an empty data set")
    return torch.cat(feats), torch.cat(labels)


# ----------------------------------------------------------------------------- kNN


@torch.no_grad()
def knn_predict(
    train_features: torch.Tensor, train_labels: torch.Tensor, test_features: torch.Tensor,
    k: int = 20, temperature: float = 0.07, num_classes: int | None = None,
    chunk_size: int | None = None,
) -> torch.Tensor:
    """Predict test labels by a weighted vote of the k most cosine-similar training points.

    Wu et al., "Unsupervised Feature Learning via Non-Parametric Instance Discrimination",
    2018, arXiv:1805.01978: neighbour i votes for its class with weight exp(s_i / T), where
    s_i is the cosine similarity. The test set is processed in chunks so memory stays at
    about ``chunk_size * N_train`` floats.

    Args:
        train_features: (N, D) features of the labelled "memory bank".
        train_labels: (N,) integer labels in [0, num_classes).
        test_features: (M, D) features to classify.
        k: neighbours per query (capped at N).
        temperature: T of the vote weights; small T trusts the nearest neighbours most.
        num_classes: K; inferred from the labels when None.
        chunk_size: test points per chunk; by default about 2**24 / N.

    Returns:
        (M,) int64 predicted labels, on the features' device.

    Example:
        >>> ftr = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
        >>> knn_predict(ftr, torch.tensor([0, 0, 1]), torch.tensor([[0.1, 1.0]]), k=1)
        tensor([1])
    """
    _check_features(train_features, train_labels, "train")
    if test_features.dim() != 2 or test_features.shape[1] != train_features.shape[1]:
        raise ValueError(
            f"test_features must have shape (M, {train_features.shape[1]}) to match "
            f"train_features; got {tuple(test_features.shape)}"
        )
    if k < 1:
        raise ValueError(f"k must be at least 1; got {k}")
    if len(train_labels) and int(train_labels.min()) < 0:
        raise ValueError(
            "train_labels contain negative (unlabelled) entries; keep only labelled examples, "
            "e.g. train_features[train_labels >= 0]"
        )
    K = num_classes or _num_classes(train_labels)
    bank = F.normalize(train_features.float(), dim=1)  # (N, D)
    queries = F.normalize(test_features.float(), dim=1).to(bank.device)  # (M, D)
    labels = train_labels.to(bank.device).long()  # (N,)
    k = min(k, len(bank))
    chunk = chunk_size or max(1, 2**24 // max(len(bank), 1))
    preds = []
    for q in queries.split(chunk):
        sim, idx = (q @ bank.T).topk(k, dim=1)  # (b, k) similarities and bank indices
        weights = (sim / temperature).exp()  # (b, k)
        votes = torch.zeros(len(q), K, device=bank.device)  # (b, K)
        votes.scatter_add_(1, labels[idx], weights)
        preds.append(votes.argmax(dim=1))  # (b,)
    return torch.cat(preds) if preds else torch.zeros(0, dtype=torch.long)


def knn_accuracy(
    train_features: torch.Tensor, train_labels: torch.Tensor, test_features: torch.Tensor,
    test_labels: torch.Tensor, k: int = 20, temperature: float = 0.07,
    num_classes: int | None = None,
) -> float:
    """Accuracy of :func:`knn_predict` (weighted kNN, Wu et al. 2018, arXiv:1805.01978).

    Args:
        train_features: (N, D); train_labels: (N,).
        test_features: (M, D); test_labels: (M,).
        k, temperature, num_classes: as in :func:`knn_predict`.

    Example:
        >>> f = torch.eye(3)
        >>> knn_accuracy(f, torch.arange(3), f, torch.arange(3), k=1)
        1.0
    """
    _check_features(test_features, test_labels, "test")
    if isinstance(temperature, bool) or not isinstance(
            temperature, (int, float, np.integer, np.floating)) or not (
            0 < temperature < float("inf")):
        raise ValueError(f"knn_accuracy: temperature must be a number > 0 (0.07 is the usual "
                         f"choice); got {temperature!r}")
    for which, features in (("train_features", train_features),
                            ("test_features", test_features)):
        if len(features) == 0:
            raise ValueError(f"knn_accuracy: {which} is empty (shape {tuple(features.shape)}); "
                             "there is nothing to vote with or to score")
    K = num_classes or _num_classes(train_labels, test_labels)
    pred = knn_predict(train_features, train_labels, test_features, k, temperature, K)
    return (pred.cpu() == test_labels.cpu()).float().mean().item()


# ----------------------------------------------------------------------------- linear probe


class LinearClassifier(nn.Module):
    """A linear classifier with feature standardisation built in: ``W (x - mean) / std + b``.

    Args:
        in_dim: D; num_classes: K.
        mean, std: (D,) statistics of the training features (zeros/ones by default).

    Shapes:
        (B, D) -> (B, K) logits.

    Example:
        >>> LinearClassifier(4, 3)(torch.rand(2, 4)).shape
        torch.Size([2, 3])
    """

    def __init__(
        self, in_dim: int, num_classes: int, mean: torch.Tensor | None = None,
        std: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(in_dim) if mean is None else mean.clone())
        self.register_buffer("std", torch.ones(in_dim) if std is None else std.clone())
        self.linear = nn.Linear(in_dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear((x - self.mean) / self.std)  # (B, K)


@dataclass
class ProbeResult:
    """What :func:`linear_probe` returns."""

    accuracy: float  # test accuracy in [0, 1]
    predictions: torch.Tensor  # (N_test,) int64 predicted labels, CPU
    classifier: LinearClassifier  # the trained probe (standardisation included), CPU
    train_accuracy: float  # accuracy on the probe's own training set


def linear_probe(
    train_features: torch.Tensor, train_labels: torch.Tensor, test_features: torch.Tensor,
    test_labels: torch.Tensor, *, epochs: int = 100, lr: float = 1.0,
    weight_decay: float = 5e-3, standardize: bool = True, num_classes: int | None = None,
    seed: int = 0, device=None,
) -> ProbeResult:
    """Fit a multinomial logistic regression on frozen features and test it.

    The standard "linear evaluation protocol" of self-supervised learning (e.g. SimCLR,
    Chen et al. 2020, arXiv:2002.05709), done as a convex problem: features are
    standardised with the *training* set's mean and std, then the full-batch objective
    ``mean cross-entropy + weight_decay / 2 * ||W||^2`` is minimised with L-BFGS. It is
    deterministic, needs no learning-rate tuning, and takes well under a second for the
    few-label regime (100 examples x 256 dims).

    Args:
        train_features: (N, D); train_labels: (N,).
        test_features: (M, D); test_labels: (M,).
        epochs: maximum L-BFGS iterations.
        lr: L-BFGS step size (1.0 with the strong-Wolfe line search is the usual choice).
        weight_decay: L2 penalty on the weights (not the bias). The default suits about 10
            labels per class; with thousands of labels a smaller value (1e-4) fits better.
        standardize: standardise features with train-set statistics (constant features are
            left unscaled).
        num_classes: K; inferred from the labels when None.
        seed: seed of the weight initialisation.
        device: where to optimise (default: the features' device).

    Example:
        >>> x = torch.cat([torch.randn(20, 2) - 3, torch.randn(20, 2) + 3])
        >>> y = torch.tensor([0] * 20 + [1] * 20)
        >>> linear_probe(x, y, x, y).accuracy
        1.0
    """
    _check_features(train_features, train_labels, "train")
    _check_features(test_features, test_labels, "test")
    if train_features.shape[1] != test_features.shape[1]:
        raise ValueError(
            f"train_features have D={train_features.shape[1]} but test_features have "
            f"D={test_features.shape[1]}; they must come from the same encoder"
        )
    dev = torch.device(device) if device is not None else train_features.device
    x = train_features.to(dev, torch.float32)  # (N, D)
    y = train_labels.to(dev).long()  # (N,)
    K = num_classes or _num_classes(train_labels, test_labels)
    D = x.shape[1]
    mean, std = torch.zeros(D, device=dev), torch.ones(D, device=dev)
    if standardize:
        mean = x.mean(0)
        std = x.std(0, unbiased=False) if len(x) > 1 else torch.ones(D, device=dev)
        std = torch.where(std > 1e-6, std, torch.ones_like(std))  # constant features: keep
    g = torch.Generator().manual_seed(seed)
    clf = LinearClassifier(D, K, mean, std)
    with torch.no_grad():
        # Small random weights; the problem is convex, so the seed only matters for ties.
        clf.linear.weight.copy_(torch.randn(K, D, generator=g) * 0.01)
        clf.linear.bias.zero_()
    clf = clf.to(dev)
    opt = torch.optim.LBFGS(
        clf.linear.parameters(), lr=lr, max_iter=epochs, history_size=10,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(clf(x), y) + 0.5 * weight_decay * clf.linear.weight.square().sum()
        loss.backward()
        return loss

    # A small CPU problem is hundreds of tiny ops; with several threads their start-up and
    # synchronisation cost more than the arithmetic (seconds instead of ~50 ms on a busy
    # 2-core machine), so it runs on one thread. Large problems keep every thread.
    threads = torch.get_num_threads()
    one_thread = dev.type == "cpu" and x.numel() * K <= 2**22
    try:
        if one_thread:
            torch.set_num_threads(1)
        with torch.enable_grad():
            opt.step(closure)
    finally:
        if one_thread:
            torch.set_num_threads(threads)
    clf = clf.cpu().eval()
    with torch.no_grad():
        train_pred = clf(train_features.float().cpu()).argmax(1)
        pred = clf(test_features.float().cpu()).argmax(1)  # (M,)
    return ProbeResult(
        accuracy=(pred == test_labels.cpu()).float().mean().item(),
        predictions=pred,
        classifier=clf,
        train_accuracy=(train_pred == train_labels.cpu()).float().mean().item(),
    )


# ----------------------------------------------------------------------------- fine-tuning


@dataclass
class FineTuneResult:
    """What :func:`fine_tune` returns.

    Attributes:
        accuracy: test accuracy in [0, 1].
        predictions: (N_test,) int64 predicted labels, on the CPU.
        model: the fine-tuned network, ``nn.Sequential(encoder, head)``: ``model[0]`` is the
            trained copy of the encoder, ``model[1]`` the ``nn.Linear`` head. It maps images
            (B, C, H, W) to logits (B, K), is in eval mode and sits on the device used. To
            ship it, wrap it as ``minissl.deploy.Classifier(model[0], model[1], spec)`` and
            save that with :func:`minissl.deploy.save_state`.
    """

    accuracy: float  # test accuracy in [0, 1]
    predictions: torch.Tensor  # (N_test,) int64 predicted labels, CPU
    model: nn.Module  # nn.Sequential(encoder copy, linear head), on the device used


def _feature_dim(encoder: nn.Module, data, device: torch.device) -> int:
    if hasattr(encoder, "feature_dim"):
        return int(encoder.feature_dim)
    # An encoder without .feature_dim: one example tells us (frozen, eval mode).
    x, _ = next(_batches(data, 1))
    return extract_features(encoder, (x, torch.zeros(1)), device=device)[0].shape[1]


def fine_tune(
    encoder: nn.Module, train_data, test_data, num_classes: int, *, epochs: int = 30,
    lr: float = 1e-3, encoder_lr_scale: float = 0.1, freeze_encoder: bool = False,
    weight_decay: float = 1e-4, batch_size: int = 64, seed: int = 0, device=None,
    progress: bool = False,
) -> FineTuneResult:
    """Train a linear head on a copy of the encoder (fine-tuned gently, or frozen) and test it.

    The semi-supervised protocol of SimCLR (Chen et al. 2020, arXiv:2002.05709, Sec. B.5):
    start from the pretrained encoder, add a linear classifier, train both on the few
    labelled examples. The encoder learns ``encoder_lr_scale`` times slower than the head
    so the few labels adjust the representation rather than overwrite it. The ``encoder``
    passed in is never modified: a deep copy is trained. AdamW, no augmentation.

    Args:
        encoder: maps (B, C, H, W) to (B, D); ``.feature_dim`` is used when present.
        train_data, test_data: ImageDataset, Dataset, DataLoader or (images, labels) pair.
            ``train_data`` is the labelled subset to learn from, e.g. 10 images per class
            drawn with ``minissl.data.few_labels(train, 10)``: every example given here is
            used with its label, so pass the whole training split only to fine-tune on all
            labels.
        num_classes: K.
        epochs: passes over ``train_data``.
        lr: learning rate of the head.
        encoder_lr_scale: the encoder's learning rate is ``lr * encoder_lr_scale``.
        freeze_encoder: keep the encoder fixed (eval mode): a linear probe trained by AdamW.
        weight_decay: AdamW weight decay.
        batch_size: examples per step.
        seed: seeds the head's initialisation and the shuffling (global RNG untouched).
        device: where to train (default: the encoder's device).
        progress: show a tqdm progress bar over epochs.

    Example:
        >>> enc = nn.Sequential(nn.Flatten(), nn.Linear(4, 8))
        >>> x, y = torch.rand(16, 1, 2, 2), torch.arange(16) % 2
        >>> res = fine_tune(enc, (x, y), (x, y), num_classes=2, epochs=2)
        >>> 0.0 <= res.accuracy <= 1.0, res.predictions.shape
        (True, torch.Size([16]))
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"fine_tune: num_classes must be a whole number >= 2; got "
                         f"{num_classes!r}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"fine_tune: epochs must be a whole number >= 1; got {epochs!r}")
    pair = _as_tensor_pair(train_data)
    if pair is not None and len(pair[0]) == 0:
        raise ValueError("fine_tune: train_data is empty; give it the labelled examples to "
                         "learn from (e.g. minissl.data.few_labels(train, 10))")
    dev = _device_of(encoder, device)
    fork_devices = [dev.index or 0] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(seed)
        body = copy.deepcopy(encoder).to(dev)
        head = nn.Linear(_feature_dim(body, train_data, dev), num_classes).to(dev)
        model = nn.Sequential(body, head)
        body.requires_grad_(not freeze_encoder)
        groups = [{"params": head.parameters(), "lr": lr}]
        if not freeze_encoder:
            groups.append({"params": body.parameters(), "lr": lr * encoder_lr_scale})
        opt = torch.optim.AdamW(groups, weight_decay=weight_decay)
        g = torch.Generator().manual_seed(seed)

        epoch_iter = range(epochs)
        if progress:
            from tqdm.auto import tqdm

            epoch_iter = tqdm(epoch_iter, desc="fine-tune")
        for _ in epoch_iter:
            model.train()
            if freeze_encoder:
                body.eval()  # frozen means frozen BN statistics too
            for x, y in _batches(train_data, batch_size, shuffle=True, generator=g):
                if len(x) < 2:
                    continue  # a last batch of one: batch norm cannot train on it
                x, y = x.to(dev, non_blocking=True).float(), y.to(dev).long()
                loss = F.cross_entropy(model(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        model.eval()
        logits, labels = extract_features(model, test_data, batch_size=max(batch_size, 256),
                                          device=dev)
    pred = logits.argmax(1)  # (M,)
    return FineTuneResult(
        accuracy=(pred == labels).float().mean().item(), predictions=pred, model=model
    )


# ----------------------------------------------------------------------------- metrics


def classification_metrics(y_true, y_pred, num_classes: int | None = None) -> dict:
    """Accuracy, macro precision/recall/F1, per-class values and the confusion matrix.

    Macro averages are over the classes that occur in ``y_true`` or ``y_pred`` (as
    scikit-learn does by default); a precision or recall of 0/0 counts as 0.

    Args:
        y_true: (N,) true labels; y_pred: (N,) predicted labels (tensors, arrays or lists).
        num_classes: K, the size of the confusion matrix; inferred when None.

    Returns:
        dict with ``accuracy``, ``precision``, ``recall``, ``f1`` (floats),
        ``per_class_precision``, ``per_class_recall``, ``per_class_f1``, ``support``
        ((K,) numpy arrays) and ``confusion`` ((K, K) int64 numpy array, rows = true class,
        columns = predicted class).

    Example:
        >>> m = classification_metrics([0, 0, 1, 1], [0, 1, 1, 1])
        >>> m["accuracy"], m["confusion"].tolist()
        (0.75, [[1, 1], [0, 2]])
    """
    t = torch.as_tensor(np.asarray(y_true)).reshape(-1).long().cpu()
    p = torch.as_tensor(np.asarray(y_pred)).reshape(-1).long().cpu()
    if len(t) != len(p):
        raise ValueError(f"y_true has {len(t)} labels but y_pred has {len(p)}; they must match")
    if len(t) == 0:
        raise ValueError("classification_metrics got no labels")
    K = num_classes or _num_classes(t, p)
    if int(max(t.max(), p.max())) >= K or int(min(t.min(), p.min())) < 0:
        raise ValueError(f"labels must lie in [0, {K}); got values outside it")
    confusion = torch.bincount(t * K + p, minlength=K * K).reshape(K, K).numpy()  # (K, K)
    tp = np.diag(confusion).astype(np.float64)  # (K,)
    support = confusion.sum(1)  # (K,) true examples per class
    predicted = confusion.sum(0)  # (K,) predictions per class
    precision = np.divide(tp, predicted, out=np.zeros(K), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(K), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(K), where=denom > 0)
    present = (support + predicted) > 0  # (K,) classes that occur at all
    return {
        "accuracy": float(tp.sum() / len(t)),
        "precision": float(precision[present].mean()),
        "recall": float(recall[present].mean()),
        "f1": float(f1[present].mean()),
        "per_class_precision": precision,
        "per_class_recall": recall,
        "per_class_f1": f1,
        "support": support,
        "confusion": confusion,
    }


# ----------------------------------------------------------------------------- label efficiency


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


# ----------------------------------------------------------------------------- all at once


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
    K = getattr(train_data, "num_classes", None) or _num_classes(ytr, yte)
    linear = []
    for s in range(seed, seed + draws):
        idx = few_label_indices(ytr, labels_per_class, seed=s)
        linear.append(linear_probe(ftr[idx], ytr[idx], fte, yte, num_classes=K,
                                   seed=s).accuracy)
    scores = {"knn": knn_accuracy(ftr, ytr, fte, yte, k=k, num_classes=K),
              "linear": sum(linear) / draws}
    return {**scores, "linear_per_draw": linear} if draws > 1 else scores
