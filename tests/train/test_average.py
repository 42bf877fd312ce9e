"""Weight averaging of runs (train.average): the mean of the inputs' weights, a plain checkpoint."""

import json

import pytest
import torch
from safetensors.torch import load_file

from train.average import average_runs, average_state_dicts, main
from train.run import main as train_main


@pytest.fixture(scope="module")
def two_runs(tiny_backbone, tmp_path_factory):
    from synthetic_data import SCHEMA_PATH, synthetic_records, write_jsonl
    from train.config import load_config

    tmp = tmp_path_factory.mktemp("average")
    data = write_jsonl(tmp / "d.jsonl", synthetic_records())
    runs = []
    for seed in (1, 2):  # one split (data.split_seed), two seeds
        cfg = load_config(None, [f"data.files=[{data}]", f"data.schema={SCHEMA_PATH}", f"model.backbone={tiny_backbone}",
                                 f"output_dir={tmp / f's{seed}'}", "data.val_size=0.2", "data.test_size=0.2",
                                 "data.split_seed=7", f"seed={seed}", "train.epochs=1", "train.precision=fp32",
                                 "model.freeze_embeddings=false", "model.train_layers=null", "data.max_length=64",
                                 "eval.enabled=false"])
        runs.append(train_main(cfg))
    return runs


def test_the_average_is_the_mean_of_the_inputs_and_loads_in_a_pipeline(two_runs, tmp_path):
    from transformers import pipeline

    out = average_runs(two_runs, tmp_path / "avg", evaluate=False)
    a, b, avg = (load_file(p / "model.safetensors") for p in (*two_runs, out))
    assert a.keys() == avg.keys()
    changed = [k for k in a if not torch.equal(a[k], b[k])]
    assert changed  # two seeds trained different weights
    for k in a:
        expected = ((a[k].double() + b[k].double()) / 2).to(a[k].dtype)
        assert torch.equal(avg[k], expected), k
    config = json.loads((out / "config.json").read_text())
    assert set(config["issue_thresholds"]) == {"expansion", "missiles", "exercises", "sanctions", "china_alignment"}
    assert json.loads((out / "metrics.json").read_text())["averaged_from"] == [str(r) for r in two_runs]
    scores = pipeline("text-classification", model=str(out), top_k=None)("NATO drills near the border")[0]
    assert len(scores) == 8


def test_runs_of_different_splits_need_no_refit_and_bad_inputs_are_one_line(two_runs, tmp_path, caplog):
    other = tmp_path / "other"
    import shutil

    shutil.copytree(two_runs[1], other)
    splits = json.loads((other / "splits.json").read_text())
    splits["train"], splits["test"] = splits["test"], splits["train"]
    (other / "splits.json").write_text(json.dumps(splits))
    with pytest.raises(ValueError, match="another train/validation/test split"):
        average_runs([two_runs[0], other], tmp_path / "avg", evaluate=False)
    assert average_runs([two_runs[0], other], tmp_path / "avg", refit_on_validation=False, evaluate=False).is_dir()
    assert main([str(two_runs[0]), str(tmp_path / "nope"), "--out", str(tmp_path / "x")]) == 2
    assert main([str(two_runs[0]), "--out", str(tmp_path / "y")]) == 2
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_average_state_dicts_refuses_other_weights(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.ones(2)}, str(tmp_path / "a.safetensors"))
    save_file({"v": torch.ones(2)}, str(tmp_path / "b.safetensors"))
    with pytest.raises(ValueError, match="other weights than"):
        average_state_dicts([tmp_path / "a.safetensors", tmp_path / "b.safetensors"])
