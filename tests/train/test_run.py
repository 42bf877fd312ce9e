"""The training job on a tiny random model: outputs, thresholds, resume, crash safety, bad input, DDP."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from synthetic_data import REPO, synthetic_records, write_jsonl
from train import run as run_module
from train.__main__ import cli
from train.config import load_config
from train.data.records import DataError
from train.model.loss import IssueStanceLoss
from train.run import main


def test_loss_combines_bce_and_weighted_ce(schema):
    cfg = load_config(None, ["loss.issue_weight=2", "loss.stance_weight=0.5"]).loss
    labels = np.array([[1, 0, 0, 0, 0, 1, 0, 0]] * 3 + [[0, 1, 0, 0, 0, 0, 0, 1]], dtype=float)
    loss = IssueStanceLoss(schema, cfg, labels)
    # pos_weight = negatives / max(positives, 1), clipped to [1, 10]: 1/3 -> 1, 3/1, then 4/0 -> 4
    assert loss.pos_weight.tolist() == pytest.approx([1.0, 3.0, 4.0, 4.0, 4.0])
    # balanced stance weights (sklearn's compute_class_weight): n / (classes * count): favor 3, neutral 1,
    # against 0 -> counted as 1
    assert loss.class_weight.tolist() == pytest.approx([4 / 9, 4 / 3, 4 / 3])
    logits = torch.zeros(2, 8, requires_grad=True)
    y = torch.tensor(labels[[0, 3]], dtype=torch.float)
    value = loss({"logits": logits}, y)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits[:, :5], y[:, :5], pos_weight=loss.pos_weight)
    ce = torch.nn.functional.cross_entropy(logits[:, 5:], y[:, 5:].argmax(1), weight=loss.class_weight)
    assert value.item() == pytest.approx(2 * bce.item() + 0.5 * ce.item())
    value.backward()
    assert logits.grad.abs().sum() > 0


def test_stance_label_smoothing(schema):
    cfg = load_config(None, ["loss.stance_class_weight=false", "loss.stance_label_smoothing=0.2",
                             "loss.issue_weight=0"]).loss
    labels = np.array([[0, 0, 0, 0, 0, 1, 0, 0]], dtype=float)
    loss = IssueStanceLoss(schema, cfg, labels)
    logits = torch.tensor([[0.0] * 5 + [3.0, -1.0, 0.5]])
    expected = torch.nn.functional.cross_entropy(logits[:, 5:], torch.tensor([0]), label_smoothing=0.2)
    assert loss({"logits": logits}, torch.tensor(labels, dtype=torch.float)).item() == pytest.approx(expected.item())
    with pytest.raises(ValueError, match="loss.stance_label_smoothing"):
        load_config(None, ["loss.stance_label_smoothing=1.5"])


def test_main_trains_and_writes_a_complete_run(tiny_config):
    run_dir = main(tiny_config)
    assert run_dir == tiny_config.run_dir
    names = set(os.listdir(run_dir))
    assert {"config.json", "model.safetensors", "tokenizer.json", "train_config.yaml", "splits.json",
            "metrics.json", "label_schema.yaml"} <= names
    assert not any(n.endswith((".bin", ".pt", ".pkl")) for n in names)
    assert not run_dir.with_name(run_dir.name + ".partial").exists()
    config = json.loads((run_dir / "config.json").read_text())
    assert config["id2label"]["0"] == "issue/expansion" and config["id2label"]["7"] == "stance/neutral"
    assert set(config["issue_thresholds"]) == {"expansion", "missiles", "exercises", "sanctions", "china_alignment"}
    assert all(0.05 <= t <= 0.95 for t in config["issue_thresholds"].values())
    assert config["label_schema"]["stance"] == ["favor", "against", "neutral"]
    splits = json.loads((run_dir / "splits.json").read_text())
    assert sum(map(len, splits.values())) == len(synthetic_records())
    from transformers import AutoTokenizer

    tokenizer, by_id = AutoTokenizer.from_pretrained(run_dir), {r["id"]: r for r in synthetic_records()}
    for name in ("validation", "test"):  # evaluated in length order, so batches pad little
        lengths = [len(tokenizer(by_id[i]["text"], truncation=True, max_length=64)["input_ids"])
                   for i in splits[name]]
        assert lengths == sorted(lengths) and len(set(lengths)) > 1
    summary = json.loads((run_dir / "data_summary.json").read_text())
    assert {k: v["n"] for k, v in summary["splits"].items()} == {k: len(v) for k, v in splits.items()}
    assert summary["all"]["n"] == len(synthetic_records())
    assert summary["all"]["by_origin"] == {"seed": 24, "translation": 48, "authored": 6}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert any("eval_macro_f1" in e for e in metrics["log_history"])
    assert "test_issues_macro_f1" in metrics["test"]
    assert load_config(run_dir / "train_config.yaml") == tiny_config


def test_thresholds_are_tuned_on_the_validation_split(tiny_config, schema, monkeypatch):
    from train.thresholds import tune_thresholds

    seen = {}

    def spy(probs, labels, **kw):
        seen["probs"], seen["labels"] = probs, labels
        seen["out"] = np.array([0.31, 0.42, 0.53, 0.64, 0.75])  # distinctive, to find them in config.json
        tune_thresholds(probs, labels, **kw)
        return seen["out"]

    monkeypatch.setattr(run_module, "tune_thresholds", spy)
    run_dir = main(tiny_config)
    val_ids = json.loads((run_dir / "splits.json").read_text())["validation"]
    by_id = {r["id"]: r for r in synthetic_records()}
    expected = np.array([schema.encode(by_id[i]["issues"], by_id[i]["stance"]) for i in val_ids])[:, :5]
    # validation is stored and predicted in one order (length order): labels and calibration groups align by row
    assert np.array_equal(np.asarray(seen["labels"]).astype(int), expected.astype(int))

    def rows(a):
        return sorted(map(tuple, np.asarray(a).astype(int).tolist()))

    test_ids = json.loads((run_dir / "splits.json").read_text())["test"]
    assert len(seen["labels"]) != len(test_ids) or rows(seen["labels"]) != rows(
        [schema.encode(by_id[i]["issues"], by_id[i]["stance"])[:5] for i in test_ids])
    assert seen["probs"].shape == (len(val_ids), 5) and ((seen["probs"] > 0) & (seen["probs"] < 1)).all()
    saved = json.loads((run_dir / "config.json").read_text())["issue_thresholds"]
    assert [saved[n] for n in schema.issues] == pytest.approx(seen["out"].tolist())


def test_checkpoint_loads_in_a_plain_pipeline(tiny_config):
    from transformers import pipeline

    run_dir = main(tiny_config)
    clf = pipeline("text-classification", model=str(run_dir), top_k=None)
    out = clf("NATO drills near the border")[0]
    assert {d["label"] for d in out} == {f"issue/{n}" for n in ["expansion", "missiles", "exercises", "sanctions",
                                                                 "china_alignment"]} | {"stance/favor", "stance/against", "stance/neutral"}



def test_embeddings_frozen_by_default(tiny_config, schema):
    from train.model.build import build_model

    model, _ = build_model(load_config(None, [f"model.backbone={tiny_config.model.backbone}", "model.train_layers=null"]).model, schema)
    assert not model.get_input_embeddings().weight.requires_grad
    assert model.classifier.weight.requires_grad


def spy_on_resume(monkeypatch) -> dict:
    """Patch `Trainer.train` to record the checkpoint it resumes from in the returned dict."""
    from transformers import Trainer

    seen, original = {}, Trainer.train

    def spy(self, resume_from_checkpoint=None, **kw):
        seen["checkpoint"] = resume_from_checkpoint
        return original(self, resume_from_checkpoint=resume_from_checkpoint, **kw)

    monkeypatch.setattr(Trainer, "train", spy)
    return seen


def test_crash_leaves_no_run_and_resume_continues(tiny_config, monkeypatch):
    def crash(staging, run_dir):
        raise RuntimeError("simulated crash before the run was moved into place")

    monkeypatch.setattr(run_module, "replace_dir", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        main(tiny_config)
    assert not tiny_config.run_dir.exists()
    partial = tiny_config.run_dir.with_name(tiny_config.run_dir.name + ".partial")
    assert any(p.name.startswith("checkpoint-") for p in partial.iterdir())
    monkeypatch.undo()

    seen = spy_on_resume(monkeypatch)
    tiny_config.train.epochs = 3
    run_dir = main(tiny_config, resume=True)
    assert seen["checkpoint"] and "checkpoint-" in seen["checkpoint"]
    epochs = [e["epoch"] for e in json.loads((run_dir / "metrics.json").read_text())["log_history"] if "eval_loss" in e]
    assert max(epochs) == 3


@pytest.mark.parametrize("cached", [False, True], ids=["full-model", "cached-top-layers"])
def test_killed_between_step_checkpoints_resumes_from_the_later_one(tiny_config, monkeypatch, caplog, cached):
    """6 steps per epoch, checkpoints every 2 steps: killed at step 5, the run resumes from checkpoint-4.
    Also for top-layer training on cached states (the checkpoints hold the `TopLayers` wrapper)."""
    import logging

    from transformers import TrainerCallback
    from transformers.utils import logging as hf_logging

    from train.trainer import WALL_TIME_FILE

    class Kill(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 5:
                raise KeyboardInterrupt("killed between checkpoint-4 and checkpoint-6")

    original_build = run_module.build_trainer

    def build_with_kill(*args, **kwargs):
        trainer = original_build(*args, **kwargs)
        trainer.add_callback(Kill())
        return trainer

    tiny_config.train.save_steps = 2
    if cached:
        tiny_config.model.train_layers, tiny_config.model.pooling = 1, "mean_layer"
    monkeypatch.setattr(run_module, "build_trainer", build_with_kill)
    with pytest.raises(KeyboardInterrupt):
        main(tiny_config)
    partial = tiny_config.run_dir.with_name(tiny_config.run_dir.name + ".partial")
    assert sorted(p.name for p in partial.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    before = json.loads((partial / WALL_TIME_FILE).read_text())["seconds"]
    assert before > 0
    if cached:  # step checkpoints hold the trained weights only: top layer, pooler, classifier
        from safetensors import safe_open

        with safe_open(str(partial / "checkpoint-4" / "model.safetensors"), "pt") as f:
            keys = set(f.keys())
        assert "model.classifier.weight" in keys and "model.bert.encoder.layer.1.attention.self.query.weight" in keys
        assert not any(".embeddings." in k or ".encoder.layer.0." in k for k in keys)
    monkeypatch.setattr(run_module, "build_trainer", original_build)

    seen = spy_on_resume(monkeypatch)
    hf_logging.enable_propagation()  # the Trainer's missing-key warning reaches caplog
    try:
        with caplog.at_level(logging.INFO, logger="train.trainer"), \
                caplog.at_level(logging.INFO, logger="transformers"):
            run_dir = main(tiny_config, resume=True)
    finally:
        hf_logging.disable_propagation()
    assert not [r for r in caplog.records if "missing keys" in r.getMessage()]  # frozen weights are not missing
    assert seen["checkpoint"].endswith("checkpoint-4")
    history = json.loads((run_dir / "metrics.json").read_text())["log_history"]
    assert max(e["step"] for e in history) == 12  # 2 epochs of 6 steps, the first 4 not redone
    total = next(r for r in caplog.records if "Training wall time" in r.getMessage())
    assert f"earlier processes {before:.0f} s" in total.getMessage()
    if cached:  # a plain, whole checkpoint: the frozen layer is the backbone's, the trained ones moved
        from safetensors.torch import load_file

        saved = load_file(run_dir / "model.safetensors")
        backbone = load_file(Path(tiny_config.model.backbone) / "model.safetensors")
        frozen = "encoder.layer.0.attention.self.query.weight"
        assert torch.equal(saved[f"bert.{frozen}"], backbone[frozen])
        assert not torch.equal(saved["bert.encoder.layer.1.attention.self.query.weight"],
                               backbone["encoder.layer.1.attention.self.query.weight"])
        assert json.loads((run_dir / "config.json").read_text())["num_hidden_layers"] == 3


def test_save_steps_is_validated():
    from train.config import ConfigError

    with pytest.raises(ConfigError, match="train.save_steps must be >= 1 or null"):
        load_config(None, ["train.save_steps=0"])
    assert load_config(None, ["train.save_steps=null"]).train.save_steps is None


@pytest.mark.parametrize("override, error, message", [
    ("data.train_langs=[xx]", DataError, "the train split is empty"),
])
def test_bad_input_fails_before_training(tiny_config, override, error, message):
    key, value = override.split("=")
    section, name = key.split(".")
    setattr(getattr(tiny_config, section), name, [v.strip() for v in value.strip("[]").split(",")])
    with pytest.raises(error, match=message):
        main(tiny_config)
    assert not tiny_config.run_dir.exists()
    assert not tiny_config.run_dir.with_name("run.partial").exists()


def test_label_not_in_schema_fails_before_training(tiny_config, tmp_path):
    bad = synthetic_records()
    bad[5]["issues"] = ["nukes"]
    tiny_config.data.files = [str(write_jsonl(tmp_path / "bad.jsonl", bad))]
    with pytest.raises(DataError, match=r"bad.jsonl:6: unknown issue label 'nukes'"):
        main(tiny_config)
    assert not tiny_config.run_dir.exists()


def test_cli_exit_code_and_message_on_bad_config(tmp_path, caplog):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train:\n  epoch: 3\n")
    assert cli(["--config", str(cfg)]) == 2
    assert "did you mean train.epochs" in caplog.text


def test_unknown_backbone_fails_before_anything_is_written(tiny_config):
    tiny_config.model.backbone = "bundled:no-such-model"
    with pytest.raises(ValueError, match="multilingual-e5-small"):
        main(tiny_config)
    assert not tiny_config.run_dir.exists()


# accelerate's `--cpu` launcher starts one process unless MPI is set up; `--multi_gpu` starts
# torch.distributed workers, which `train` runs with gloo when there is no GPU. The test hides any GPU from
# both ranks (on a one-GPU machine they would share it, which NCCL refuses): it is about two CPU processes.
LAUNCHERS = {
    "torchrun": ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"],
    "accelerate": ["-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                   "--mixed_precision", "no", "--dynamo_backend", "no", "-m"],
}


@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_two_cpu_processes(launcher, tiny_config, tmp_path):
    tiny_config.train.epochs = 1
    path = tmp_path / "ddp.yaml"
    tiny_config.save(path)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    tail = ["train"] if launcher == "accelerate" else ["-m", "train"]
    cmd = [sys.executable, *LAUNCHERS[launcher], *tail, "--config", str(path)]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tiny_config.run_dir / "model.safetensors").is_file()
    assert "Processes: 2" in proc.stderr


def test_top_layer_training_keeps_the_best_epoch_from_a_trained_weights_checkpoint(tiny_config, monkeypatch):
    """The best checkpoint (epoch 1 here, by a validation score made to fall) holds the trained weights only;
    loading it at the end restores them: the saved model is epoch 1's, frozen weights the backbone's."""
    from safetensors.torch import load_file

    from train import trainer as trainer_module

    calls = {"n": 0}

    def falling_score(schema):
        def compute(eval_pred):
            calls["n"] += 1
            return {"macro_f1": 1.0 / calls["n"]}
        return compute

    def crash(staging, run_dir):
        raise RuntimeError("stop before the move, to inspect the checkpoints")

    monkeypatch.setattr(trainer_module, "compute_metrics_fn", falling_score)
    monkeypatch.setattr(run_module, "replace_dir", crash)
    tiny_config.model.train_layers, tiny_config.model.pooling = 1, "mean_layer"
    tiny_config.train.epochs, tiny_config.train.save_steps = 3, None
    with pytest.raises(RuntimeError, match="stop before the move"):
        main(tiny_config)
    partial = tiny_config.run_dir.with_name(tiny_config.run_dir.name + ".partial")
    best, last = (load_file(partial / f"checkpoint-{step}" / "model.safetensors") for step in (6, 18))
    saved = load_file(partial / "final" / "model.safetensors")
    backbone = load_file(Path(tiny_config.model.backbone) / "model.safetensors")
    trained = "bert.encoder.layer.1.attention.self.query.weight"
    assert not torch.equal(best[f"model.{trained}"], last[f"model.{trained}"])
    for name in (trained, "classifier.weight", "bert.pooler.dense.weight"):
        assert torch.equal(saved[name], best[f"model.{name}"])
    assert torch.equal(saved["bert.encoder.layer.0.attention.self.query.weight"],
                       backbone["encoder.layer.0.attention.self.query.weight"])


@pytest.mark.parametrize("cached", [False, True], ids=["full-model", "cached-top-layers"])
def test_consistency_and_actor_losses_train_and_leave_a_plain_checkpoint(tiny_config, tmp_path, cached):
    """Translations share a group (consistency pairs them); half the records name who reacts (actor head)."""
    import dataclasses

    if cached:
        tiny_config.model.train_layers, tiny_config.model.pooling = 1, "mean_layer"

    from safetensors import safe_open
    from transformers import pipeline

    from synthetic_data import synthetic_records, write_jsonl

    actors = ["russia", "west", "analyst"]
    records = [{**r, "actor": actors[i % 3]} if i % 2 else r for i, r in enumerate(synthetic_records())]
    data = write_jsonl(tmp_path / "actors.jsonl", records)
    cfg = dataclasses.replace(
        tiny_config, data=dataclasses.replace(tiny_config.data, files=[str(data)]),
        loss=dataclasses.replace(tiny_config.loss, consistency_weight=1.0, actor_weight=0.5))
    run_dir = main(cfg)
    losses = [e["loss"] for e in json.loads((run_dir / "metrics.json").read_text())["log_history"] if "loss" in e]
    assert losses and all(np.isfinite(losses))
    plain = main(dataclasses.replace(tiny_config, data=cfg.data, output_dir=str(run_dir) + "-plain"))
    plain_losses = [e["loss"] for e in json.loads((plain / "metrics.json").read_text())["log_history"] if "loss" in e]
    assert losses != plain_losses  # the extra terms change training
    with safe_open(str(run_dir / "model.safetensors"), "pt") as f:
        assert not any("actor" in k for k in f.keys())
    assert pipeline("text-classification", model=str(run_dir), top_k=None)("NATO drills")[0]


# --- the output directory is the run's, never the user's (a new run never deletes what it did not make) ---

def test_a_folder_that_is_not_a_run_or_a_file_is_refused_and_kept(tiny_config):
    from train.__main__ import cli

    folder = tiny_config.run_dir
    (folder / "sub").mkdir(parents=True)
    (folder / "thesis.tex").write_text("chapter 1")
    (folder / "sub" / "data.csv").write_text("a,b")
    with pytest.raises(FileExistsError, match="is not empty and is not a run of `python -m train`"):
        main(tiny_config)
    assert (folder / "thesis.tex").read_text() == "chapter 1" and (folder / "sub" / "data.csv").is_file()
    a_file = folder.with_name("notes.txt")
    a_file.write_text("keep me")
    assert cli(["--config", "configs/default.yaml", "--output-dir", str(a_file)]) == 2  # one line, bad usage
    assert a_file.read_text() == "keep me"


def test_a_finished_run_is_replaced_only_with_overwrite_and_resume_leaves_it(tiny_config, caplog):
    import logging

    run_dir = main(tiny_config)
    (run_dir / "NOTES.txt").write_text("my notes")
    weights = (run_dir / "model.safetensors").read_bytes()
    with pytest.raises(FileExistsError, match="holds a finished run; pass --overwrite"):
        main(tiny_config)
    with caplog.at_level(logging.WARNING, logger="train.run"):
        assert main(tiny_config, resume=True) == run_dir
    assert "holds a finished run; nothing to resume" in caplog.text
    assert (run_dir / "model.safetensors").read_bytes() == weights and (run_dir / "NOTES.txt").is_file()
    tiny_config.seed = 7
    main(tiny_config, overwrite=True)  # asked for: the run is replaced
    assert (run_dir / "model.safetensors").read_bytes() != weights


def _interrupt_at_step(monkeypatch, step):
    from transformers import TrainerCallback

    class Kill(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == step:
                raise KeyboardInterrupt(f"killed at step {step}")

    original_build = run_module.build_trainer

    def build_with_kill(*args, **kwargs):
        trainer = original_build(*args, **kwargs)
        trainer.add_callback(Kill())
        return trainer

    monkeypatch.setattr(run_module, "build_trainer", build_with_kill)


def test_resume_refuses_a_changed_config_and_reads_the_split_back(tiny_config, monkeypatch, tmp_path):
    from train.config import ConfigError
    from synthetic_data import synthetic_records, write_jsonl

    tiny_config.train.save_steps = 2
    _interrupt_at_step(monkeypatch, 5)
    with pytest.raises(KeyboardInterrupt):
        main(tiny_config)
    monkeypatch.undo()
    partial = tiny_config.run_dir.with_name(tiny_config.run_dir.name + ".partial")
    split = json.loads((partial / "splits.json").read_text())
    with pytest.raises(FileExistsError, match="holds an interrupted run: --resume continues it"):
        main(tiny_config)  # neither --resume nor --overwrite: its checkpoints are kept
    assert (partial / "checkpoint-4").is_dir()
    tiny_config.seed, tiny_config.train.batch_size = 99, 4
    with pytest.raises(ConfigError, match=r"differs from the interrupted run's .* in seed, train.batch_size"):
        main(tiny_config, resume=True)
    tiny_config.seed, tiny_config.train.batch_size = 42, 8
    # records added to the data file since: the resumed run keeps the split it started with
    more = synthetic_records(n_groups=30, seed=0)
    write_jsonl(Path(tiny_config.data.files[0]), more)
    run_dir = main(tiny_config, resume=True)
    final = json.loads((run_dir / "splits.json").read_text())  # (evaluation splits are stored in length order)
    assert {k: sorted(v) for k, v in final.items()} == {k: sorted(v) for k, v in split.items()}


def test_a_full_disk_is_one_line_and_the_cut_checkpoint_is_skipped_on_resume(tiny_config, monkeypatch, caplog):
    import errno
    import logging

    from infer.atomic import DiskFullError
    from train.__main__ import cli

    tiny_config.train.save_steps = 2
    original_save = torch.save

    def save(obj, f, *args, **kwargs):  # the disk fills up while checkpoint-4 writes its optimizer state
        if "checkpoint-4" in str(f) and str(f).endswith("optimizer.pt"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return original_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    with pytest.raises(DiskFullError, match=r"no space left on device while writing .*run\.partial"):
        main(tiny_config)
    partial = tiny_config.run_dir.with_name(tiny_config.run_dir.name + ".partial")
    assert not (partial / "checkpoint-4" / "trainer_state.json").exists()
    monkeypatch.undo()
    seen = spy_on_resume(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="train.run"):
        run_dir = main(tiny_config, resume=True)
    assert "Skipping incomplete checkpoint" in caplog.text and seen["checkpoint"].endswith("checkpoint-2")
    assert (run_dir / "model.safetensors").is_file()


def test_a_missing_backbone_directory_is_named(tiny_config, tmp_path):
    tiny_config.model.backbone = str(tmp_path / "no" / "such" / "dir")
    with pytest.raises(FileNotFoundError, match=r"model.backbone .*/no/such/dir: no such directory"):
        main(tiny_config)
    assert not tiny_config.run_dir.exists() and not tiny_config.run_dir.with_name("run.partial").exists()


def test_a_run_on_actor_annotated_data_evaluates_with_its_checkpoints_schema(tiny_config, tmp_path):
    """The report reloads the data with the checkpoint's schema: its actor labels must travel with it."""
    import dataclasses

    from synthetic_data import synthetic_records, write_jsonl
    from infer.labels import LabelSchema

    records = [{**r, "actor": "west", "register": "wire"} if i % 2 else r for i, r in enumerate(synthetic_records())]
    data = write_jsonl(tmp_path / "actors.jsonl", records)
    cfg = dataclasses.replace(tiny_config, data=dataclasses.replace(tiny_config.data, files=[str(data)]),
                              eval=dataclasses.replace(tiny_config.eval, enabled=True, baselines=["majority"]))
    run_dir = main(cfg)
    assert (run_dir / "report.json").is_file()
    config = json.loads((run_dir / "config.json").read_text())
    assert "west" in LabelSchema.from_dict(config["label_schema"]).actors
