import pytest
import torch

from train.config import load_config
from train.model import build_model
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


def test_precision_resolution():
    assert resolve_precision("fp32") == "fp32"
    assert resolve_precision("auto") in {"fp32", "bf16", "fp16"}
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="fp16 needs a CUDA GPU"):
            resolve_precision("fp16")


def test_head_learning_rate_is_validated():
    from train.config import ConfigError

    with pytest.raises(ConfigError, match="train.head_learning_rate"):
        load_config(None, ["train.head_learning_rate=5"])
