"""The training loss: BCE on the issue logits + cross-entropy on the stance logits (`IssueStanceLoss`), and the
optional terms the trainer adds on training batches (`group_consistency_loss`, `actor_loss`)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from infer.labels import LabelSchema
from train.config import LossConfig


def balanced_class_weight(y: np.ndarray, n_classes: int) -> np.ndarray:
    """sklearn's "balanced" weights n / (n_classes x count) for class ids `y`; a class absent from `y`
    counts as one example (sklearn refuses absent classes; such a class never occurs in a batch anyway)."""
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(y)
    weights = np.full(n_classes, len(y) / n_classes)
    # sklearn divides by the number of classes it is given: rescale from len(present) to n_classes
    weights[present] = compute_class_weight("balanced", classes=present, y=y) * len(present) / n_classes
    return weights


class IssueStanceLoss(nn.Module):
    """BCE on the issue logits + cross-entropy on the stance logits, weighted.

    Used as the Trainer's `compute_loss_func(outputs, labels, num_items_in_batch)`; `labels` is the
    (batch, num_labels) float matrix from `LabelSchema.encode`.
    """

    def __init__(self, schema: LabelSchema, cfg: LossConfig, train_labels: np.ndarray | None = None):
        super().__init__()
        self.schema = schema
        self.issue_weight = cfg.issue_weight
        self.stance_weight = cfg.stance_weight
        self.label_smoothing = cfg.stance_label_smoothing
        pos_weight = torch.ones(len(schema.issues))
        class_weight = torch.ones(len(schema.stance))
        if train_labels is not None and len(train_labels):
            issues, stance = schema.split(np.asarray(train_labels, dtype=np.float64))
            if cfg.issue_pos_weight:
                pos = issues.sum(0)
                # negatives/positives, capped so a label with 2 positives cannot dominate the loss
                pos_weight = torch.tensor(np.clip((len(issues) - pos) / np.maximum(pos, 1.0), 1.0, 10.0),
                                          dtype=torch.float)
            if cfg.stance_class_weight:
                class_weight = torch.tensor(balanced_class_weight(stance.argmax(1), len(schema.stance)),
                                            dtype=torch.float)
        self.register_buffer("pos_weight", pos_weight)
        self.register_buffer("class_weight", class_weight)

    def forward(self, outputs, labels: torch.Tensor, num_items_in_batch=None) -> torch.Tensor:
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]  # (batch, num_labels)
        logits = logits.float()
        labels = labels.to(logits.device).float()
        issues = self.schema.issue_slice
        stance = self.schema.stance_slice
        bce = nn.functional.binary_cross_entropy_with_logits(
            logits[:, issues], labels[:, issues], pos_weight=self.pos_weight.to(logits.device)
        )
        ce = nn.functional.cross_entropy(
            logits[:, stance], labels[:, stance].argmax(1), weight=self.class_weight.to(logits.device),
            label_smoothing=self.label_smoothing,
        )
        return self.issue_weight * bce + self.stance_weight * ce


def group_consistency_loss(logits: torch.Tensor, group_index: torch.Tensor, schema: LabelSchema) -> torch.Tensor:
    """Mean KL(p_i || p_j) over ordered pairs i != j of rows in the same group (`group_index` >= 0): the stance
    distributions (softmax) plus the issue distributions (one Bernoulli per issue, averaged over issues).

    Both directions of every pair are counted, so this is the mean symmetric KL divided by two: 0 when the
    members of each group agree, positive otherwise; 0 (with a gradient graph) when no group has two rows.

    >>> schema = LabelSchema(issues=("a",), stance=("x", "y"))
    >>> same = torch.tensor([[0.3, 1.0, -1.0], [0.3, 1.0, -1.0]])
    >>> round(float(group_consistency_loss(same, torch.tensor([0, 0]), schema)), 6)
    0.0
    >>> float(group_consistency_loss(torch.tensor([[0.3, 1.0, -1.0], [0.3, -1.0, 1.0]]), torch.tensor([0, 0]), schema)) > 0
    True
    """
    logits = logits.float()
    group_index = group_index.to(logits.device).long()
    same = (group_index[:, None] == group_index[None, :]) & (group_index[:, None] >= 0)
    same &= ~torch.eye(len(group_index), dtype=torch.bool, device=logits.device)
    if not bool(same.any()):
        return logits.sum() * 0.0
    logp = nn.functional.log_softmax(logits[:, schema.stance_slice], dim=-1)
    p = logp.exp()
    kl = (p * logp).sum(-1, keepdim=True) - p @ logp.T  # kl[i, j] = KL(p_i || p_j)
    x = logits[:, schema.issue_slice]
    q, log_on, log_off = torch.sigmoid(x), nn.functional.logsigmoid(x), nn.functional.logsigmoid(-x)
    kl_issues = ((q * log_on + (1 - q) * log_off).sum(-1, keepdim=True) - q @ log_on.T - (1 - q) @ log_off.T)
    kl = kl + kl_issues / x.shape[1]
    return (kl * same).sum() / same.sum()


def actor_loss(actor_logits: torch.Tensor, actor_index: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the auxiliary who-reacts head over the rows that have an actor (`actor_index` >= 0);
    0 (with a gradient graph) when none has."""
    actor_index = actor_index.to(actor_logits.device).long()
    known = actor_index >= 0
    if not bool(known.any()):
        return actor_logits.sum() * 0.0
    return nn.functional.cross_entropy(actor_logits[known].float(), actor_index[known])
