"""Top-layer training on cached states: same logits as the full model, plain checkpoints."""

import json

import pytest
import torch

from train.config import ConfigError, ModelConfig, load_config
from train.data.records import tokenize_splits
from train.model.layer_cache import (INDEX_COLUMN, CachedStatesCollator, TopLayers, cached_training_inputs,
                                     cache_states)
from train.model.build import build_model, first_trained_layer


def _tiny_model(tiny_backbone, schema, **kwargs):
    kwargs.setdefault("train_layers", None)  # the recipe trains 4 layers; the tiny backbone has 2
    model, tok = build_model(ModelConfig(backbone=str(tiny_backbone), **kwargs), schema)
    return model.eval(), tok


def _encoded(tok, schema, texts):
    import datasets

    ds = datasets.Dataset.from_dict({"text": texts, "issues": [["expansion"]] * len(texts),
                                     "stance": ["favor"] * len(texts)})
    return tokenize_splits(datasets.DatasetDict({"train": ds}), tok, schema, max_length=64)["train"]


TEXTS = ["NATO expansion talks in Geneva", "Russia missiles", "China Beijing Moscow guarantees sanctions drills border",
         "troops"]


def test_top_layers_on_cached_states_equal_the_full_model(tiny_backbone, schema):
    model, tok = _tiny_model(tiny_backbone, schema)
    split = _encoded(tok, schema, TEXTS)
    store = cache_states(model, split, start_layer=1, dtype=torch.float32)
    assert [s.shape[0] for s in store] == split["length"]  # padding cut off again
    batch = CachedStatesCollator(store)([{INDEX_COLUMN: i, "labels": split[i]["labels"]} for i in range(len(TEXTS))])
    with torch.no_grad():
        cached = TopLayers(model, start_layer=1)(**batch).logits
        enc = tok(TEXTS, padding=True, return_tensors="pt")
        full = model(**enc).logits
    torch.testing.assert_close(cached, full, atol=1e-5, rtol=1e-4)


def test_train_layers_freezes_the_rest_and_counts_the_pooling_layer(tiny_backbone, schema):
    cfg = ModelConfig(backbone=str(tiny_backbone), train_layers=1, pooling="mean_layer")
    model, _ = build_model(cfg, schema)
    assert model.config.num_hidden_layers == 3  # 2 backbone layers + the pooling layer
    assert first_trained_layer(model, cfg) == 1
    layers = model.bert.encoder.layer
    assert not any(p.requires_grad for p in layers[0].parameters())
    assert all(p.requires_grad for layer in layers[1:] for p in layer.parameters())
    assert not any(p.requires_grad for p in model.bert.embeddings.parameters())
    assert model.classifier.weight.requires_grad


def test_mean_pooling_layer_outputs_the_mean_of_the_states_below(tiny_backbone, schema):
    model, tok = _tiny_model(tiny_backbone, schema, pooling="mean_layer")
    enc = tok(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model.bert(**enc, output_hidden_states=True).hidden_states
    mask = enc["attention_mask"].unsqueeze(-1).float()
    mean = (hidden[-2] * mask).sum(1) / mask.sum(1)  # padding excluded
    expected = torch.nn.functional.layer_norm(mean, mean.shape[-1:])
    cos = torch.nn.functional.cosine_similarity(hidden[-1][:, 0], expected)
    assert cos.min() > 0.98
    # the first token alone does not explain it: its own state points elsewhere
    assert torch.nn.functional.cosine_similarity(hidden[-2][:, 0], expected).min() < cos.min()


def test_train_layers_beyond_the_backbone_or_below_one_are_refused(tiny_backbone, schema):
    with pytest.raises(ConfigError, match="model.train_layers=5 but the backbone has 2 layers"):
        build_model(ModelConfig(backbone=str(tiny_backbone), train_layers=5), schema)
    with pytest.raises(ConfigError, match="model.train_layers must be >= 1 or null, got 0"):
        load_config(None, ["model.train_layers=0"])


def test_cached_inputs_share_one_store_across_splits(tiny_backbone, schema):
    import datasets

    model, tok = _tiny_model(tiny_backbone, schema)
    split = _encoded(tok, schema, TEXTS)
    top, collator, out = cached_training_inputs(model, datasets.DatasetDict({"train": split, "validation": split}), 1)
    assert out["train"][INDEX_COLUMN] == [0, 1, 2, 3] and out["validation"][INDEX_COLUMN] == [4, 5, 6, 7]
    assert set(out["train"].column_names) == {"labels", "length", INDEX_COLUMN}
    batch = collator([out["validation"][0], out["validation"][2]])
    assert batch["hidden_states"].shape[1] % 8 == 0 and batch["attention_mask"].sum(1).tolist() == [
        split["length"][0], split["length"][2]]


def test_cached_training_run_saves_a_plain_full_checkpoint(tiny_config):
    from transformers import AutoModelForSequenceClassification, pipeline

    from train.run import main

    tiny_config.model.train_layers = 1
    tiny_config.model.pooling = "mean_layer"
    run_dir = main(tiny_config)
    config = json.loads((run_dir / "config.json").read_text())
    assert config["num_hidden_layers"] == 3 and config["architectures"] == ["BertForSequenceClassification"]
    model = AutoModelForSequenceClassification.from_pretrained(run_dir)
    assert len(model.bert.encoder.layer) == 3
    scores = pipeline("text-classification", model=str(run_dir), top_k=None)(["NATO expansion"])[0]
    assert sorted(s["label"] for s in scores) == sorted(config["id2label"].values())


def test_encoder_dropout_sets_every_encoder_dropout_and_is_validated(tiny_backbone, schema):
    model, _ = build_model(ModelConfig(backbone=str(tiny_backbone), train_layers=None, encoder_dropout=0.0, pooling="mean_layer"), schema)
    rates = {m.p for m in model.bert.encoder.modules() if isinstance(m, torch.nn.Dropout)}
    assert rates == {0.0} and model.dropout.p == 0.0
    assert model.config.hidden_dropout_prob == 0.0 and model.config.attention_probs_dropout_prob == 0.0
    kept, _ = build_model(ModelConfig(backbone=str(tiny_backbone), train_layers=None, encoder_dropout=0.0, dropout=0.2), schema)
    assert kept.dropout.p == 0.2
    with pytest.raises(ConfigError, match="model.encoder_dropout must be in"):
        ModelConfig(backbone=str(tiny_backbone), train_layers=None, encoder_dropout=1.5)


def test_attention_dropout_sets_the_attention_probabilities_alone(tiny_backbone, schema):
    model, _ = build_model(ModelConfig(backbone=str(tiny_backbone), train_layers=None, attention_dropout=0.0, pooling="mean_layer"),
                           schema)
    layers = model.bert.encoder.layer
    assert len(layers) == 3  # the appended pooling layer too
    assert all(layer.attention.self.dropout.p == 0.0 for layer in layers)
    assert all(layer.attention.output.dropout.p == 0.1 and layer.output.dropout.p == 0.1 for layer in layers)
    assert model.config.attention_probs_dropout_prob == 0.0 and model.config.hidden_dropout_prob == 0.1
    both, _ = build_model(ModelConfig(backbone=str(tiny_backbone), train_layers=None, encoder_dropout=0.2, attention_dropout=0.05), schema)
    assert both.config.hidden_dropout_prob == 0.2 and both.config.attention_probs_dropout_prob == 0.05
    with pytest.raises(ConfigError, match="model.attention_dropout must be in"):
        ModelConfig(backbone=str(tiny_backbone), train_layers=None, attention_dropout=-0.1)


def test_top_layers_use_the_first_token_path_with_the_same_logits(tiny_backbone, schema):
    """On cached states the last layer runs for the pooler's token only (`infer.first_token`): same logits."""
    model, tok = _tiny_model(tiny_backbone, schema, pooling="mean_layer")
    for p in model.parameters():  # a trained-looking model: the pooling layer's zero weights perturbed
        p.data.add_(0.05 * torch.randn_like(p))
    split = _encoded(tok, schema, TEXTS)
    store = cache_states(model, split, start_layer=1, dtype=torch.float32)
    rows = [{INDEX_COLUMN: i, "labels": split[i]["labels"]} for i in range(len(TEXTS))]
    with torch.no_grad():
        cached = TopLayers(model, start_layer=1)(**CachedStatesCollator(store)(rows)).logits
        full = model(**tok(TEXTS, padding=True, return_tensors="pt")).logits
    torch.testing.assert_close(cached, full, atol=1e-5, rtol=1e-4)
