"""Shared fixtures: tiny random checkpoints and small synthetic datasets, built once per session."""

from pathlib import Path

import pytest

from infer.labels import LabelSchema
from synthetic_data import SCHEMA_PATH, synthetic_records, write_jsonl
from tiny_models import make_tiny_checkpoint


@pytest.fixture(autouse=True)
def _vector_store_in_tmp(tmp_path_factory, monkeypatch):
    """Frozen-embedding vectors (train.evaluate.vector_store) go to a per-session temporary store, not the user's."""
    monkeypatch.setenv("STC_VECTOR_CACHE", str(tmp_path_factory.getbasetemp() / "vector-store"))


@pytest.fixture
def schema() -> LabelSchema:
    return LabelSchema.from_yaml(SCHEMA_PATH)


@pytest.fixture
def data_file(tmp_path) -> Path:
    return write_jsonl(tmp_path / "data.jsonl", synthetic_records())


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory) -> Path:
    """A 2-layer, 32-wide random BERT with its own small WordPiece tokenizer (a local checkpoint dir)."""
    texts = [r["text"] for r in synthetic_records()]
    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny-backbone"), texts)


@pytest.fixture
def tiny_config(tmp_path, data_file, tiny_backbone):
    """A Config that trains the tiny backbone for a few steps on the synthetic data, into tmp_path."""
    from train.config import load_config

    return load_config(None, [
        f"data.files=[{data_file}]", f"data.schema={SCHEMA_PATH}", f"model.backbone={tiny_backbone}",
        "model.freeze_embeddings=false", "model.train_layers=null",  # the recipe's 4 of 12 layers: the tiny has 2
        f"output_dir={tmp_path / 'run'}", "name=tiny",
        "data.val_size=0.2", "data.test_size=0.2", "data.max_length=64",
        "train.epochs=2", "train.batch_size=8", "train.logging_steps=2", "train.precision=fp32",
        "train.threads=1", "eval.enabled=false",
    ])


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_backbone, tmp_path_factory) -> Path:
    """A classifier checkpoint in this package's format (labels, schema, thresholds), untrained."""
    from train.config import ModelConfig
    from train.model.build import build_model

    schema = LabelSchema.from_yaml(SCHEMA_PATH)
    model, tokenizer = build_model(ModelConfig(backbone=str(tiny_backbone), train_layers=None), schema)
    model.config.issue_thresholds = {n: 0.5 for n in schema.issues}
    out = tmp_path_factory.mktemp("tiny-checkpoint")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
