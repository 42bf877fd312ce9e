"""Per-issue decision thresholds, tuned on the validation split to maximize each label's F1."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import precision_recall_curve


def tune_thresholds(probs: np.ndarray, labels: np.ndarray, default: float = 0.5, lo: float = 0.05,
                    hi: float = 0.95, step: float = 0.01, tolerance: float = 0.02) -> np.ndarray:
    """F1-maximizing threshold per column of `probs` (n, k) against 0/1 `labels` (n, k), shrunk to `default`.

    Every threshold on a grid over [lo, hi] whose validation F1 is within `tolerance` of the best is
    equally good on a split this small (a label may have a dozen positives, each paragraph repeated in
    eight languages); of those, the one closest to `default` is taken. Without this shrinkage the
    best cut of a small validation split often lands at an extreme (0.05, 0.9) that does worse on new
    data than 0.5 (measured on this project's runs: see the README). A label with no positive (or no
    negative) in `labels` keeps `default`.

    Example:
        >>> tune_thresholds(np.array([[0.9], [0.35], [0.2]]), np.array([[1], [1], [0]])).round(3).tolist()
        [0.35]
        >>> tune_thresholds(np.array([[0.9], [0.7], [0.3]]), np.array([[1], [1], [0]])).round(3).tolist()
        [0.5]
    """
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels).astype(int)
    grid = np.round(np.arange(lo, hi + step / 2, step), 6)
    out = np.full(probs.shape[1], default, dtype=np.float64)
    for j in range(probs.shape[1]):
        y, p = labels[:, j], probs[:, j]
        if y.min() == y.max():
            continue
        f1 = _f1_at(grid, y, p)
        good = grid[f1 >= f1.max() - tolerance]
        out[j] = good[np.argmin(np.abs(good - default))]
    return out


def _f1_at(grid: np.ndarray, y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """F1 of the decision `p >= t` for every t in `grid`, from one precision-recall curve.

    The curve has one point per distinct score (its cut predicts `p >= cut`); a grid threshold t makes
    the same decisions as the smallest cut >= t, and none (F1 0) above the highest score.
    """
    precision, recall, cuts = precision_recall_curve(y, p)
    n_pos = int(y.sum())
    # counts back from the rates (exact integers), so F1 = 2 tp / (2 tp + fp + fn) as in f1_score
    tp = np.rint(recall[:-1] * n_pos)  # the last point (recall 0) has no cut
    fp = np.rint(tp / np.where(precision[:-1] > 0, precision[:-1], 1.0) - tp)
    f1_at_cut = 2 * tp / (2 * tp + fp + (n_pos - tp))
    idx = np.searchsorted(cuts, grid, side="left")
    return np.where(idx < len(cuts), f1_at_cut[np.minimum(idx, len(cuts) - 1)], 0.0)
