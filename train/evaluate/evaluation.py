"""Evaluate a run against baselines on the same split: `python -m train.evaluate --model RUN_DIR`.

    python -m train.evaluate --model runs/default                 # test split of the run
    python -m train.evaluate --model runs/default --split validation
    python -m train.evaluate --model runs/default --data new.jsonl  # every record of other labeled files

Writes report.json, report.md and PNG plots (see `train.evaluate.report`) into the run directory or `--out`.
Cross-validation (K trainings) is `python -m train.evaluate.crossval`: this module depends on nothing that trains.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from infer.classifier import Classifier
from infer.command import add_log_level, run_command, start_command
from infer.labels import LabelSchema
from train.evaluate.baselines import build_baselines
from train.config import Config, load_config
from train.calibrate import calibration_report
from train.data.records import DataError, load_records
from train.evaluate.report import score_system, worst_errors, write_report

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")


def _labels(records: Sequence[dict], schema: LabelSchema) -> np.ndarray:
    return np.array([schema.encode(r["issues"], r["stance"]) for r in records], dtype=np.float64)


def section_name(path: str | Path) -> str:
    """A report section name for an extra evaluation file: `../shared/realnews/dev.jsonl` -> `realnews_dev`."""
    path = Path(path)
    parent = path.parent.name
    return f"{parent}_{path.stem}" if parent and parent not in (".", "..") else path.stem


def existing_extra_files(files: Sequence[str]) -> list[str]:
    """The `eval.extra_data` files that exist; each missing one gets a log line (users without shared/)."""
    found = []
    for f in files:
        if Path(f).is_file():
            found.append(f)
        else:
            logger.warning("eval.extra_data: %s not found, its section is skipped", f)
    return found


def _score_records(records: Sequence[dict], split: str, systems: dict, schema: LabelSchema, cfg_name: str,
                   thresholds: dict[str, np.ndarray], clf: Classifier | None = None) -> dict[str, Any]:
    """Score every system on `records`; with `clf` (the model), add the calibration section (ECE before/after)."""
    texts = [r["text"] for r in records]
    gold = _labels(records, schema)
    langs = [r["lang"] for r in records]
    origins = [r["origin"] for r in records]
    logger.info("Scoring %d systems on %d %s records", len(systems), len(texts), split)
    raw = None
    if clf is not None:  # the model: calibrated and raw scores from one forward pass
        model_scores, raw = clf.predict_scores_and_raw(texts)
    scores = {name: model_scores if clf is not None and name == "model" else predict(texts)
              for name, predict in systems.items()}
    report = {
        "split": split,
        "n": len(records),
        "model": cfg_name,
        # config.json's thresholds (on the raw sigmoid); the model is scored with the calibrated-score cuts
        "thresholds": dict(zip(schema.issues, map(float, clf.raw_thresholds if clf else thresholds["model"]))),
        "systems": {name: score_system(s, gold, schema, thresholds[name], langs, origins) for name, s in scores.items()},
        "worst_errors": worst_errors(records, scores["model"], gold, schema, thresholds["model"]),
    }
    if clf is not None:
        report["calibration"] = calibration_report(raw, scores["model"], gold, schema, clf.calibration)
    return report


def build_report(run_dir: str | Path, split: str = "test", data_files: Sequence[str] | None = None,
                 baselines: Sequence[str] | None = None, classifier: Classifier | None = None,
                 extra_data: Sequence[str] = ()) -> dict[str, Any]:
    """Score the run's model and the baselines on one split (or on `data_files`) and return the report.

    Baselines are fitted once on the run's own train split, so every system sees the same training
    data; each existing `extra_data` file is scored by the same systems into `report["extra"][name]`.
    """
    run_dir = Path(run_dir)
    cfg_path = run_dir / "train_config.yaml"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{run_dir} has no train_config.yaml: not a run directory made by `python -m train`")
    cfg: Config = load_config(cfg_path)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    clf = classifier or Classifier.from_pretrained(run_dir, route="fp32")
    schema = clf.schema
    ids = json.loads((run_dir / "splits.json").read_text(encoding="utf-8"))
    train_ds = load_records(cfg.data_files(), schema)
    by_id = {r["id"]: r for r in train_ds}
    train_records = [by_id[i] for i in ids["train"]]
    if data_files:
        eval_records = list(load_records(data_files, schema, external=True))
        split = "+".join(str(f) for f in data_files)
    else:
        missing = [i for i in ids[split] if i not in by_id]
        if missing:
            raise DataError(f"{len(missing)} {split} id(s) of the run are no longer in the data, e.g. {missing[:3]}")
        eval_records = [by_id[i] for i in ids[split]]

    systems = {"model": clf.predict_scores}
    thresholds = {"model": clf.thresholds}
    names = cfg.eval.baselines if baselines is None else baselines
    for baseline in build_baselines(names, schema, cfg.model.backbone, seed=cfg.seed,
                                    vector_cache=cfg.eval.vector_cache):
        logger.info("Fitting baseline %s on %d train records", baseline.name, len(train_records))
        baseline.fit([r["text"] for r in train_records], _labels(train_records, schema))
        systems[baseline.name] = baseline.predict_scores
        thresholds[baseline.name] = np.full(len(schema.issues), 0.5)
    report = _score_records(eval_records, split, systems, schema, cfg.name, thresholds, clf)
    extra = {}
    for path in existing_extra_files(extra_data):
        extra[section_name(path)] = _score_records(list(load_records([path], schema, external=True)), str(path),
                                                   systems, schema, cfg.name, thresholds, clf)
    if extra:
        report["extra"] = extra
    return report


def evaluate_run(run_dir: str | Path, split: str = "test", data_files: Sequence[str] | None = None,
                 baselines: Sequence[str] | None = None, out_dir: str | Path | None = None,
                 extra_data: Sequence[str] = ()) -> dict[str, Any]:
    """Build the report and write report.json / report.md / plots to `out_dir` (default: the run dir).

    Example:
        >>> report = evaluate_run("runs/default", extra_data=["../shared/realnews/dev.jsonl"])  # doctest: +SKIP
        >>> report["extra"]["realnews_dev"]["systems"]["model"]["stance"]["macro_f1"]  # doctest: +SKIP
    """
    clf = Classifier.from_pretrained(run_dir, route="fp32")
    report = build_report(run_dir, split, data_files, baselines, classifier=clf, extra_data=extra_data)
    write_report(report, clf.schema, out_dir or run_dir)
    for section, part in [(report["split"], report), *report.get("extra", {}).items()]:
        for name, system in part["systems"].items():
            logger.info("[%s] %-18s issue macro-F1 %.3f  stance macro-F1 %.3f", section, name,
                        system["issues"]["macro_f1"], system["stance"]["macro_f1"])
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="run directory made by `python -m train`")
    parser.add_argument("--data", nargs="+", help="evaluate on every record of these labeled JSONL files")
    parser.add_argument("--extra-data", nargs="*", default=None,
                        help="also score these labeled files, each its own section (default: the run's eval.extra_data)")
    parser.add_argument("--split", default="test", choices=SPLITS)
    parser.add_argument("--baselines", nargs="*", help="subset of majority tfidf_logreg embeddings_logreg")
    parser.add_argument("--out", help="output directory (default: the run directory)")
    parser.add_argument("--cv", type=int, metavar="K", help=argparse.SUPPRESS)  # moved to train.evaluate.crossval
    add_log_level(parser)
    args = parser.parse_args(argv)
    start_command(args.log_level)
    if args.cv:
        parser.error(f"cross-validation trains K models and has its own command: python -m train.evaluate.crossval "
                     f"--config {Path(args.model) / 'train_config.yaml'} --folds {args.cv} --out DIR")
    def work() -> None:
        extra = args.extra_data
        run_config = Path(args.model) / "train_config.yaml"
        if extra is None:  # the run's own eval.extra_data (a non-run directory fails below, with its message)
            extra = load_config(run_config).eval.extra_data if run_config.is_file() else []
        evaluate_run(args.model, args.split, args.data, args.baselines, args.out, extra_data=extra)

    return run_command(work, args.log_level, logger)

