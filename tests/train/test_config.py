import re
from pathlib import Path

import pytest

from train.config import Config, ConfigError, load_config

from synthetic_data import REPO


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_parses(path):
    cfg = load_config(path)
    assert isinstance(cfg, Config)
    assert cfg.name == path.stem


def test_default_yaml_is_the_dataclass_defaults_plus_what_it_documents():
    from_file = load_config(REPO / "configs" / "default.yaml").to_dict()
    defaults = load_config(None).to_dict()
    assert from_file["eval"].pop("extra_data") == ["../shared/realnews/dev.jsonl"]
    assert defaults["eval"].pop("extra_data") == []
    assert from_file == defaults


@pytest.mark.parametrize("name, differences", [
    ("gpu.yaml", {"model.backbone": "xlm-roberta-base", "train.epochs": 10.0, "train.learning_rate": 3e-5}),
    ("transfer_en.yaml", {"data.train_langs": ["en"], "train.epochs": 15.0}),
])
def test_shipped_configs_train_the_default_recipe_plus_their_differences(name, differences):
    cfg, default = load_config(REPO / "configs" / name), load_config(REPO / "configs" / "default.yaml")
    for key, value in differences.items():
        section, field_name = key.split(".")
        assert getattr(getattr(cfg, section), field_name) == value
    for key in ("model.pooling", "model.train_layers", "data.context_pairs", "train.head_learning_rate",
                "eval.extra_data"):  # inherited from default.yaml
        section, field_name = key.split(".")
        assert getattr(getattr(cfg, section), field_name) == getattr(getattr(default, section), field_name)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_base_chain_and_override_order(tmp_path):
    write(tmp_path / "bases" / "root.yaml", "name: root\nseed: 1\ntrain:\n  epochs: 5\n  batch_size: 4\n")
    write(tmp_path / "bases" / "middle.yaml", "base: root.yaml\ntrain:\n  epochs: 7\nmodel:\n  pooling: first_token\n")
    leaf = write(tmp_path / "leaf.yaml", "base: bases/middle.yaml\ntrain:\n  batch_size: 8\n")
    cfg = load_config(leaf, ["train.batch_size=2"])
    assert cfg.seed == 1  # from the root, through the chain
    assert cfg.train.epochs == 7  # the middle file overrides the root
    assert cfg.model.pooling == "first_token"
    assert cfg.train.learning_rate == load_config(None).train.learning_rate  # untouched keys keep the defaults
    assert cfg.train.batch_size == 2  # --set last, over the leaf's 8 and the root's 4
    assert load_config(leaf).train.batch_size == 8
    assert cfg.name == "leaf"  # named after the file it was started from, not its base


def test_a_missing_base_names_the_key(tmp_path):
    leaf = write(tmp_path / "leaf.yaml", "base: nope.yaml\n")
    with pytest.raises(ConfigError, match=re.escape(f"{leaf}: base: nope.yaml not found (looked for {tmp_path / 'nope.yaml'})")):
        load_config(leaf)


def test_unknown_keys_in_a_base_still_fail_with_the_hint(tmp_path):
    write(tmp_path / "root.yaml", "train:\n  lerning_rate: 0.1\n")
    leaf = write(tmp_path / "leaf.yaml", "base: root.yaml\n")
    with pytest.raises(ConfigError, match="Unknown config key: train.lerning_rate — did you mean train.learning_rate?"):
        load_config(leaf)


def test_a_base_cycle_is_an_error(tmp_path):
    write(tmp_path / "a.yaml", "base: b.yaml\n")
    write(tmp_path / "b.yaml", "base: a.yaml\n")
    with pytest.raises(ConfigError, match="base: forms a cycle"):
        load_config(tmp_path / "a.yaml")


def test_default_config_uses_bundled_backbone_and_repo_data():
    cfg = load_config(REPO / "configs" / "default.yaml")
    assert cfg.model.backbone == "bundled:multilingual-e5-small"
    assert cfg.data.files == ["data/labels/*.jsonl"]
    assert cfg.run_dir == Path("runs/default")


def test_set_overrides_convert_types():
    cfg = load_config(None, ["train.epochs=3", "train.learning_rate=2e-5", "data.train_langs=[en, de]",
                             "model.freeze_embeddings=false", "hub.repo_id=org/name"])
    assert cfg.train.epochs == 3.0 and isinstance(cfg.train.epochs, float)
    assert cfg.train.learning_rate == pytest.approx(2e-5)
    assert cfg.data.train_langs == ["en", "de"]
    assert cfg.model.freeze_embeddings is False
    assert cfg.hub.repo_id == "org/name"


def test_unknown_key_suggests_the_closest(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lerning_rate: 0.1\n")
    with pytest.raises(ConfigError, match=re.escape("Unknown config key: train.lerning_rate — did you mean train.learning_rate?")):
        load_config(path)


def test_unknown_section_and_override():
    with pytest.raises(ConfigError, match="did you mean train"):
        load_config(None, ["trian.epochs=1"])


@pytest.mark.parametrize("override, message", [
    ("train.batch_size=abc", "train.batch_size must be an integer, got 'abc'"),
    ("train.batch_size=0", "train.batch_size must be >= 1, got 0"),
    ("model.freeze_embeddings=maybe", "model.freeze_embeddings must be true or false"),
    ("train.precision=int4", "train.precision must be one of"),
    ("data.test_size=0.9", "data.test_size must be in (0, 0.5)"),
    ("hub.push=true", "hub.push is true but hub.repo_id is not set"),
    ("train.epochs", "--set expects key=value"),
])
def test_bad_values_name_the_key(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(None, [override])


def test_missing_config_file_and_data_glob(tmp_path):
    with pytest.raises(ConfigError, match="Config file not found"):
        load_config(tmp_path / "nope.yaml")
    cfg = load_config(None, [f"data.files=[{tmp_path}/*.jsonl]"])
    with pytest.raises(ConfigError, match=re.escape("data.files[0]: no file matches")):
        cfg.data_files()


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config(None, ["train.epochs=2", "name=x"])
    cfg.save(tmp_path / "train_config.yaml")
    again = load_config(tmp_path / "train_config.yaml")
    assert again == cfg


@pytest.mark.parametrize("key", ["data.context_pairs_only=true", "train.token_drop=0.3", "model.train_ffn=false",
                                 "model.num_layers=8", "loss.cls_alignment_weight=0.1", "model.text_prefix=query"])
def test_keys_of_removed_experiments_are_refused_unless_at_their_current_meaning(key, tmp_path):
    with pytest.raises(ConfigError, match=re.escape(f"Removed config key: {key.split('=')[0]}")):
        load_config(None, [key])
    saved = tmp_path / "train_config.yaml"  # a run saved before the removal holds every key at its neutral value
    saved.write_text("data:\n  context_pairs_only: false\nmodel:\n  num_layers: null\n  text_prefix: ''\n"
                     "  train_ffn: true\ntrain:\n  token_drop: 0.0\nloss:\n  cls_alignment_weight: 0.0\n")
    assert load_config(saved) == load_config(None, ["name=train_config"])


def test_a_set_value_that_is_not_yaml_names_the_key():
    from train.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=r"^--set data.files: '\[a,' is not a valid YAML value") as info:
        load_config(None, ["data.files=[a,"])
    assert "\n" not in str(info.value)
