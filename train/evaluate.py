"""Evaluate a run against baselines on the same split: `python -m train.evaluate --model RUN_DIR`.

    python -m train.evaluate --model runs/default                 # test split of the run
    python -m train.evaluate --model runs/default --split validation
    python -m train.evaluate --model runs/default --data new.jsonl  # every record of other labeled files
    python -m train.evaluate --model runs/default --cv 5            # grouped 5-fold CV (5 trainings)

Writes report.json, report.md and PNG plots (see `train.report`) into the run directory or `--out`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from infer.classifier import Classifier
from infer.labels import LabelSchema
from train.baselines import build_baselines
from train.config import Config, ConfigError, load_config
from train.data import DataError, encode_labels, load_records
from train.calibrate import calibration_report
from train.report import score_system, worst_errors, write_report

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")


def _labels(records: Sequence[dict], schema: LabelSchema) -> np.ndarray:
    return np.array([encode_labels(r["issues"], r["stance"], schema) for r in records], dtype=np.float64)


def build_report(run_dir: str | Path, split: str = "test", data_files: Sequence[str] | None = None,
                 baselines: Sequence[str] | None = None, classifier: Classifier | None = None) -> dict[str, Any]:
    """Score the run's model and the baselines on one split (or on `data_files`) and return the report.

    Baselines are fitted on the run's own train split, so every system sees the same training data.
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
        eval_records = list(load_records(data_files, schema))
        split = "+".join(str(f) for f in data_files)
    else:
        missing = [i for i in ids[split] if i not in by_id]
        if missing:
            raise DataError(f"{len(missing)} {split} id(s) of the run are no longer in the data, e.g. {missing[:3]}")
        eval_records = [by_id[i] for i in ids[split]]
    texts = [r["text"] for r in eval_records]
    gold = _labels(eval_records, schema)
    langs = [r["lang"] for r in eval_records]
    origins = [r["origin"] for r in eval_records]

    logger.info("Scoring the model on %d %s records", len(texts), split)
    scores = {"model": clf.predict_scores(texts)}
    raw = clf.predict_scores(texts, calibrated=False) if not clf.calibration.is_identity else scores["model"]
    thresholds = {"model": clf.thresholds}
    names = cfg.eval.baselines if baselines is None else baselines
    for baseline in build_baselines(names, schema, cfg.model.backbone, seed=cfg.seed):
        logger.info("Fitting baseline %s on %d train records", baseline.name, len(train_records))
        baseline.fit([r["text"] for r in train_records], _labels(train_records, schema))
        scores[baseline.name] = baseline.predict_scores(texts)
        thresholds[baseline.name] = np.full(len(schema.issues), 0.5)
    return {
        "split": split,
        "n": len(eval_records),
        "model": cfg.name,
        "thresholds": dict(zip(schema.issues, map(float, clf.raw_thresholds))),  # config.json's, raw sigmoid
        "systems": {name: score_system(s, gold, schema, thresholds[name], langs, origins) for name, s in scores.items()},
        "worst_errors": worst_errors(eval_records, scores["model"], gold, schema, clf.thresholds),
        "calibration": calibration_report(raw, scores["model"], gold, schema, clf.calibration),
    }


def evaluate_run(run_dir: str | Path, split: str = "test", data_files: Sequence[str] | None = None,
                 baselines: Sequence[str] | None = None, out_dir: str | Path | None = None) -> dict[str, Any]:
    """Build the report and write report.json / report.md / plots to `out_dir` (default: the run dir).

    Example:
        >>> report = evaluate_run("runs/default")  # doctest: +SKIP
        >>> report["systems"]["model"]["stance"]["macro_f1"]  # doctest: +SKIP
    """
    clf = Classifier.from_pretrained(run_dir, route="fp32")
    report = build_report(run_dir, split, data_files, baselines, classifier=clf)
    write_report(report, clf.schema, out_dir or run_dir)
    model = report["systems"]["model"]
    for name, system in report["systems"].items():
        logger.info("%-18s issue macro-F1 %.3f  stance macro-F1 %.3f", name,
                    system["issues"]["macro_f1"], system["stance"]["macro_f1"])
    logger.info("Model on %s: issue macro-F1 %.3f, stance macro-F1 %.3f", report["split"],
                model["issues"]["macro_f1"], model["stance"]["macro_f1"])
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="run directory made by `python -m train`")
    parser.add_argument("--data", nargs="+", help="evaluate on every record of these labeled JSONL files")
    parser.add_argument("--split", default="test", choices=SPLITS)
    parser.add_argument("--baselines", nargs="*", help="subset of majority tfidf_logreg embeddings_logreg")
    parser.add_argument("--out", help="output directory (default: the run directory)")
    parser.add_argument("--cv", type=int, metavar="K", help="grouped K-fold cross-validation with the run's config")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.cv:
            from train.crossval import cross_validate

            cross_validate(load_config(Path(args.model) / "train_config.yaml"), args.cv, args.out or args.model)
        else:
            evaluate_run(args.model, args.split, args.data, args.baselines, args.out)
    except (ConfigError, DataError, FileNotFoundError, ValueError) as exc:
        logger.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
