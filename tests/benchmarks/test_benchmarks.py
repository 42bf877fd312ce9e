"""The figures the benchmark scripts print: FLOP counting, what an epoch trained on."""

import numpy as np
import torch

from benchmarks.infer_speed import executed_flops
from benchmarks.train_speed import training_flops


def test_executed_flops_counts_matmuls():
    a, b = torch.ones(4, 8), torch.ones(8, 2)
    assert executed_flops(lambda: a @ b) == 2 * 4 * 8 * 2
    assert executed_flops(lambda: a + 1) == 0


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


def test_training_flops_counts_trained_and_cached_layers():
    f = training_flops(non_embedding_per_layer=10, layers_trained=4, layers_cached=8, tokens_per_epoch=100, epochs=3,
                       cached_passes=2)
    assert f["trained"] == 6 * 10 * 4 * 100 * 3
    assert f["cached"] == 2 * 10 * 8 * 100 * 2
    assert f["total"] == f["trained"] + f["cached"]
    assert np.isclose(f["total"], 72000 + 32000)
    one_token = training_flops(10, 4, 8, 100, 3, cached_passes=2, first_token_last=True)
    assert np.isclose(one_token["trained"], 6 * 10 * (3 + 1 / 6) * 100 * 3)  # K and V of the last layer only
