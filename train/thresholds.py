"""Per-issue decision thresholds, tuned on the validation split to maximize each label's F1."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import precision_recall_curve


def tune_thresholds(probs: np.ndarray, labels: np.ndarray, default: float = 0.5,
                    lo: float = 0.05, hi: float = 0.95) -> np.ndarray:
    """Best-F1 threshold per column of `probs` (n, k) against 0/1 `labels` (n, k).

    The threshold is placed halfway between the best cut's score and the next lower score, so that
    small score shifts on new data do not flip the boundary example, and clipped to [lo, hi]. A label
    with no positive (or no negative) in `labels` keeps `default`.

    Example:
        >>> tune_thresholds(np.array([[0.9], [0.35], [0.2]]), np.array([[1], [1], [0]])).round(3).tolist()
        [0.275]
    """
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels).astype(int)
    out = np.full(probs.shape[1], default, dtype=np.float64)
    for j in range(probs.shape[1]):
        y, p = labels[:, j], probs[:, j]
        if y.min() == y.max():
            continue
        precision, recall, cuts = precision_recall_curve(y, p)
        f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
        best = cuts[int(np.argmax(f1))]
        below = p[p < best]
        out[j] = (best + below.max()) / 2 if below.size else best
    return np.clip(out, lo, hi)
