import pytest
import torch

from train.config import load_config
from train.model import build_model
from train.trainer import build_optimizer, resolve_precision


def test_head_gets_its_own_learning_rate(tiny_config, schema):
    tiny_config.train.head_learning_rate = 1e-3
    model, _ = build_model(tiny_config.model, schema)
    optimizer = build_optimizer(tiny_config, model)
    by_lr = {}
    for group in optimizer.param_groups:
        by_lr.setdefault(group["lr"], set()).update(id(p) for p in group["params"])
    head = {id(p) for n, p in model.named_parameters() if n.startswith("classifier.") or ".pooler." in n}
    assert by_lr[1e-3] == head
    assert by_lr[tiny_config.train.learning_rate] == {
        id(p) for p in model.parameters() if p.requires_grad and id(p) not in head}
    no_decay = {id(p) for g in optimizer.param_groups if g["weight_decay"] == 0 for p in g["params"]}
    assert id(model.classifier.bias) in no_decay and id(model.classifier.weight) not in no_decay


def test_no_head_learning_rate_keeps_the_trainer_default(tiny_config, schema):
    model, _ = build_model(tiny_config.model, schema)
    assert build_optimizer(tiny_config, model) is None


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
