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

One module per protocol: ``features`` (extract_features, kNN), ``probe`` (linear_probe),
``finetune``, ``metrics`` and ``summary`` (label_efficiency, ridge_r2, evaluate_encoder);
every name is importable from ``minissl.evaluate``.
"""

from minissl.data.dataset import few_label_indices  # noqa: F401  (the book draws labels here)
from minissl.evaluate.features import extract_features, knn_accuracy, knn_predict
from minissl.evaluate.finetune import FineTuneResult, fine_tune
from minissl.evaluate.metrics import classification_metrics
from minissl.evaluate.probe import LinearClassifier, ProbeResult, linear_probe
from minissl.evaluate.summary import epochs_for_steps, evaluate_encoder, label_efficiency, ridge_r2

__all__ = [  # in the order of the API page
    "extract_features", "knn_predict", "knn_accuracy", "LinearClassifier", "ProbeResult",
    "linear_probe", "FineTuneResult", "fine_tune", "classification_metrics", "epochs_for_steps",
    "label_efficiency", "ridge_r2", "evaluate_encoder",
]
