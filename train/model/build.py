"""The classifier: one encoder and one standard sequence-classification head (its loss: `train.model.loss`).

The head has `len(issues)` logits followed by `len(stance)` logits; `config.json` stores
`id2label` (`issue/<name>`, `stance/<name>`), `label_schema` and `issue_thresholds`, so the checkpoint
loads with plain `AutoModelForSequenceClassification` and `pipeline("text-classification")`.
`problem_type` is `multi_label_classification`, so a plain pipeline applies a sigmoid per label:
the issue scores are exact and the stance with the highest score is the predicted stance.
"""

from __future__ import annotations

import logging

import torch

from infer.labels import LabelSchema
from train.backbones.bundled import load_pretrained
from train.config import ConfigError, ModelConfig
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
