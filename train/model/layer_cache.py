"""Train the top layers on cached states of the frozen lower ones (Embedding Recycling).

With `model.train_layers = k`, the embeddings and the lower `L - k` encoder layers are frozen, so
their output for a given text never changes during training. `cache_states` runs them once over
every split (eval mode, no gradients) and keeps each text's states at layer `L - k`;
`TopLayers` then trains only layers `L - k .. L - 1` plus the pooler and classifier on those states.
This is the same model as fine-tuning with layers `0 .. L - k - 1` frozen (except that those layers'
dropout is off), trained in a fraction of the FLOPs: per epoch, the forward of the frozen layers and
the whole backward through them are gone. `TopLayers` shares its parameters with the full model,
so the checkpoint that is saved is the whole, plain `AutoModelForSequenceClassification`. The last
layer runs for the first token only where the head reads the pooler (`infer.first_token`).

Example:
    >>> store = cache_states(model, encoded["train"], start_layer=8)  # doctest: +SKIP
    >>> top = TopLayers(model, start_layer=8)  # doctest: +SKIP
    >>> top(**CachedStatesCollator(store)([encoded["train"][0]])).logits.shape  # doctest: +SKIP
    torch.Size([1, 8])
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput

from infer.first_token import head_logits, supports_first_token

logger = logging.getLogger(__name__)

INDEX_COLUMN = "cache_index"  # the column that points a dataset row at its cached states


def encoder_layers(model) -> nn.ModuleList:
    """The encoder's layer list of a BERT-like sequence-classification model."""
    base = getattr(model, model.base_model_prefix)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if not isinstance(layers, nn.ModuleList):
        raise ValueError(f"{type(model).__name__}: no encoder.layer list; model.train_layers supports BERT-like "
                         "encoders (BERT, XLM-R, e5)")
    return layers


def freeze_below(model, start_layer: int) -> None:
    """Freeze the embeddings and encoder layers `0 .. start_layer - 1`."""
    base = getattr(model, model.base_model_prefix)
    for p in base.embeddings.parameters():
        p.requires_grad_(False)
    for layer in encoder_layers(model)[:start_layer]:
        for p in layer.parameters():
            p.requires_grad_(False)


def _bidirectional_mask(config, hidden: torch.Tensor, attention_mask: torch.Tensor):
    from transformers.masking_utils import create_bidirectional_mask

    return create_bidirectional_mask(config=config, inputs_embeds=hidden, attention_mask=attention_mask)


def run_layers(model, hidden: torch.Tensor, attention_mask: torch.Tensor, layers: Sequence[nn.Module]):
    """Apply encoder `layers` to `hidden` (batch, seq, dim) under the model's own attention masking."""
    mask = _bidirectional_mask(model.config, hidden, attention_mask)
    for layer in layers:
        out = layer(hidden, mask)
        hidden = out[0] if isinstance(out, tuple) else out
    return hidden


@torch.inference_mode()
def cache_states(model, split, start_layer: int, batch_size: int = 16, dtype: torch.dtype = torch.bfloat16,
                 autocast: bool = False) -> list[torch.Tensor]:
    """States after the embeddings and layers `0 .. start_layer - 1`, one (len_i, dim) tensor per row.

    `split` has `input_ids` and `attention_mask` (a tokenized `datasets.Dataset`). Batches are
    length-sorted so little padding is computed; padding is cut off again before storing. States are
    kept in `dtype` (bf16 halves the memory; they are the input of trainable layers, not a target).
    """
    base = getattr(model, model.base_model_prefix)
    was_training = model.training
    model.eval()
    input_ids = list(split["input_ids"])  # once: a dataset row read per text decodes every column
    lengths = [len(ids) for ids in input_ids]
    order = np.argsort(lengths, kind="stable")
    store: list[torch.Tensor | None] = [None] * len(lengths)
    pad_id = model.config.pad_token_id or 0
    device = next(model.parameters()).device
    layers = encoder_layers(model)[:start_layer]
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        width = max(lengths[i] for i in idx)
        ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):
            ids[row, :lengths[i]] = torch.tensor(input_ids[i])
            mask[row, :lengths[i]] = 1
        ids, mask = ids.to(device), mask.to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            hidden = base.embeddings(input_ids=ids)
            hidden = run_layers(model, hidden, mask, layers)
        for row, i in enumerate(idx):
            store[i] = hidden[row, :lengths[i]].to("cpu", dtype).clone()
    model.train(was_training)
    mib = sum(t.numel() * t.element_size() for t in store) / 2**20
    logger.info("Cached layer-%d states of %d texts (%.0f MiB, %s)", start_layer, len(store), mib, dtype)
    return store  # type: ignore[return-value]


class CachedStatesCollator:
    """Rows with `cache_index` and `labels` -> a padded batch of cached states for `TopLayers`.

    Extra columns named in `passthrough` (e.g. the group and actor indices of `train.trainer`) are stacked and
    passed on.
    """

    def __init__(self, store: Sequence[torch.Tensor], pad_to_multiple_of: int = 8, passthrough: Sequence[str] = ()):
        self.store, self.multiple, self.passthrough = store, pad_to_multiple_of, tuple(passthrough)

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        states = [self.store[int(f[INDEX_COLUMN])] for f in features]
        width = max(s.shape[0] for s in states)
        width = -(-width // self.multiple) * self.multiple
        hidden = torch.zeros((len(states), width, states[0].shape[1]), dtype=torch.float32)
        mask = torch.zeros((len(states), width), dtype=torch.long)
        for row, s in enumerate(states):
            hidden[row, :s.shape[0]] = s.float()
            mask[row, :s.shape[0]] = 1
        batch = {"hidden_states": hidden, "attention_mask": mask,
                 "labels": torch.tensor(np.array([f["labels"] for f in features]), dtype=torch.float32)}
        for name in self.passthrough:
            if name in features[0]:
                batch[name] = torch.tensor(np.array([f[name] for f in features]), dtype=torch.float32)
        return batch


class TopLayers(nn.Module):
    """The top encoder layers + head of `model`, run on cached states of layer `start_layer`.

    It holds `model` itself (not a copy): training it trains the full model's top layers and head,
    and the full model is what gets saved. Heads that read the pooler (BERT) and heads that read
    the sequence (XLM-R's `RobertaClassificationHead`) are both supported.
    """

    def __init__(self, model, start_layer: int):
        super().__init__()
        self.model = model
        self.start_layer = start_layer
        self.config = model.config
        self.base_model_prefix = f"model.{model.base_model_prefix}"  # so head/encoder parameter names resolve
        layers = encoder_layers(model)
        if not 0 <= start_layer < len(layers):
            raise ValueError(f"start layer must be in [0, {len(layers) - 1}], got {start_layer}")

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor, labels=None,
                output_hidden_states: bool = False, **_: Any) -> SequenceClassifierOutput:
        model = self.model
        base = getattr(model, model.base_model_prefix)
        layers = encoder_layers(model)[self.start_layer:]
        if not output_hidden_states and supports_first_token(model):  # the last layer for the pooler's token only
            return SequenceClassifierOutput(logits=head_logits(model, hidden_states, attention_mask, layers))
        hidden = run_layers(model, hidden_states, attention_mask, layers)
        if getattr(base, "pooler", None) is not None and hasattr(model, "dropout"):  # BERT: pooler -> classifier
            logits = model.classifier(model.dropout(base.pooler(hidden)))
        else:  # RoBERTa-style heads pool the sequence themselves
            logits = model.classifier(hidden)
        return SequenceClassifierOutput(logits=logits, hidden_states=(hidden,) if output_hidden_states else None)

    def trained_state_dict(self) -> dict[str, torch.Tensor]:
        """The parameters that train (top layers, pooler, classifier), by their `state_dict` names.

        What a Trainer checkpoint of top-layer training needs: the frozen embeddings and lower layers are
        the backbone's own and never change, so each checkpoint writes ~9 M of e5-small's 119 M weights
        (0.2 instead of 0.8-1.6 s a save on D, ad-hoc timing). `frozen_names` are the rest, expected missing on load.
        """
        return {name: p.detach() for name, p in self.named_parameters() if p.requires_grad}

    def frozen_names(self) -> set[str]:
        """`state_dict` names that `trained_state_dict` leaves out (frozen weights and buffers)."""
        return set(self.state_dict()) - set(self.trained_state_dict())


def cached_training_inputs(model, encoded, start_layer: int, autocast: bool = False, passthrough: Sequence[str] = ()):
    """Cache every split's layer-`start_layer` states once; return (TopLayers, collator, splits).

    The returned `DatasetDict` keeps, per split, `cache_index` (rows of one shared store, so one collator
    serves training and evaluation), `labels`, `length` (for length-grouped batches) and `passthrough`.
    """
    import datasets

    store: list[torch.Tensor] = []
    out = {}
    for name, split in encoded.items():
        offset = len(store)
        store.extend(cache_states(model, split, start_layer, autocast=autocast))
        keep = [c for c in ("labels", "length", *passthrough) if c in split.column_names]
        out[name] = split.select_columns(keep).add_column(INDEX_COLUMN, list(range(offset, offset + len(split))))
    return TopLayers(model, start_layer), CachedStatesCollator(store, passthrough=passthrough), datasets.DatasetDict(out)


def unwrap(model):
    """The full model behind a `TopLayers` wrapper (or `model` itself)."""
    return model.model if isinstance(model, TopLayers) else model
