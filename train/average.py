"""Average the weights of several runs into one checkpoint: `python -m train.average RUN... --out DIR`.

    python -m train --config configs/default.yaml --set data.split_seed=42 --set seed=1 --output-dir runs/s1
    python -m train --config configs/default.yaml --set data.split_seed=42 --set seed=2 --output-dir runs/s2
    python -m train.average runs/s1 runs/s2 --out runs/avg

Runs of one recipe from one backbone share its frozen layers, so their trained layers can be averaged
weight by weight (a "model soup"): one plain checkpoint of the same size and speed, that `pipeline()` and
`infer.load` read like any run. With `--refit` (the default) the issue thresholds and the calibration are
fitted again on the averaged model's validation logits, which needs the runs to share their split (train
them with one `data.split_seed`); `--no-refit` keeps the first run's. Then the run's report is written
(`train.evaluate`: own test split and `eval.extra_data`), unless `--no-eval`.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from infer.atomic import atomic_dir
from infer.command import add_log_level, run_command, start_command
from infer.labels import LabelSchema
from train.calibrate import fit_calibration
from train.config import load_config
from train.data.records import DataError, load_records
from train.thresholds import tune_thresholds

logger = logging.getLogger(__name__)

WEIGHTS = "model.safetensors"
_NOT_COPIED = shutil.ignore_patterns("checkpoint-*", "report*", "*.png", WEIGHTS, "metrics.json")


def average_state_dicts(paths: Sequence[str | Path]) -> dict[str, torch.Tensor]:
    """The element-wise mean of the tensors of several safetensors files (same names and shapes), computed in
    float64 and stored in each tensor's own dtype. Raises ValueError naming the first file that differs.

    >>> import tempfile, safetensors.torch as st
    >>> d = tempfile.mkdtemp()
    >>> st.save_file({"w": torch.tensor([1.0, 3.0])}, f"{d}/a.safetensors")
    >>> st.save_file({"w": torch.tensor([3.0, 5.0])}, f"{d}/b.safetensors")
    >>> average_state_dicts([f"{d}/a.safetensors", f"{d}/b.safetensors"])["w"].tolist()
    [2.0, 4.0]
    """
    from safetensors.torch import load_file

    if not paths:
        raise ValueError("nothing to average")
    first = load_file(str(paths[0]))
    total = {k: v.double() for k, v in first.items()}
    for path in paths[1:]:
        other = load_file(str(path))
        if other.keys() != first.keys():
            diff = sorted(set(other) ^ set(first))[:3]
            raise ValueError(f"{path}: other weights than {paths[0]} (e.g. {diff}); only runs of one recipe average")
        for k, v in other.items():
            if v.shape != first[k].shape:
                raise ValueError(f"{path}: {k} has shape {tuple(v.shape)}, {paths[0]} {tuple(first[k].shape)}")
            total[k] += v.double()
    return {k: (v / len(paths)).to(first[k].dtype) for k, v in total.items()}


def _run_dir(path: str | Path) -> Path:
    path = Path(path)
    if not (path / "train_config.yaml").is_file() or not (path / WEIGHTS).is_file():
        raise FileNotFoundError(f"{path} is not a finished run of `python -m train` (no train_config.yaml or {WEIGHTS})")
    return path


@torch.inference_mode()
def _logits(model_dir: Path, texts: list[str], max_length: int, batch_size: int = 16) -> np.ndarray:
    """Raw head logits of `texts`, truncated at `max_length` as in training (the Trainer's predictions)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    out = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(texts[start:start + batch_size], truncation=True, max_length=max_length, padding=True,
                          return_tensors="pt")
        out.append(model(**batch).logits.float().numpy())
    return np.concatenate(out)


def refit(model_dir: Path, schema: LabelSchema) -> dict:
    """Tune the issue thresholds and fit the calibration on the validation split of the run in `model_dir`
    (as `train.run` does after training); update its config.json; return what was fitted."""
    from transformers import AutoConfig

    cfg = load_config(model_dir / "train_config.yaml")
    ids = json.loads((model_dir / "splits.json").read_text(encoding="utf-8"))["validation"]
    by_id = {r["id"]: r for r in load_records(cfg.data_files(), schema)}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise DataError(f"{len(missing)} validation id(s) of the runs are no longer in the data, e.g. {missing[:3]}")
    records = [by_id[i] for i in ids]
    logits = _logits(model_dir, [r["text"] for r in records], cfg.data.max_length)
    labels = np.array([schema.encode(r["issues"], r["stance"]) for r in records])
    k = len(schema.issues)
    thresholds = tune_thresholds(schema.scores(logits)[:, :k], labels[:, :k])
    config = AutoConfig.from_pretrained(model_dir)
    config.issue_thresholds = {n: round(float(t), 4) for n, t in zip(schema.issues, thresholds)}
    calibration, info = fit_calibration(logits, labels, schema, groups=[r["group"] for r in records])
    config.update(calibration.to_config())
    config.save_pretrained(model_dir)
    return {"issue_thresholds": config.issue_thresholds, "calibration": info}


def average_runs(runs: Sequence[str | Path], out: str | Path, refit_on_validation: bool = True,
                 evaluate: bool = True) -> Path:
    """Average `runs` into the run directory `out` (written whole, then moved into place); return `out`.

    Example:
        >>> average_runs(["runs/s1", "runs/s2"], "runs/avg")  # doctest: +SKIP
    """
    from train.evaluate.evaluation import evaluate_run
    from train.run import check_output_dir

    runs = [_run_dir(r) for r in runs]
    if len(runs) < 2:
        raise ValueError(f"give at least two runs to average, got {len(runs)}")
    out = Path(out)
    check_output_dir(out, overwrite=True)  # a finished run may be replaced; a user's folder never
    splits = [(r / "splits.json").read_text(encoding="utf-8") for r in runs]
    if refit_on_validation and any(s != splits[0] for s in splits[1:]):
        different = [str(r) for r, s in zip(runs, splits) if s != splits[0]]
        raise ValueError(f"{', '.join(different)}: another train/validation/test split than {runs[0]}; train the runs "
                         "with one data.split_seed to refit on their validation split, or pass --no-refit")
    schema = LabelSchema.from_yaml(runs[0] / "label_schema.yaml")
    weights = average_state_dicts([r / WEIGHTS for r in runs])
    with atomic_dir(out) as staging:
        shutil.copytree(runs[0], staging, ignore=_NOT_COPIED, dirs_exist_ok=True)
        from safetensors.torch import save_file

        save_file(weights, str(staging / WEIGHTS), metadata={"format": "pt"})
        info = {"averaged_from": [str(r) for r in runs]}
        if refit_on_validation:
            info.update(refit(staging, schema))
        (staging / "metrics.json").write_text(json.dumps(info, indent=2, default=float), encoding="utf-8")
        if evaluate:
            cfg = load_config(staging / "train_config.yaml")
            evaluate_run(staging, split=cfg.eval.split, baselines=[], extra_data=cfg.eval.extra_data)
    logger.info("Averaged %d runs into %s", len(runs), out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.average", description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run directories of one recipe (two or more)")
    parser.add_argument("--out", required=True, help="the averaged run directory to write")
    parser.add_argument("--no-refit", dest="refit", action="store_false",
                        help="keep the first run's thresholds and calibration (runs trained on different splits)")
    parser.add_argument("--no-eval", dest="evaluate", action="store_false", help="skip the report")
    add_log_level(parser)
    args = parser.parse_args(argv)
    start_command(args.log_level)
    return run_command(lambda: average_runs(args.runs, args.out, args.refit, args.evaluate), args.log_level, logger)


if __name__ == "__main__":
    sys.exit(main())
