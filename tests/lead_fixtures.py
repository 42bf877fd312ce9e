# ---- lead's fixtures: tiny random checkpoints and small synthetic datasets ----
import copy
import json
import random
from pathlib import Path

import pytest

from infer.labels import LabelSchema
from tiny_models import make_tiny_checkpoint

REPO = Path(__file__).resolve().parents[1]
SCHEMA_PATH = REPO / "data" / "labels" / "schema.yaml"

_TOPICS = {
    "expansion": "NATO enlargement and Ukraine membership",
    "missiles": "intermediate-range missiles near the border",
    "exercises": "troop drills and exercises near the border",
    "sanctions": "new sanctions on Russian banks",
    "china_alignment": "the partnership between Moscow and Beijing",
}
_STANCE = {
    "favor": "Moscow insists the demands are justified",
    "against": "Washington rejects the demands firmly",
    "neutral": "the talks are scheduled for Monday",
}
_LANGS = {"en": "", "ru": "Россия НАТО", "de": "Sanktionen OTAN"}


def synthetic_records(n_groups: int = 24, seed: int = 0) -> list[dict]:
    """Records in 3 languages per group (seed + 2 'translations'), labels drawn at random."""
    rng = random.Random(seed)
    schema = LabelSchema.from_yaml(SCHEMA_PATH)
    out = []
    for g in range(n_groups):
        issues = [i for i in schema.issues if rng.random() < 0.35]
        stance = schema.stance[g % 3]
        body = ", ".join(_TOPICS[i] for i in issues) or "a diplomatic schedule"
        for j, (lang, extra) in enumerate(_LANGS.items()):
            origin = "seed" if j == 0 else "translation"
            out.append({
                "id": f"r{g:03d}-{lang}", "text": f"{extra} Paragraph {g}: {body}; {_STANCE[stance]}. {extra}".strip(),
                "lang": lang, "issues": issues, "stance": stance, "origin": origin,
                "source": f"00{g % 5}_x.txt#{g + 1}", "group": f"g{g:03d}",
            })
    for a in range(6):
        out.append({"id": f"a{a}", "text": f"Authored note {a} about sanctions and drills", "lang": "en",
                    "issues": ["sanctions", "exercises"], "stance": schema.stance[a % 3], "origin": "authored",
                    "source": None, "group": f"a{a}"})
    return out


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


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
        "model.freeze_embeddings=false", f"output_dir={tmp_path / 'run'}", "name=tiny",
        "data.val_size=0.2", "data.test_size=0.2", "data.max_length=64",
        "train.epochs=2", "train.batch_size=8", "train.logging_steps=2", "train.precision=fp32",
        "train.threads=1", "eval.enabled=false",
    ])


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_backbone, tmp_path_factory) -> Path:
    """A classifier checkpoint in this package's format (labels, schema, thresholds), untrained."""
    from train.config import ModelConfig
    from train.model import build_model

    schema = LabelSchema.from_yaml(SCHEMA_PATH)
    model, tokenizer = build_model(ModelConfig(backbone=str(tiny_backbone)), schema)
    model.config.issue_thresholds = {n: 0.5 for n in schema.issues}
    out = tmp_path_factory.mktemp("tiny-checkpoint")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
