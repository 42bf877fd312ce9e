"""Grouped K-fold cross-validation: K trainings of one config, figures reported as mean ± std.

    python -m train.evaluate.crossval --config configs/default.yaml [--set key=value ...] --folds 5 --out runs/default-cv5

The data is small, so one test split is noisy. Fold i trains `cfg` with the test split set to
fold i of a grouped, stratified K-fold (groups never straddle folds) and writes its own report;
`cv_report.json` / `cv_report.md` aggregate the headline figures of every system. This module sits
above `train.run` (it calls `run.main` once per fold); `train.evaluate` depends on neither.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

from infer.atomic import atomic_file
from infer.command import add_log_level, run_command, start_command
from train.config import Config, ConfigError, load_config
from train.run import main as train_main

logger = logging.getLogger(__name__)

HEADLINES = (("issues", "micro_f1"), ("issues", "macro_f1"), ("stance", "accuracy"), ("stance", "macro_f1"))


def aggregate(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """{system: {"issues.macro_f1": {"mean", "std", "values"}, ..., "by_lang": {lang: {...}}}}"""
    out: dict[str, Any] = {}
    for name in reports[0]["systems"]:
        entry: dict[str, Any] = {}
        for group, key in HEADLINES:
            values = [r["systems"][name][group][key] for r in reports]
            entry[f"{group}.{key}"] = {"mean": float(np.mean(values)), "std": float(np.std(values)), "values": values}
        langs = sorted({lang for r in reports for lang in r["systems"][name]["by_lang"]})
        entry["by_lang"] = {}
        for lang in langs:
            values = [r["systems"][name]["by_lang"][lang]["macro_f1"] for r in reports if lang in r["systems"][name]["by_lang"]]
            entry["by_lang"][lang] = {"mean": float(np.mean(values)), "std": float(np.std(values)), "folds": len(values)}
        out[name] = entry
    return out


def render(summary: dict[str, Any], k: int) -> str:
    lines = [f"# {k}-fold grouped cross-validation", "", "Mean ± std over folds.", "",
             "| system | " + " | ".join(f"{g} {m}" for g, m in HEADLINES) + " |", "|---|" + "---|" * len(HEADLINES)]
    for name, entry in summary.items():
        cells = [f"{entry[f'{g}.{m}']['mean']:.3f} ± {entry[f'{g}.{m}']['std']:.3f}" for g, m in HEADLINES]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "## Macro-F1 by language (mean of issue and stance macro-F1; mean ± std over folds)", ""]
    names = list(summary)
    langs = list(summary[names[0]]["by_lang"])
    lines += ["| lang | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for lang in langs:
        lines.append(f"| {lang} | " + " | ".join(
            f"{summary[n]['by_lang'][lang]['mean']:.3f} ± {summary[n]['by_lang'][lang]['std']:.3f}" for n in names) + " |")
    return "\n".join(lines) + "\n"


def cross_validate(cfg: Config, k: int, out_dir: str | Path) -> dict[str, Any]:
    """Train and evaluate `k` folds under `out_dir/cv/fold-i`, then write cv_report.json/.md to `out_dir`."""
    if k < 2:
        raise ConfigError(f"--folds must be >= 2, got {k}")
    out_dir = Path(out_dir)
    reports = []
    for fold in range(k):
        fold_cfg = copy.deepcopy(cfg)
        fold_cfg.data.cv_folds, fold_cfg.data.cv_fold = k, fold
        fold_cfg.output_dir = str(out_dir / "cv" / f"fold-{fold}")
        fold_cfg.eval.enabled, fold_cfg.eval.split = True, "test"
        fold_cfg.hub.push = False
        logger.info("Cross-validation fold %d/%d", fold + 1, k)
        run_dir = train_main(fold_cfg, overwrite=True)  # the fold directories belong to this command
        reports.append(json.loads((run_dir / "report.json").read_text(encoding="utf-8")))
    summary = {"k": k, "systems": aggregate(reports)}
    with atomic_file(out_dir / "cv_report.json") as fh:
        json.dump(summary, fh, indent=2)
    with atomic_file(out_dir / "cv_report.md") as fh:
        fh.write(render(summary["systems"], k))
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.evaluate.crossval", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="YAML config, e.g. configs/default.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set train.epochs=3 (repeatable)")
    parser.add_argument("--folds", type=int, required=True, metavar="K", help="number of grouped folds (>= 2)")
    parser.add_argument("--out", required=True, help="directory for cv/fold-i runs and cv_report.json/.md")
    add_log_level(parser)
    args = parser.parse_args(argv)
    start_command(args.log_level)
    return run_command(lambda: cross_validate(load_config(args.config, args.overrides), args.folds, args.out),
                       args.log_level, logger)


if __name__ == "__main__":
    sys.exit(main())
