"""Features of a frozen encoder, and weighted kNN: the score that needs no training."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from minissl.evaluate._data import batches, check_features, count_classes, device_of


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
    dev = device_of(encoder, device)
    modes = [(m, m.training) for m in encoder.modules()]
    encoder.eval()
    feats, labels = [], []
    try:
        with torch.autocast(device_type=dev.type, enabled=False):
            for x, y in batches(data, batch_size):
                out = encoder(x.to(dev, non_blocking=True).float())  # (B, D)
                feats.append(out.flatten(1).float().cpu())
                labels.append(y.reshape(-1).long().cpu())
    finally:
        for m, mode in modes:
            m.training = mode
    if not feats:
        raise ValueError("extract_features got an empty data set")
    return torch.cat(feats), torch.cat(labels)


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
    check_features(train_features, train_labels, "train")
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
    K = num_classes or count_classes(train_labels)
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
    check_features(test_features, test_labels, "test")
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
    K = num_classes or count_classes(train_labels, test_labels)
    pred = knn_predict(train_features, train_labels, test_features, k, temperature, K)
    return (pred.cpu() == test_labels.cpu()).float().mean().item()
