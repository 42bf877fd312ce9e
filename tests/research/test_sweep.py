"""research/sweep.py on a tiny model: 2 recipes x 2 seeds, one table of mean ± std."""

import json

import pytest
import yaml

from research.sweep import (FINGERPRINT, aggregate, baseline_result, check_reusable, config_defaults,
                              main as sweep_main, parse_recipe)
from synthetic_data import SCHEMA_PATH


def test_parse_recipe_and_aggregate():
    assert parse_recipe("top2=model.train_layers=2 train.epochs=3") == ("top2", ["model.train_layers=2", "train.epochs=3"])
    assert parse_recipe("plain=") == ("plain", [])
    with pytest.raises(ValueError, match="NAME=OVERRIDES"):
        parse_recipe("no-equals-sign")
    agg = aggregate([{"test.stance": 0.5}, {"test.stance": 0.7}])
    assert agg["test.stance"] == pytest.approx((0.6, 0.1))


def test_baseline_row_keeps_the_seeds_that_have_it(caplog):
    rows = {1: {"test.stance": 0.5}, 2: {}, 3: {"test.stance": 0.7}}  # seed 2's run was trained without it
    result = baseline_result(rows, [1, 2, 3])
    (name, entry), = result.items()
    assert name == "embeddings_logreg (frozen features, seeds 1, 3 only)"
    assert entry["seeds"] == [1, 3] and entry["mean"]["test.stance"] == pytest.approx((0.6, 0.1))
    assert "no figures for seeds [2]" in caplog.text
    assert list(baseline_result({1: {"test.stance": 0.5}}, [1])) == ["embeddings_logreg (frozen features)"]
    assert baseline_result({1: {}}, [1]) == {}


def test_sweep_child_process_reports_wall_rss_and_failure(tmp_path):
    from research.sweep import run_training

    wall, rss, code = run_training("no-such-config.yaml", [], tmp_path / "log.txt")
    assert code != 0 and wall > 0 and rss > 0
    assert "Config file not found" in (tmp_path / "log.txt").read_text()


def test_sweep_runs_recipes_over_seeds(tmp_path, data_file, tiny_backbone, capsys):
    (tmp_path / "realnews").mkdir()
    extra = tmp_path / "realnews" / "dev.jsonl"
    extra.write_text(data_file.read_text(encoding="utf-8"), encoding="utf-8")
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({
        "data": {"files": [str(data_file)], "schema": str(SCHEMA_PATH), "val_size": 0.2, "test_size": 0.2,
                 "max_length": 32},
        "model": {"backbone": str(tiny_backbone), "train_layers": None},
        "train": {"epochs": 1, "batch_size": 16, "precision": "fp32", "threads": 1},
        "eval": {"extra_data": [str(extra)]},
    }))
    results = sweep_main(["--config", str(config), "--seeds", "1", "2", "--out", str(tmp_path / "sweep"),
                          "--recipe", "all=", "--recipe", "top1=model.train_layers=1", "--in-process"])
    assert list(results) == ["all", "top1", "embeddings_logreg (frozen features)"]
    for name in ("all", "top1"):
        runs = results[name]["runs"]
        assert len(runs) == 2 and all(r["wall"] > 0 and r["rss"] > 0 for r in runs)
        mean, std = results[name]["mean"]["realnews_dev.stance"]
        assert 0 <= mean <= 1 and std >= 0
    table = capsys.readouterr().out
    assert "| top1 |" in table and " ± " in table and "realnews_dev stance" in table
    saved = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert saved["seeds"] == [1, 2]
    assert (tmp_path / "sweep" / "sweep.md").read_text().startswith("`python -m research.sweep")
    # a second sweep over the same directory reuses the finished runs and adds only the new recipe
    (tmp_path / "sweep" / "all-s1").rename(tmp_path / "moved")  # a reused run is never opened again
    again = sweep_main(["--config", str(config), "--seeds", "1", "2", "--out", str(tmp_path / "sweep"),
                        "--recipe", "all=", "--in-process"])
    assert again["all"]["runs"] == results["all"]["runs"]
    # the config changed under a recipe (here the base config's epochs): its finished runs are not reused
    config.write_text(config.read_text().replace("epochs: 1", "epochs: 2"))
    with pytest.raises(SystemExit, match=r"all-s1.json was trained with another config \(train.epochs: 1.0 -> 2.0\)"):
        sweep_main(["--config", str(config), "--seeds", "1", "--out", str(tmp_path / "sweep"),
                    "--recipe", "all=", "--in-process"])
    # the same config over edited data (one record's stance changed): not reused either
    config.write_text(config.read_text().replace("epochs: 2", "epochs: 1"))
    text = data_file.read_text(encoding="utf-8")
    assert '"neutral"' in text
    data_file.write_text(text.replace('"neutral"', '"favor"', 1), encoding="utf-8")
    with pytest.raises(SystemExit, match=r"all-s1.json was trained with another config \(data.fingerprint: '[0-9a-f]{16}' -> "
                       r"'[0-9a-f]{16}'\); the data files it read have changed"):
        sweep_main(["--config", str(config), "--seeds", "1", "--out", str(tmp_path / "sweep"),
                    "--recipe", "all=", "--in-process"])


def test_run_recorded_before_a_config_key_existed_is_reused_at_its_default(tmp_path):
    config = {**config_defaults(), FINGERPRINT: "f"}
    recorded = {k: v for k, v in config.items() if k != "data.context_pairs"}
    check_reusable(tmp_path / "old.json", {"config": recorded}, config)  # the key is at its default: reused
    with pytest.raises(SystemExit, match=r"data.context_pairs: None -> 1.0"):
        check_reusable(tmp_path / "old.json", {"config": recorded}, {**config, "data.context_pairs": 1.0})


def test_run_recorded_with_a_since_removed_key_at_its_current_meaning_is_reused(tmp_path):
    config = {**config_defaults(), FINGERPRINT: "f"}
    check_reusable(tmp_path / "old.json", {"config": {**config, "train.token_drop": 0.0}}, config)
    with pytest.raises(SystemExit, match=r"train.token_drop: 0.3 -> None"):
        check_reusable(tmp_path / "old.json", {"config": {**config, "train.token_drop": 0.3}}, config)
