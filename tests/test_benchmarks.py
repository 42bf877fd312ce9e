"""The figures the benchmark scripts print: FLOP counting, the int8 probe's decisions and margin gate."""

import numpy as np
import pytest
import torch

from benchmarks.infer_speed import executed_flops
from benchmarks.int8_probe import main as int8_probe, margins


def test_executed_flops_counts_matmuls():
    a, b = torch.ones(4, 8), torch.ones(8, 2)
    assert executed_flops(lambda: a @ b) == 2 * 4 * 8 * 2
    assert executed_flops(lambda: a + 1) == 0


def test_margins_take_the_closest_decision():
    # two issues with thresholds 0.5, three stance classes
    scores = np.array([[0.9, 0.1, 0.6, 0.3, 0.1],     # issues far (|logit| 2.2), stance log(0.6/0.3) = 0.69
                       [0.52, 0.1, 0.8, 0.1, 0.1]])  # issue 0 at logit 0.08 from its cut
    m = margins(scores, np.array([0.5, 0.5]), k=2)
    assert m[0] == pytest.approx(np.log(2.0))
    assert m[1] == pytest.approx(np.log(0.52 / 0.48))


def test_int8_probe_compares_with_fp32(tiny_checkpoint, data_file):
    results = int8_probe(["--model", str(tiny_checkpoint), "--data", str(data_file), "--repeat", "1",
                          "--variant", "ao-tensor", "--variant", "ao-channel"])
    assert list(results) == ["ao-tensor", "ao-channel"]
    for r in results.values():
        assert r["seconds"] > 0 and r["paragraphs_changed"] >= r["stance_changed"] >= 0
        gates = [r[f"gate_{d}"] for d in (0.1, 0.25, 0.5, 1.0, 1.5)]
        # a wider gate re-runs more paragraphs and misses fewer changed ones
        assert [g["rerun"] for g in gates] == sorted(g["rerun"] for g in gates)
        assert [g["missed"] for g in gates] == sorted((g["missed"] for g in gates), reverse=True)
        assert all(g["missed"] <= r["paragraphs_changed"] for g in gates)


def test_train_speed_counts_pairs_in_the_recipe_not_the_full_one(
        tmp_path, tiny_backbone, monkeypatch, capsys):
    import re
    import sys

    import yaml

    from benchmarks.train_speed import main as train_speed
    from synthetic_data import SCHEMA_PATH, synthetic_records, write_jsonl

    schedules = [{"id": f"s{i}", "text": f"The council meets again on day {i}.", "lang": "en", "issues": [],
                  "stance": "neutral", "origin": "authored", "source": None, "group": f"s{i}"} for i in range(6)]
    data = write_jsonl(tmp_path / "data.jsonl", synthetic_records() + schedules)

    def run(pairs: float, **model) -> dict[str, float]:
        name = f"{pairs}-{'-'.join(map(str, model.values()))}"
        config = tmp_path / f"tiny-{name}.yaml"
        config.write_text(yaml.safe_dump({
            "data": {"files": [str(data)], "schema": str(SCHEMA_PATH), "val_size": 0.2, "test_size": 0.2,
                     "max_length": 64, "context_pairs": pairs},
            "model": {"backbone": str(tiny_backbone), "train_layers": 1, **model},
            "train": {"epochs": 1, "batch_size": 16, "precision": "fp32", "threads": 1},
            "eval": {"enabled": False},
        }))
        monkeypatch.setattr(sys, "argv", ["train_speed.py", "--config", str(config), "--no-eval",
                                          "--out", str(tmp_path / f"run-{name}")])
        train_speed()
        out = capsys.readouterr().out
        ratio = float(re.search(r"= ([\d.]+) x the full recipe", out).group(1))
        tokens = int(re.search(r"(\d+) tokens/epoch", out).group(1))
        return {"out": out, "tokens": tokens, "ratio": ratio}

    plain, paired = run(0.0), run(1.0)
    assert "context pairs" in paired["out"] and "context pairs" not in plain["out"]
    assert paired["tokens"] > plain["tokens"] and paired["ratio"] > plain["ratio"]


def test_train_speed_names_what_an_epoch_trained_on():
    from benchmarks.train_speed import inputs_line

    assert inputs_line(10, None) == "10 train records"
    assert inputs_line(10, {"records": 10, "context_pairs": 0, "tokens": 90}) == "10 train records"
    assert inputs_line(10, {"records": 10, "context_pairs": 9, "tokens": 190}) == "10 train records + 9 context pairs"
