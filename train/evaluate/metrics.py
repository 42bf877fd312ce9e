"""The project's own `evaluate` metric for issue + stance predictions, built on scikit-learn.

Hub-hosted metrics cannot be downloaded here, so this module ships the metric itself. Inputs are
per-example vectors in head order (issues first, then stance, as in `infer.labels.LabelSchema`):
`predictions` are scores (issue probabilities, then stance probabilities or logits) and `references`
the multi-hot issue + one-hot stance labels.

Example:
    >>> metric = IssueStanceMetric()
    >>> out = metric.compute(
    ...     predictions=[[0.9, 0.1, 0.2, 0.7, 0.1]], references=[[1, 0, 1, 0, 0]],
    ...     issue_names=["expansion", "missiles"], stance_names=["favor", "against", "neutral"])
    >>> out["issues"]["per_label"]["expansion"]["f1"], out["stance"]["accuracy"]
    (1.0, 1.0)
"""

from __future__ import annotations

from typing import Any, Sequence

import datasets
import evaluate
import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from infer.labels import LabelSchema

_DESCRIPTION = "Multi-label issue F1 (per label, micro, macro, subset accuracy) and single-label stance metrics."
_KWARGS = """
Args:
    predictions: per example, len(issue_names) issue probabilities then len(stance_names) stance scores.
    references: per example, the multi-hot issue labels then the one-hot stance labels.
    issue_names, stance_names: label names in head order.
    thresholds: per-issue decision thresholds (default 0.5 each).
Returns:
    {"issues": {"micro_f1", "macro_f1", "subset_accuracy", "per_label": {name: {precision, recall, f1, support}}},
     "stance": {"accuracy", "macro_f1", "per_label": {...}, "confusion_matrix": [[...]]},
     "macro_f1": mean of the two macro-F1s, "n": number of examples}
"""


def issue_metrics(y_true: np.ndarray, y_pred: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """Per-label P/R/F1/support plus micro/macro F1 and subset accuracy for 0/1 matrices (n, labels)."""
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0,
                                                 labels=list(range(len(names))))
    return {
        "micro_f1": float(f1_score(y_true, y_pred, average="micro", zero_division=0)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "subset_accuracy": float(accuracy_score(y_true, y_pred)),
        "per_label": {
            name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, name in enumerate(names)
        },
    }


def stance_metrics(y_true: np.ndarray, y_pred: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class P/R/F1/support and the confusion matrix (rows: gold) for class ids."""
    labels = list(range(len(names)))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, average=None, zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "per_label": {
            name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, name in enumerate(names)
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class IssueStanceMetric(evaluate.Metric):
    """`evaluate.Metric` for the two label groups; used by the Trainer and by the report."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("float32")),
                    "references": datasets.Sequence(datasets.Value("float32")),
                }
            ),
        )

    def _compute(self, predictions, references, issue_names=None, stance_names=None, thresholds=None):
        return issue_stance_metrics(predictions, references, issue_names, stance_names, thresholds)


def issue_stance_metrics(predictions, references, issue_names, stance_names, thresholds=None) -> dict[str, Any]:
    """What `IssueStanceMetric().compute(...)` returns, without its Arrow cache round trip (the report
    scores hundreds of language/origin slices, where that round trip took most of the time)."""
    if not issue_names or not stance_names:
        raise ValueError("IssueStanceMetric.compute needs issue_names and stance_names")
    scores = np.asarray(predictions, dtype=np.float64)
    gold = np.asarray(references, dtype=np.float64)
    k = len(issue_names)
    if scores.ndim != 2 or scores.shape[1] != k + len(stance_names) or gold.shape != scores.shape:
        raise ValueError(
            f"expected predictions and references of shape (n, {k + len(stance_names)}), "
            f"got {scores.shape} and {gold.shape}"
        )
    schema = LabelSchema(tuple(issue_names), tuple(stance_names))
    pred_issues, pred_stance = schema.decide(scores, np.full(k, 0.5) if thresholds is None else thresholds)
    gold_issues, gold_stance = schema.decide(gold, np.full(k, 0.5))
    issues = issue_metrics(gold_issues.astype(int), pred_issues.astype(int), issue_names)
    stance = stance_metrics(gold_stance, pred_stance, stance_names)
    return {
        "issues": issues,
        "stance": stance,
        "macro_f1": (issues["macro_f1"] + stance["macro_f1"]) / 2,
        "n": int(len(scores)),
    }


def flatten(result: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Scalar leaves of a nested result as `a/b/c` keys (for Trainer logs); lists are dropped."""
    flat: dict[str, float] = {}
    for key, value in result.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "/"))
        elif isinstance(value, (int, float)):
            flat[name] = float(value)
    return flat
