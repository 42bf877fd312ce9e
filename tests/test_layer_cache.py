"""Top-layer training on cached states: same logits as the full model, plain checkpoints, FLOP counts."""

import json

import numpy as np
import pytest
import torch

from train.config import ConfigError, ModelConfig, load_config
from train.data import tokenize_splits
from train.layer_cache import (INDEX_COLUMN, CachedStatesCollator, TopLayers, cached_training_inputs, cache_states,
                               drop_tokens, kept_lengths, training_flops)
from train.model import build_model, first_trained_layer


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


def test_train_ffn_false_freezes_the_feed_forward_weights_of_the_trained_layers(tiny_backbone, schema):
    cfg = ModelConfig(backbone=str(tiny_backbone), train_layers=1, pooling="mean_layer", train_ffn=False)
    model, tok = build_model(cfg, schema)
    trained, pooling = model.bert.encoder.layer[1:]
    assert not trained.intermediate.dense.weight.requires_grad and not trained.output.dense.weight.requires_grad
    assert trained.intermediate.dense.bias.requires_grad and trained.output.LayerNorm.weight.requires_grad
    assert trained.attention.self.query.weight.requires_grad
    assert all(p.requires_grad for p in pooling.parameters())  # the appended layer trains in full
    before = trained.intermediate.dense.weight.clone()
    enc = tok(TEXTS, padding=True, return_tensors="pt")
    model.train()
    model(**enc).logits.pow(2).mean().backward()
    assert trained.intermediate.dense.weight.grad is None  # no weight gradient computed
    assert trained.attention.self.query.weight.grad.abs().sum() > 0  # gradients still flow below the frozen FFN
    torch.testing.assert_close(trained.intermediate.dense.weight, before)


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


def test_num_layers_drops_top_layers_and_validates(tiny_backbone, schema):
    model, _ = _tiny_model(tiny_backbone, schema, num_layers=1, pooling="first_token")
    assert model.config.num_hidden_layers == 1 and len(model.bert.encoder.layer) == 1
    with pytest.raises(ConfigError, match="model.train_layers"):
        build_model(ModelConfig(backbone=str(tiny_backbone), train_layers=5), schema)
    with pytest.raises(ConfigError, match="model.train_layers .* exceeds model.num_layers"):
        load_config(None, ["model.num_layers=2", "model.train_layers=3"])


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


def test_training_flops_counts_trained_and_cached_layers():
    f = training_flops(non_embedding_per_layer=10, layers_trained=4, layers_cached=8, tokens_per_epoch=100, epochs=3,
                       cached_passes=2)
    assert f["trained"] == 6 * 10 * 4 * 100 * 3
    assert f["cached"] == 2 * 10 * 8 * 100 * 2
    assert f["total"] == f["trained"] + f["cached"]
    assert np.isclose(f["total"], 72000 + 32000)
    one_token = training_flops(10, 4, 8, 100, 3, cached_passes=2, first_token_last=True)
    assert np.isclose(one_token["trained"], 6 * 10 * (3 + 1 / 6) * 100 * 3)  # K and V of the last layer only


def test_training_flops_count_the_tokens_the_trained_layers_keep():
    f = training_flops(10, 4, 8, 100, 3, cached_passes=2, trained_tokens_per_epoch=70)
    assert f["trained"] == 6 * 10 * 4 * 70 * 3
    assert f["cached"] == 2 * 10 * 8 * 100 * 2  # the cache is filled for every token


def test_training_flops_skip_the_weight_gradients_of_frozen_weights():
    f = training_flops(10, 4, 8, 100, 3, cached_passes=2, frozen_params=4 * 6)  # 2/3 of 4 layers' weights frozen
    assert f["trained"] == (6 * 10 * 4 - 2 * 24) * 100 * 3
    assert f["trained"] / training_flops(10, 4, 8, 100, 3, cached_passes=2)["trained"] == pytest.approx(0.8)


def test_drop_tokens_keeps_the_ends_and_an_ordered_random_subset():
    torch.manual_seed(0)
    lengths = torch.tensor([12, 2, 7, 30])
    width, dim = 32, 3
    mask = (torch.arange(width)[None, :] < lengths[:, None]).long()
    # each state names its row and position, so what was kept can be read back
    hidden = torch.stack([torch.arange(width).float()[None, :].expand(len(lengths), -1),
                          torch.arange(len(lengths)).float()[:, None].expand(-1, width),
                          torch.ones(len(lengths), width)], dim=-1) * mask[..., None]
    kept, new_mask = drop_tokens(hidden, mask, 0.5)
    keep = kept_lengths(lengths, 0.5)
    assert new_mask.sum(1).tolist() == keep.tolist() == [7, 2, 4, 16]
    assert kept.shape == (4, 16, dim) and new_mask.shape == (4, 16)  # re-padded to a multiple of 8
    for row, n in enumerate(lengths.tolist()):
        positions = kept[row, :keep[row], 0].long().tolist()
        assert positions[0] == 0 and positions[-1] == n - 1  # the special tokens stay
        assert positions == sorted(set(positions)) and all(p < n for p in positions)  # in order, no padding
        assert (kept[row, :keep[row], 1] == row).all() and (kept[row, :keep[row], 2] == 1).all()
        assert (kept[row, keep[row]:] == 0).all()  # the new padding is zeros
    drawn = {tuple(drop_tokens(hidden, mask, 0.5)[0][3, :16, 0].long().tolist()) for _ in range(5)}
    assert len(drawn) > 1  # a fresh draw each call


def test_top_layers_drop_tokens_in_training_only(tiny_backbone, schema):
    model, tok = _tiny_model(tiny_backbone, schema)
    for module in model.modules():  # no dropout: the token draw is the only randomness
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    split = _encoded(tok, schema, TEXTS)
    store = cache_states(model, split, start_layer=1, dtype=torch.float32)
    batch = CachedStatesCollator(store)([{INDEX_COLUMN: i, "labels": split[i]["labels"]} for i in range(len(TEXTS))])
    dropping, plain = TopLayers(model, start_layer=1, token_drop=0.5), TopLayers(model, start_layer=1)
    with torch.no_grad():
        torch.testing.assert_close(dropping.eval()(**batch).logits, plain.eval()(**batch).logits)
        torch.manual_seed(3)
        trained = dropping.train()(**batch).logits
        torch.manual_seed(3)
        kept, mask = drop_tokens(batch["hidden_states"], batch["attention_mask"], 0.5)
        torch.testing.assert_close(trained, plain.train()(hidden_states=kept, attention_mask=mask).logits)
        assert not torch.allclose(trained, plain.eval()(**batch).logits)
    with pytest.raises(ValueError, match="token_drop must be in"):
        TopLayers(model, start_layer=1, token_drop=1.0)


def test_run_with_token_drop_records_the_tokens_trained(tiny_config):
    from train.run import main

    tiny_config.model.train_layers = 1
    tiny_config.train.token_drop = 0.5
    run_dir = main(tiny_config)
    inputs = json.loads((run_dir / "metrics.json").read_text())["train_inputs"]
    assert 0.5 * inputs["tokens"] < inputs["trained_tokens"] < inputs["tokens"]  # the ends are always kept
    assert "token_drop: 0.5" in (run_dir / "train_config.yaml").read_text()


def test_text_prefix_lives_in_the_saved_tokenizer(tiny_backbone, schema, tmp_path):
    from transformers import AutoTokenizer

    _, plain = _tiny_model(tiny_backbone, schema)
    _, tok = _tiny_model(tiny_backbone, schema, text_prefix="Geneva talks: ")
    tok.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    for text in TEXTS:
        expected = plain("Geneva talks: " + text)["input_ids"]
        assert tok(text)["input_ids"] == expected and loaded(text)["input_ids"] == expected
    windows = loaded(["NATO " * 80], truncation=True, max_length=16, stride=4, return_overflowing_tokens=True)
    prefix_ids = plain("Geneva talks:", add_special_tokens=False)["input_ids"]
    assert len(windows["input_ids"]) > 1
    assert all(w[1:1 + len(prefix_ids)] == prefix_ids and len(w) <= 16 for w in windows["input_ids"])


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
