import dataclasses
import doctest
import json
import logging

import pytest
from datasets import Dataset

import train.data.augment
from train.data.augment import context_pairs, token_fit
from train.run import main


def _rec(i, lang, stance, issues, group=None, text=None):
    return {"id": f"r{i}", "text": text or f"Paragraph {i} in {lang}.", "lang": lang, "issues": issues,
            "stance": stance, "origin": "authored", "source": None, "group": group or f"g{i}"}


def _train():
    return Dataset.from_list([
        _rec(0, "en", "against", ["expansion"]),
        _rec(1, "en", "favor", ["missiles", "sanctions"]),
        _rec(2, "en", "neutral", []),                        # context for en
        _rec(3, "en", "neutral", [], group="g0"),            # context, but the same group as r0
        _rec(4, "de", "favor", ["exercises"]),               # no German context
        _rec(5, "zh", "against", [], text="北约拒绝了要求。"),
        _rec(6, "zh", "neutral", [], text="会谈持续了八小时。"),
    ])


def test_doctest():
    assert doctest.testmod(train.data.augment).failed == 0


def test_pairs_keep_the_target_labels_and_never_join_one_group():
    train = _train()
    by_id = {r["id"]: r for r in train}
    pairs = context_pairs(train, fraction=1.0, seed=0, fits=lambda texts: [True] * len(texts))
    assert len(pairs) > 0
    for pair in pairs:
        target, context = pair["id"].split("+ctx:")
        t, c = by_id[target], by_id[context]
        assert (pair["issues"], pair["stance"], pair["group"], pair["lang"]) == (t["issues"], t["stance"], t["group"],
                                                                                  t["lang"])
        assert c["stance"] == "neutral" and c["issues"] == [] and c["lang"] == t["lang"] and c["group"] != t["group"]
        sep = "" if t["lang"] == "zh" else " "
        assert pair["text"] in (t["text"] + sep + c["text"], c["text"] + sep + t["text"])
    targets = [p.split("+ctx:")[0] for p in pairs["id"]]
    assert "r4" not in targets  # no same-language context
    assert "r0" in targets and all(p != "r0+ctx:r3" for p in pairs["id"])
    assert pairs.features == train.features


def test_fraction_seed_and_length_limit():
    train = _train()
    fits_all = lambda texts: [True] * len(texts)  # noqa: E731
    one = context_pairs(train, fraction=1.0, seed=3, fits=fits_all)
    assert context_pairs(train, fraction=1.0, seed=3, fits=fits_all)["text"] == one["text"]
    assert len(context_pairs(train, fraction=3.0, seed=3, fits=fits_all)) > len(one)
    assert len(context_pairs(train, fraction=1.0, seed=3, fits=lambda texts: [False] * len(texts))) == 0
    assert len(context_pairs(train, fraction=0.0, seed=3, fits=fits_all)) == 0


def test_token_fit_counts_special_tokens(tiny_backbone):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_backbone)
    n = len(tok("drills near the border")["input_ids"])
    assert token_fit(tok, n)(["drills near the border"]) == [True]
    assert token_fit(tok, n - 1)(["drills near the border"]) == [False]


def test_config_rejects_out_of_range():
    from train.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="data.context_pairs"):
        load_config(None, ["data.context_pairs=-1"])
    with pytest.raises(ConfigError, match="data.context_pairs must be in"):
        load_config(None, ["data.context_pairs=5"])


def test_run_trains_on_pairs_but_records_only_the_real_records(tiny_config, tmp_path, caplog):
    from synthetic_data import synthetic_records, write_jsonl

    schedules = [_rec(100 + i, "en", "neutral", [], text=f"The council meets again on day {i}.") for i in range(6)]
    data = write_jsonl(tmp_path / "with-schedules.jsonl", synthetic_records() + schedules)
    cfg = dataclasses.replace(tiny_config, data=dataclasses.replace(tiny_config.data, files=[str(data)],
                                                                    context_pairs=1.0))
    with caplog.at_level(logging.INFO, logger="train.data.augment"):
        run_dir = main(cfg)
    added = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Context pairs:")]
    assert added and not added[0].startswith("Context pairs: 0 ")
    ids = json.loads((run_dir / "splits.json").read_text())["train"]
    assert ids and not any("+ctx:" in i for i in ids)
    assert "context_pairs: 1.0" in (run_dir / "train_config.yaml").read_text()
    inputs = json.loads((run_dir / "metrics.json").read_text())["train_inputs"]
    assert inputs["records"] == len(ids) and inputs["context_pairs"] > 0
    assert inputs["context_pairs"] == int(added[0].split()[2])
