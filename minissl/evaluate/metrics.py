"""Classification metrics: accuracy, macro precision, recall and F1, the confusion matrix."""

from __future__ import annotations

import numpy as np
import torch

from minissl.evaluate._data import count_classes


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
    K = num_classes or count_classes(t, p)
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
