"""`main(cfg)`: the whole training job — load data, build model, train, tune thresholds, save, evaluate.

The run is built in `<run_dir>.partial/` (Trainer checkpoints live there, so `--resume` can continue
an interrupted run) and the finished checkpoint is moved to `<run_dir>/` in one rename, so `infer`
never sees a half-written run.

Run directory layout:
    config.json, model.safetensors, tokenizer files   the checkpoint (labels + thresholds in config.json)
    train_config.yaml   the resolved config
    splits.json         record ids per split
    data_summary.json   record counts per split, language, origin and label (read by the model card)
    metrics.json        the Trainer's log history, final validation/test figures, wall seconds per stage,
                        the training inputs of one epoch (records, records trained alone, context pairs, tokens)
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import re
import shutil
import time
from pathlib import Path

import numpy as np
import yaml

from infer.atomic import full_disk_said_plainly, replace_dir
from infer.labels import LabelSchema
from train.data.augment import PAIR_SEP, context_pairs, token_fit
from train.calibrate import fit_calibration
from train.config import Config, ConfigError
from train.data.records import DataError, load_records, split_summary, tokenize_splits
from train.model.dropout import use_fast_dropout
from train.evaluate.evaluation import evaluate_run
from train.model.layer_cache import cached_training_inputs, unwrap
from train.model.build import build_model, first_trained_layer
from train.data.splits import split_records
from train.thresholds import tune_thresholds
from train.trainer import ACTOR_COLUMN, GROUP_COLUMN, build_trainer, resolve_precision

logger = logging.getLogger(__name__)


def _is_main_process() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"


def _write_split_ids(splits, path: Path) -> None:
    path.write_text(json.dumps({name: list(split["id"]) for name, split in splits.items()}, indent=0),
                    encoding="utf-8")


def prepare_data(cfg: Config, schema: LabelSchema, saved_split: Path | None = None):
    """Validated records -> grouped splits (DatasetDict with train/validation/test); with `saved_split` (a
    `splits.json`), the record ids of each split are read back from it instead of drawn."""
    ds = load_records(cfg.data_files(), schema)
    if saved_split is not None and saved_split.is_file():
        import datasets

        ids = json.loads(saved_split.read_text(encoding="utf-8"))
        row = {rec_id: i for i, rec_id in enumerate(ds["id"])}
        missing = [i for name in ids for i in ids[name] if i not in row]
        if missing:
            raise DataError(f"{saved_split}: {len(missing)} record id(s) of the interrupted run's split are no longer "
                            f"in data.files (e.g. {missing[:3]}); restore them or start again with --overwrite")
        logger.info("Split read back from %s", saved_split)
        return datasets.DatasetDict({name: ds.select([row[i] for i in ids[name]]) for name in ids})
    return split_records(
        ds, schema, val_size=cfg.data.val_size, test_size=cfg.data.test_size,
        seed=cfg.seed if cfg.data.split_seed is None else cfg.data.split_seed,
        authored_train_only=cfg.data.authored_train_only, train_langs=cfg.data.train_langs,
        cv_folds=cfg.data.cv_folds, cv_fold=cfg.data.cv_fold,
    )


def group_indices(train) -> list[int]:
    """Per training row: an index shared by the records of a group with two or more records in `train`
    (translations, parallel paragraphs), -1 for the others and for context pairs (`loss.consistency_weight`).

    >>> from datasets import Dataset
    >>> group_indices(Dataset.from_list([{"id": "a", "group": "g"}, {"id": "b", "group": "g"},
    ...                                  {"id": "c", "group": "h"}, {"id": "a+ctx:c", "group": "g"}]))
    [0, 0, -1, -1]
    """
    import collections

    ids, groups = list(train["id"]), list(train["group"])
    records = [PAIR_SEP not in i for i in ids]
    size = collections.Counter(g for g, is_record in zip(groups, records) if is_record)
    shared = {g: n for n, g in enumerate(g for g in dict.fromkeys(groups) if size[g] > 1)}
    return [shared.get(g, -1) if is_record else -1 for g, is_record in zip(groups, records)]


RUN_FILES = ("train_config.yaml", "config.json")  # what makes a directory a finished run of this package
# what the Trainer and `main` leave in `<run>.partial/`; anything else there is not ours
_WORK_ENTRIES = re.compile(r"^(checkpoint-\d+|final|wall_time\.json|train_config\.yaml|splits\.json|runs)$")
# keys that may change when a run is resumed: they change neither the split, nor the model, nor the optimizer
# (more epochs or steps extend a run, as the Trainer allows)
_RESUMABLE_CHANGES = ("name", "output_dir", "eval.", "hub.", "train.logging_steps", "train.threads",
                      "train.dataloader_num_workers", "train.eval_batch_size", "train.save_steps", "train.epochs",
                      "train.max_steps", "train.early_stopping_patience")


def is_run(path: Path) -> bool:
    return all((path / name).is_file() for name in RUN_FILES)


def check_output_dir(run_dir: Path, overwrite: bool = False, resume: bool = False) -> bool:
    """Refuse an output directory that holds anything but a run of this package; return whether it holds a
    finished run. A finished run is replaced only with `overwrite` (or, with `resume`, left as it is).

    Raises:
        FileExistsError / NotADirectoryError naming the path and what to do.
    """
    run_dir = Path(run_dir)
    work_dir = run_dir.with_name(run_dir.name + ".partial")
    if run_dir.exists() and not run_dir.is_dir():
        raise NotADirectoryError(f"output directory {run_dir} is a file; give a new directory (--output-dir)")
    for path in (run_dir, work_dir):
        if path.exists() and not path.is_dir():
            raise NotADirectoryError(f"{path} is a file, not a run's work directory; move it away first")
    if work_dir.is_dir():
        foreign = sorted(p.name for p in work_dir.iterdir() if not _WORK_ENTRIES.match(p.name))
        if foreign:
            raise FileExistsError(f"{work_dir} holds files that are not a run's ({', '.join(foreign[:3])}); "
                                  "move them away or choose another --output-dir")
    if not run_dir.is_dir() or not any(run_dir.iterdir()):
        return False
    if not is_run(run_dir):
        raise FileExistsError(f"output directory {run_dir} is not empty and is not a run of `python -m train`; "
                              "choose another --output-dir")
    if not overwrite and not resume:
        raise FileExistsError(f"{run_dir} holds a finished run; pass --overwrite to replace it, or choose another "
                              "--output-dir")
    return True


def _changed_keys(saved: dict, current: dict) -> list[str]:
    """Dotted keys whose values differ between two resolved configs, except `_RESUMABLE_CHANGES`."""
    def flat(d: dict, prefix: str = "") -> dict:
        out = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out

    a, b = flat(saved), flat(current)
    return [k for k in sorted(set(a) | set(b))
            if a.get(k) != b.get(k) and not k.startswith(_RESUMABLE_CHANGES)]


def _last_checkpoint(work_dir: Path) -> str | None:
    """The latest complete checkpoint in `work_dir` (`trainer_state.json` is the last file the Trainer writes:
    a checkpoint without it was cut off, e.g. by a full disk, and is skipped with a log line)."""
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

    if not work_dir.is_dir():
        return None
    found = [p for p in work_dir.glob(f"{PREFIX_CHECKPOINT_DIR}-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    for path in sorted(found, key=lambda p: int(p.name.split("-")[-1]), reverse=True):
        if (path / "trainer_state.json").is_file():
            return str(path)
        logger.warning("Skipping incomplete checkpoint %s (no trainer_state.json: it was cut off)", path)
    return None


def encode_inputs(cfg: Config, splits, tokenizer, schema: LabelSchema):
    """Tokenize the splits for training: the train split with its context pairs and the per-row inputs of the
    consistency and actor losses; validation and test in length order (evaluation is batched in order, so
    little padding). `splits` is reordered alike, so its rows stay aligned with `encoded`.

    Returns:
        (encoded, aux_columns, train_inputs): the `DatasetDict` the trainer reads, the extra training columns,
        and what one epoch trains on (records, context pairs, tokens; saved in metrics.json).
    """
    import datasets

    to_encode, num_pairs = splits, 0
    if cfg.data.context_pairs > 0:  # training inputs only: splits.json and the data summary keep the records
        pairs = context_pairs(splits["train"], cfg.data.context_pairs, cfg.seed,
                              fits=token_fit(tokenizer, cfg.data.max_length))
        to_encode = datasets.DatasetDict(splits)
        to_encode["train"] = datasets.concatenate_datasets([splits["train"], pairs])
        num_pairs = len(pairs)
    encoded = tokenize_splits(to_encode, tokenizer, schema, cfg.data.max_length)
    aux_columns = []  # per-row inputs of the consistency and actor losses (training split only)
    if cfg.loss.consistency_weight > 0:
        encoded["train"] = encoded["train"].add_column(GROUP_COLUMN, group_indices(to_encode["train"]))
        aux_columns.append(GROUP_COLUMN)
    if cfg.loss.actor_weight > 0:
        actors = list(to_encode["train"]["actor"])
        encoded["train"] = encoded["train"].add_column(
            ACTOR_COLUMN, [schema.actors.index(a) if a in schema.actors else -1 for a in actors])
        aux_columns.append(ACTOR_COLUMN)
    train_inputs = {"records": len(splits["train"]), "context_pairs": num_pairs,
                    "tokens": int(sum(encoded["train"]["length"]))}
    for name in ("validation", "test"):
        order = np.argsort(encoded[name]["length"], kind="stable")
        splits[name], encoded[name] = splits[name].select(order), encoded[name].select(order)
    return encoded, aux_columns, train_inputs


def tune_on_validation(trainer, encoded_validation, validation, schema: LabelSchema):
    """Predict validation with the best checkpoint, tune the issue thresholds and fit the calibration on those
    logits, both into the model's config (thresholds stay on the raw sigmoid; `infer` maps them).

    Returns:
        (the validation prediction, the calibration's summary for metrics.json).
    """
    val = trainer.predict(encoded_validation, metric_key_prefix="validation")
    k = len(schema.issues)
    thresholds = tune_thresholds(schema.scores(val.predictions)[:, :k], val.label_ids[:, :k])
    trainer.model.config.issue_thresholds = {n: round(float(t), 4) for n, t in zip(schema.issues, thresholds)}
    logger.info("Issue thresholds (validation-tuned): %s", trainer.model.config.issue_thresholds)
    calibration, calibration_info = fit_calibration(val.predictions, val.label_ids, schema,
                                                    groups=validation["group"])
    trainer.model.config.update(calibration.to_config())
    return val, calibration_info


def main(cfg: Config, resume: bool = False, overwrite: bool = False) -> Path:
    """Train, tune thresholds and save a run; return the finished run directory.

    The output directory is the run's: a directory that is not a run of this package is refused, a finished run
    is replaced only with `overwrite`, and `resume` continues the interrupted run in `<run_dir>.partial/` (only
    with the config it started with; its split is read back, never drawn again).

    Example:
        >>> from train.config import load_config
        >>> run_dir = main(load_config("configs/default.yaml", ["train.max_steps=2"]))  # doctest: +SKIP
    """
    import torch
    from transformers import set_seed

    started = time.time()
    stages: dict[str, float] = {}  # wall seconds per stage, saved in metrics.json

    def stage_done(name: str, since: float) -> float:
        now = time.time()
        stages[name] = round(now - since, 1)
        return now
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    set_seed(cfg.seed)
    run_dir = cfg.run_dir
    work_dir = run_dir.with_name(run_dir.name + ".partial")
    logger.info("Resolved config:\n%s", json.dumps(cfg.to_dict(), indent=2))
    if check_output_dir(run_dir, overwrite, resume) and resume:
        logger.warning("--resume: %s holds a finished run; nothing to resume (--overwrite trains it again)", run_dir)
        return run_dir
    resuming = resume and (work_dir / "train_config.yaml").is_file()
    if resuming:
        changed = _changed_keys(yaml.safe_load((work_dir / "train_config.yaml").read_text(encoding="utf-8")),
                                cfg.to_dict())
        if changed:
            raise ConfigError(f"--resume: the config differs from the interrupted run's ({work_dir / 'train_config.yaml'}) "
                              f"in {', '.join(changed)}; resume with that config, or start again with --overwrite")
    elif work_dir.is_dir() and any(work_dir.iterdir()):
        if not (overwrite or resume):
            raise FileExistsError(f"{work_dir} holds an interrupted run: --resume continues it, --overwrite discards "
                                  "it and starts again")
        logger.warning("Discarding the interrupted run in %s (%s)", work_dir, "--overwrite" if overwrite else
                       "it has no saved config to resume with")
        if _is_main_process():
            shutil.rmtree(work_dir)

    # 1. data (every error surfaces here, before any model is loaded)
    schema = LabelSchema.from_yaml(cfg.data.schema)
    splits = prepare_data(cfg, schema, saved_split=work_dir / "splits.json" if resuming else None)
    logger.info("Splits: %s", {k: len(v) for k, v in splits.items()})
    for rec in splits["train"].select(range(min(3, len(splits["train"])))):
        logger.info("Sample: [%s] %s -> issues=%s stance=%s", rec["lang"], rec["text"][:100], rec["issues"], rec["stance"])

    # 2. model
    model, tokenizer = build_model(cfg.model, schema)
    encoded, aux_columns, train_inputs = encode_inputs(cfg, splits, tokenizer, schema)

    mark = stage_done("data_and_model", started)
    trainable, collator = model, None
    if cfg.model.train_layers is not None and cfg.train.cache_frozen_layers:
        start = first_trained_layer(model, cfg.model)
        trainable, collator, encoded = cached_training_inputs(
            model, encoded, start, autocast=resolve_precision(cfg.train.precision) == "bf16",
            passthrough=aux_columns)

    mark = stage_done("cache_frozen_layers", mark) if collator is not None else mark
    # 3. train
    checkpoint = None
    if resume:
        checkpoint = _last_checkpoint(work_dir)
        if checkpoint is None:
            logger.warning("--resume: no checkpoint in %s, starting from scratch", work_dir)
        else:
            logger.info("Resuming from %s", checkpoint)
    trainer = build_trainer(cfg, trainable, tokenizer, encoded, schema, work_dir, data_collator=collator)
    logger.info("Processes: %d (device %s)", trainer.args.world_size, trainer.args.device)
    if not resuming and trainer.is_world_process_zero():  # what --resume checks and reads back
        work_dir.mkdir(parents=True, exist_ok=True)
        cfg.save(work_dir / "train_config.yaml")
        _write_split_ids(splits, work_dir / "splits.json")
    with (full_disk_said_plainly(work_dir),
          use_fast_dropout(unwrap(trainable)) if cfg.train.fast_dropout else contextlib.nullcontext()):
        trainer.train(resume_from_checkpoint=checkpoint)
    mark = stage_done("train_loop", mark)

    # 4. thresholds on validation (best checkpoint is loaded at the end of training)
    val, calibration_info = tune_on_validation(trainer, encoded["validation"], splits["validation"], schema)
    test = trainer.predict(encoded["test"], metric_key_prefix="test")
    mark = stage_done("thresholds_calibration_test", mark)

    if not trainer.is_world_process_zero():
        return run_dir

    # 5. save into a staging directory, then move into place
    with full_disk_said_plainly(work_dir):  # one line naming the path; nothing half-written looks finished
        staging = work_dir / "final"
        if staging.exists():
            shutil.rmtree(staging)
        if hasattr(unwrap(trainer.model), "actor_head"):  # the auxiliary head trains only; the checkpoint stays plain
            del unwrap(trainer.model).actor_head
        unwrap(trainer.model).save_pretrained(str(staging))  # the whole plain model, also after top-layer training
        tokenizer.save_pretrained(str(staging))
        (staging / "training_args.bin").unlink(missing_ok=True)  # a pickle; the resolved YAML config replaces it
        cfg.save(staging / "train_config.yaml")
        shutil.copy(cfg.data.schema, staging / "label_schema.yaml")
        _write_split_ids(splits, staging / "splits.json")
        (staging / "data_summary.json").write_text(json.dumps(split_summary(splits, schema), indent=1), encoding="utf-8")
        history = {
            "log_history": trainer.state.log_history,
            "best_checkpoint": trainer.state.best_model_checkpoint,
            "validation": val.metrics,
            "test": test.metrics,
            "issue_thresholds": trainer.model.config.issue_thresholds,
            "calibration": calibration_info,
            "wall_seconds": round(time.time() - started, 1),
            "train_inputs": train_inputs,
        }
        mark = stage_done("save", mark)
        del trainer, model, trainable, collator  # the evaluation reloads the saved checkpoint: free the training copy and optimizer first
        gc.collect()
        if cfg.eval.enabled:
            evaluate_run(staging, split=cfg.eval.split, baselines=cfg.eval.baselines, extra_data=cfg.eval.extra_data)
            mark = stage_done("evaluate", mark)
        history["stage_seconds"] = stages  # every stage of this process, in order
        history["wall_seconds"] = round(time.time() - started, 1)
        (staging / "metrics.json").write_text(json.dumps(history, indent=2, default=float), encoding="utf-8")
        replace_dir(staging, run_dir)
    shutil.rmtree(work_dir, ignore_errors=True)
    if cfg.hub.push:
        from train.publish.hub import publish

        publish(run_dir, cfg.hub.repo_id, private=cfg.hub.private)
    logger.info("Test (Trainer metrics, issue thresholds 0.5; report.md uses the tuned ones): "
                "issues macro-F1 %.3f, stance macro-F1 %.3f",
                test.metrics.get("test_issues_macro_f1", np.nan), test.metrics.get("test_stance_macro_f1", np.nan))
    logger.info("Run saved to %s (%.0f s: %s)", run_dir, time.time() - started,
                ", ".join(f"{k} {v:.0f} s" for k, v in stages.items()))
    return run_dir
