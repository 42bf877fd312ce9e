"""The last encoder layer computed for the first token only: what a BERT pooler head reads.

A BERT sequence-classification head reads one vector, the last layer's state of the first token.
Every other position of the last layer is computed and thrown away: its keys and values are needed
(the first token attends to every position) but its queries, attention output and feed-forward are
not. `first_token_layer` computes the last layer for position 0 only, the same arithmetic as the
layer itself (same modules, same attention function, dropout included in training), in about 1/6 of
its FLOPs. With the appended mean-pooling layer (`model.pooling: mean_layer`) that is a 13th layer
of full cost, so training (top layers on cached states) and inference both save its 5/6.

`first_token_logits(model, input_ids, attention_mask)` is `model(...).logits` computed that way; it
returns None for a model it does not know to be a BERT-with-pooler classifier (the caller then runs
the model's own forward).

Example:
    >>> logits = first_token_logits(model, batch["input_ids"], batch["attention_mask"])  # doctest: +SKIP
"""

from __future__ import annotations

import torch
from torch import nn


def supports_first_token(model) -> bool:
    """True for BERT-like classifiers (`BertForSequenceClassification`) whose head reads the pooler."""
    base = getattr(model, getattr(model, "base_model_prefix", ""), None)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    return (getattr(model.config, "model_type", None) == "bert" and getattr(base, "pooler", None) is not None
            and hasattr(model, "classifier") and hasattr(model, "dropout") and isinstance(layers, nn.ModuleList)
            and len(layers) > 0 and hasattr(layers[-1], "attention") and hasattr(layers[-1], "feed_forward_chunk")
            and not getattr(model.config, "is_decoder", False) and not getattr(model.config, "add_cross_attention", False))


def first_token_layer(layer, hidden: torch.Tensor, mask) -> torch.Tensor:
    """`layer(hidden, mask)[:, :1]` (batch, 1, dim) for a BertLayer, computed for position 0 only.

    `mask` is the 4-d attention mask the encoder's layers get (or None).
    """
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
    from transformers.models.bert.modeling_bert import eager_attention_forward

    attention = layer.attention
    self_attn = attention.self
    batch, length, _ = hidden.shape
    first = hidden[:, :1]
    head = self_attn.attention_head_size
    query = self_attn.query(first).view(batch, 1, -1, head).transpose(1, 2)
    key = self_attn.key(hidden).view(batch, length, -1, head).transpose(1, 2)
    value = self_attn.value(hidden).view(batch, length, -1, head).transpose(1, 2)
    if mask is not None and mask.dim() == 4 and mask.shape[-2] != 1:
        mask = mask[:, :, :1, :]  # the first query's row
    interface = ALL_ATTENTION_FUNCTIONS.get_interface(self_attn.config._attn_implementation, eager_attention_forward)
    context, _ = interface(self_attn, query, key, value, mask,
                           dropout=self_attn.dropout.p if self_attn.training else 0.0, scaling=self_attn.scaling)
    attended = attention.output(context.reshape(batch, 1, -1).contiguous(), first)
    return layer.feed_forward_chunk(attended)


def first_token_logits(model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor | None:
    """`model(input_ids, attention_mask).logits`, the last layer run for the first token only; None if the
    model is not a supported BERT classifier."""
    if not supports_first_token(model):
        return None
    base = model.bert
    hidden = base.embeddings(input_ids=input_ids)
    return head_logits(model, hidden, attention_mask, base.encoder.layer)


def head_logits(model, hidden: torch.Tensor, attention_mask: torch.Tensor, layers) -> torch.Tensor:
    """Run encoder `layers` on `hidden` (the last one for the first token only), then pooler and classifier."""
    from transformers.masking_utils import create_bidirectional_mask

    mask = create_bidirectional_mask(config=model.config, inputs_embeds=hidden, attention_mask=attention_mask)
    for layer in layers[:-1]:
        out = layer(hidden, mask)
        hidden = out[0] if isinstance(out, tuple) else out
    hidden = first_token_layer(layers[-1], hidden, mask)
    base = model.bert
    return model.classifier(model.dropout(base.pooler(hidden)))
