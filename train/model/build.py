"""The classifier: one encoder, one standard sequence-classification head, a two-group loss.

The head has `len(issues)` logits followed by `len(stance)` logits; `config.json` stores
`id2label` (`issue/<name>`, `stance/<name>`), `label_schema` and `issue_thresholds`, so the checkpoint
loads with plain `AutoModelForSequenceClassification` and `pipeline("text-classification")`.
`problem_type` is `multi_label_classification`, so a plain pipeline applies a sigmoid per label:
the issue scores are exact and the stance with the highest score is the predicted stance.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn

from infer.labels import LabelSchema
from train.backbones.bundled import load_pretrained
from train.config import ConfigError, LossConfig, ModelConfig
from train.model.layer_cache import encoder_layers, freeze_below

logger = logging.getLogger(__name__)


def build_model(cfg: ModelConfig, schema: LabelSchema):
    """Load the backbone with a fresh head sized and labeled from `schema`.

    Returns:
        (model, tokenizer): an `AutoModelForSequenceClassification` and its fast tokenizer.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = load_pretrained(cfg.backbone, AutoTokenizer)
    extra = {"classifier_dropout": cfg.dropout} if cfg.dropout is not None else {}
    if cfg.encoder_dropout is not None:
        extra.update(hidden_dropout_prob=cfg.encoder_dropout, attention_probs_dropout_prob=cfg.encoder_dropout)
    if cfg.attention_dropout is not None:
        extra["attention_probs_dropout_prob"] = cfg.attention_dropout
    model = load_pretrained(
        cfg.backbone,
        AutoModelForSequenceClassification,
        num_labels=schema.num_labels,
        id2label=schema.id2label,
        label2id=schema.label2id,
        problem_type="multi_label_classification",
        **extra,
    )
    model.config.label_schema = schema.to_dict()
    model.config.issue_thresholds = {name: 0.5 for name in schema.issues}
    backbone_layers = model.config.num_hidden_layers
    if cfg.train_layers is not None and cfg.train_layers > backbone_layers:
        raise ConfigError(f"model.train_layers={cfg.train_layers} but the backbone has {backbone_layers} layers")
    if cfg.pooling == "mean_layer":
        append_mean_pooling_layer(model)
    if cfg.freeze_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    if cfg.train_layers is not None:
        freeze_below(model, first_trained_layer(model, cfg))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    logger.info("Model %s: %.1fM parameters, %.1fM trainable", cfg.backbone, total / 1e6, trainable / 1e6)
    return model, tokenizer


def first_trained_layer(model, cfg: ModelConfig) -> int:
    """Index of the lowest encoder layer that `model.train_layers` trains (0 when all are trained).

    `train_layers` counts the backbone's own layers; the appended mean-pooling layer is always trained."""
    if cfg.train_layers is None:
        return 0
    extra = 1 if cfg.pooling == "mean_layer" else 0
    return model.config.num_hidden_layers - extra - cfg.train_layers


@torch.no_grad()
def append_mean_pooling_layer(model, scale: float = 8.0) -> None:
    """Append an encoder layer whose first-token output is LayerNorm(mean of the states below it).

    multilingual-e5 puts a text's meaning in the mean of its last hidden states, while the standard
    head reads the first token. This layer is a plain copy of the top layer with: query = 0 (every
    attention score equal, so each head averages the unmasked positions), value = identity, attention
    output = `scale` x identity (the mean outweighs the token's own state in the residual sum, and
    LayerNorm removes the scale), and a zero feed-forward output (the FFN starts as a no-op, but its
    input weights are kept so it can learn). So the checkpoint stays a plain model with
    `num_hidden_layers + 1` layers that `AutoModelForSequenceClassification` and `pipeline()` load, and
    the head starts from the pooling e5 was trained for; all of the layer is then trained.
    """
    import copy

    layers = encoder_layers(model)
    layer = copy.deepcopy(layers[-1])
    attn = layer.attention
    eye = torch.eye(model.config.hidden_size)
    attn.self.query.weight.zero_()
    attn.self.query.bias.zero_()
    attn.self.value.weight.copy_(eye)
    attn.self.value.bias.zero_()
    attn.output.dense.weight.copy_(scale * eye)
    attn.output.dense.bias.zero_()
    for norm in (attn.output.LayerNorm, layer.output.LayerNorm):
        norm.weight.fill_(1.0)
        norm.bias.zero_()
    layer.output.dense.weight.zero_()
    layer.output.dense.bias.zero_()
    layers.append(layer)
    model.config.num_hidden_layers = len(layers)


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
