import pytest
import torch

from train.config import load_config
from train.model.build import build_model
from train.trainer import IssueStanceTrainer, resolve_precision


def _optimizer(tiny_config, schema, tmp_path, head_learning_rate):
    from transformers import TrainingArguments

    model, _ = build_model(tiny_config.model, schema)
    args = TrainingArguments(output_dir=str(tmp_path), learning_rate=tiny_config.train.learning_rate,
                             weight_decay=0.01, use_cpu=True, report_to="none")
    trainer = IssueStanceTrainer(model=model, args=args, head_learning_rate=head_learning_rate)
    optimizer = trainer.create_optimizer()
    assert trainer.create_optimizer() is optimizer  # built once
    return model, optimizer


def test_head_gets_its_own_learning_rate(tiny_config, schema, tmp_path):
    model, optimizer = _optimizer(tiny_config, schema, tmp_path, 1e-3)
    by_lr = {}
    for group in optimizer.param_groups:
        by_lr.setdefault(group["lr"], set()).update(id(p) for p in group["params"])
    head = {id(p) for n, p in model.named_parameters() if n.startswith("classifier.") or ".pooler." in n}
    assert by_lr[1e-3] == head
    assert by_lr[tiny_config.train.learning_rate] == {
        id(p) for p in model.parameters() if p.requires_grad and id(p) not in head}
    no_decay = {id(p) for g in optimizer.param_groups if g["weight_decay"] == 0 for p in g["params"]}
    assert id(model.classifier.bias) in no_decay and id(model.classifier.weight) not in no_decay


def test_no_head_learning_rate_keeps_one_learning_rate(tiny_config, schema, tmp_path):
    _, optimizer = _optimizer(tiny_config, schema, tmp_path, None)
    assert {g["lr"] for g in optimizer.param_groups} == {tiny_config.train.learning_rate}


@pytest.mark.parametrize("cuda, cuda_bf16, cpu_bf16, expected", [
    (False, False, False, "fp32"),
    (False, False, True, "bf16"),
    (True, True, False, "bf16"),
    (True, False, True, "fp16"),
])
def test_auto_precision_follows_the_hardware(monkeypatch, cuda, cuda_bf16, cpu_bf16, expected):
    from train import trainer

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: cuda_bf16)
    monkeypatch.setattr(trainer, "cpu_has_native_bf16", lambda: cpu_bf16)
    assert resolve_precision("auto") == expected


def test_explicit_precision_is_kept_and_fp16_needs_cuda(monkeypatch):
    assert resolve_precision("fp32") == "fp32"
    assert resolve_precision("bf16") == "bf16"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="fp16 needs a CUDA GPU"):
        resolve_precision("fp16")


def test_head_learning_rate_is_validated():
    from train.config import ConfigError

    with pytest.raises(ConfigError, match="train.head_learning_rate"):
        load_config(None, ["train.head_learning_rate=5"])



def test_eval_max_samples_evaluates_a_seeded_subset_in_length_order(tiny_config, schema, tmp_path):
    import dataclasses

    import datasets

    from train.trainer import build_trainer

    model, tokenizer = build_model(tiny_config.model, schema)

    def split(n):
        return datasets.Dataset.from_dict({
            "input_ids": [[5] * (i % 7 + 2) for i in range(n)], "attention_mask": [[1] * (i % 7 + 2) for i in range(n)],
            "labels": [[0.0] * schema.num_labels for _ in range(n)], "length": [i % 7 + 2 for i in range(n)],
            "row": list(range(n))})
    splits = datasets.DatasetDict(train=split(8), validation=split(30))

    def evaluated(cap):
        cfg = dataclasses.replace(tiny_config, train=dataclasses.replace(tiny_config.train, eval_max_samples=cap))
        return build_trainer(cfg, model, tokenizer, splits, schema, tmp_path / "work").eval_dataset

    assert evaluated(None)["row"] == list(range(30))  # uncapped: the whole split as given
    capped = evaluated(12)
    assert len(capped) == 12 and len(set(capped["row"])) == 12
    assert capped["length"] == sorted(capped["length"])
    assert capped["row"] == evaluated(12)["row"]  # seeded
    assert capped["row"] != list(range(12))  # a random subset, not the head of the split


def test_eval_max_samples_is_validated():
    with pytest.raises(Exception, match="train.eval_max_samples"):
        load_config(None, ["train.eval_max_samples=0"])


def test_top_layer_checkpoints_hold_the_trained_weights_and_warn_only_about_those(tiny_backbone, schema, caplog):
    """`TopLayers` checkpoints leave the frozen weights out; loading one warns about a missing trained weight only."""
    import logging
    from types import SimpleNamespace

    from torch.nn.modules.module import _IncompatibleKeys

    from train.config import ModelConfig
    from train.model.layer_cache import TopLayers
    from train.model.build import build_model
    from train.trainer import IssueStanceTrainer

    model, _ = build_model(ModelConfig(backbone=str(tiny_backbone), train_layers=1, pooling="mean_layer"), schema)
    top = TopLayers(model, start_layer=1)
    trained, frozen = top.trained_state_dict(), top.frozen_names()
    assert set(trained) == {n for n, p in top.named_parameters() if p.requires_grad}
    assert set(trained) | frozen == set(top.state_dict()) and not set(trained) & frozen
    assert "model.classifier.weight" in trained and "model.bert.embeddings.word_embeddings.weight" in frozen
    assert "model.bert.encoder.layer.0.attention.self.query.weight" in frozen

    fake_trainer = SimpleNamespace(model=top)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="train.trainer"):
        IssueStanceTrainer._issue_warnings_after_load(fake_trainer, _IncompatibleKeys(sorted(frozen), []))
        assert not [r for r in caplog.records if r.name == "train.trainer"]
        IssueStanceTrainer._issue_warnings_after_load(fake_trainer, _IncompatibleKeys(["model.classifier.weight"], []))
    warned = [r.getMessage() for r in caplog.records if r.name == "train.trainer"]
    assert len(warned) == 1 and "model.classifier.weight" in warned[0]


def test_groups_together_sampler_keeps_a_groups_rows_adjacent_and_covers_every_row():
    from train.trainer import GroupsTogetherSampler

    groups = [0, -1, 1, 0, -1, 1, 0, 2, 2, -1] * 3
    groups = [g if g < 0 else g + 10 * (i // 10) for i, g in enumerate(groups)]  # distinct groups per block
    lengths = [5 + (i * 7) % 13 for i in range(len(groups))]
    order = list(GroupsTogetherSampler(groups, lengths, batch_size=4))
    assert sorted(order) == list(range(len(groups)))
    for g in {g for g in groups if g >= 0}:
        positions = [order.index(i) for i, gi in enumerate(groups) if gi == g]
        assert max(positions) - min(positions) == len(positions) - 1  # one run of adjacent rows
