"""Train a list of recipes over several seeds and print one table (mean ± std over seeds).

    python -m research.sweep --seeds 1 2 3 \
        --recipe "full=" \
        --recipe "top4=model.train_layers=4 train.epochs=6" \
        [--config configs/default.yaml] [--set key=value ...] [--out runs/sweep]

A recipe is `NAME=OVERRIDES` (space-separated `key=value` config overrides; empty: the config as is).
The seed sets the split, the initialization and the data order, so the spread covers split noise too.
Each training runs in its own process (`python -m train`), so its wall time and peak RSS are its own.
Every run scores its own test split and each `eval.extra_data` file (the real-news dev set in the
default config); the `embeddings_logreg` baseline (logistic regression on the frozen backbone's
mean-pooled features, fitted on the same train split) is scored in the runs of the first recipe.

A finished run leaves `<out>/<recipe>-s<seed>.json` with its figures; running the sweep again with
the same `--out` reuses those runs (so recipes can be added to a sweep, or a stopped sweep resumed), if they
trained the same resolved config (recorded in that file): a run of a recipe whose meaning changed (e.g. a new
default in the config) stops the sweep with the keys that differ.

Prints a Markdown table: own-test and each extra section's issue/stance macro-F1, per-class stance
F1 of the first extra section, wall time and peak RSS; writes it with every run's figures to
`<out>/sweep.json` and `<out>/sweep.md`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger("sweep")
BASELINE = "embeddings_logreg"


def parse_recipe(text: str) -> tuple[str, list[str]]:
    """`"top4=model.train_layers=4 train.epochs=6"` -> ("top4", ["model.train_layers=4", "train.epochs=6"])."""
    name, sep, rest = text.partition("=")
    if not sep or not name.strip():
        raise ValueError(f"--recipe expects NAME=OVERRIDES, got {text!r}")
    return name.strip(), shlex.split(rest)


# keys of the resolved config that name a run rather than change what it trains or measures
_RUN_NAMING = ("output_dir", "name", "eval.baselines")


FINGERPRINT = "data.fingerprint"


def data_fingerprint(cfg) -> str:
    """A digest of what the run reads: the files `data.files` matches, the schema and the `eval.extra_data` files
    present (names and contents). An edited data file leaves the config as it was, but not this."""
    h = hashlib.sha256()
    paths = [*cfg.data_files(), Path(cfg.data.schema), *(Path(p) for p in cfg.eval.extra_data if Path(p).is_file())]
    for path in paths:
        h.update(f"{path}\0".encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def resolved_config(config: str, overrides: list[str]) -> dict[str, Any]:
    """The run's resolved config (what `python -m train` will train), flattened to `section.key`, less naming keys,
    with the fingerprint of the data it reads (`data.fingerprint`)."""
    from train.config import load_config

    cfg = load_config(config, overrides)
    kept = {k: v for k, v in _flat(cfg).items() if k not in _RUN_NAMING}
    kept[FINGERPRINT] = data_fingerprint(cfg)
    return json.loads(json.dumps(kept, default=str))  # as it reads back from the run's file (lists, not tuples)


def _flat(cfg) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in cfg.to_dict().items():
        if isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    return flat


# Keys whose dataclass default has changed since they were added (the defaults became the chosen recipe): a run
# recorded before such a key existed trained with its value of then, not with today's default.
DEFAULT_WHEN_ADDED: dict[str, Any] = {
    "data.context_pairs": 0.0,
    "model.attention_dropout": None,
    "model.pooling": "first_token",
    "model.train_layers": None,
    "train.head_learning_rate": None,
}


def config_defaults() -> dict[str, Any]:
    """Every config key at the value a run recorded before the key existed trained with."""
    from train.config import load_config

    return {**json.loads(json.dumps(_flat(load_config(None, [])), default=str)), **DEFAULT_WHEN_ADDED}


def check_reusable(done: Path, saved: dict[str, Any], config: dict[str, Any]) -> None:
    """Reuse a finished run only if it trained the same resolved config on the same data (a changed default or an
    edited data file would otherwise be mixed silently into a recipe's mean); runs recorded before configs or
    data fingerprints were saved are reused with a warning."""
    recorded = saved.get("config")
    if recorded is None:
        logger.warning("%s predates recorded configs: reused without checking it trained the same config", done)
        return
    if FINGERPRINT not in recorded:
        logger.warning("%s predates data fingerprints: reused without checking it read the same data", done)
        recorded = {**recorded, FINGERPRINT: config.get(FINGERPRINT)}
    from train.config import REMOVED_KEYS

    gone = {k for k, v in REMOVED_KEYS.items() if k in recorded and recorded[k] == v and k not in config}
    recorded = {k: v for k, v in recorded.items() if k not in gone}  # keys removed since, at today's meaning
    defaults = config_defaults()
    added = {k: config[k] for k in set(config) - set(recorded) if k in defaults and config[k] == defaults[k]}
    if added:  # keys the config gained since, at their defaults: the run trained what they mean
        logger.info("%s predates config keys %s: reused (they are at their defaults)", done, ", ".join(sorted(added)))
        recorded = {**recorded, **added}
    differ = sorted(k for k in set(recorded) | set(config) if recorded.get(k) != config.get(k))
    if differ:
        shown = ", ".join(f"{k}: {recorded.get(k)!r} -> {config.get(k)!r}" for k in differ[:4])
        what = "the data files it read have changed since" if differ == [FINGERPRINT] else \
            "pin the changed keys in the recipe"
        raise SystemExit(f"{done} was trained with another config ({shown}); {what}, use another --out, "
                         "or delete the file to re-run it")


def run_training(config: str, overrides: list[str], log_path: Path) -> tuple[float, float, int]:
    """`python -m train` in a child process; returns (wall seconds, peak RSS MiB, exit code)."""
    cmd = [sys.executable, "-m", "train", "--config", config, "--overwrite"]  # the sweep owns its run directories
    for item in overrides:
        cmd += ["--set", item]
    start = time.perf_counter()
    with log_path.open("w", encoding="utf-8") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - start, usage.ru_maxrss / 1024, proc.returncode


def run_in_process(config: str, overrides: list[str]) -> tuple[float, float, int]:
    """The same training through `train.run.main` in this process (no start-up cost; for small models and
    tests). Peak RSS is this process's, reset before the run where the kernel allows it."""
    from benchmarks.common import peak_rss_mib, reset_peak_rss
    from train.config import load_config
    from train.run import main as train_main

    reset_peak_rss()
    start = time.perf_counter()
    train_main(load_config(config, overrides), overwrite=True)
    return time.perf_counter() - start, peak_rss_mib(), 0


def figures(report: dict[str, Any], system: str) -> dict[str, float]:
    """Headline figures of one system in each section of a run's report.json."""
    out: dict[str, float] = {}
    for section, part in [("test", report), *report.get("extra", {}).items()]:
        if system not in part["systems"]:
            continue
        s = part["systems"][system]
        out[f"{section}.issues"] = s["issues"]["macro_f1"]
        out[f"{section}.stance"] = s["stance"]["macro_f1"]
        for label, entry in s["stance"]["per_label"].items():
            out[f"{section}.stance.{label}"] = entry["f1"]
        for group, entry in s.get("english_vs_rest", {}).items():  # stance macro-F1, English vs the rest
            out[f"{section}.stance_{group}"] = entry["stance"]["macro_f1"]
    return out


def aggregate(rows: list[dict[str, float]]) -> dict[str, tuple[float, float]]:
    keys = sorted({k for r in rows for k in r})
    return {k: (float(np.mean([r[k] for r in rows if k in r])), float(np.std([r[k] for r in rows if k in r])))
            for k in keys}


def render(results: dict[str, dict[str, Any]], seeds: list[int]) -> str:
    """One Markdown table row per recipe (and for the frozen-feature baseline)."""
    first = next(iter(results.values()))["mean"]
    extra = sorted({k.split(".")[0] for k in first if not k.startswith(("test.", "wall", "rss"))})
    classes = sorted({k.split(".")[-1] for k in first if extra and k.startswith(f"{extra[0]}.stance.")})
    header = ["recipe", "test issues", "test stance"]
    for section in extra:
        header += [f"{section} issues", f"{section} stance"]
    header += [f"{extra[0]} {c}" for c in classes] if extra else []
    header += [f"{extra[0]} stance en", f"{extra[0]} stance non-en"] if extra else []
    header += ["wall s", "peak RSS MiB"]
    lines = [f"Mean ± std over seeds {seeds}.", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def cell(agg: dict[str, tuple[float, float]], key: str, fmt: str = ".3f") -> str:
        if key not in agg:
            return "—"
        mean, std = agg[key]
        return f"{mean:{fmt}} ± {std:{fmt}}"

    for name, entry in results.items():
        agg = entry["mean"]
        cells = [name, cell(agg, "test.issues"), cell(agg, "test.stance")]
        for section in extra:
            cells += [cell(agg, f"{section}.issues"), cell(agg, f"{section}.stance")]
        cells += [cell(agg, f"{extra[0]}.stance.{c}") for c in classes] if extra else []
        cells += [cell(agg, f"{extra[0]}.stance_{g}") for g in ("en", "non_en")] if extra else []
        cells += [cell(agg, "wall", ".0f"), cell(agg, "rss", ".0f")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def baseline_result(rows: dict[int, dict[str, float]], seeds: list[int]) -> dict[str, dict[str, Any]]:
    """The frozen-feature baseline's table entry over the seeds whose runs have its figures.

    A reused run that was trained without the baseline (it was not the first recipe then) has none: the row
    is kept over the other seeds and its name says which, instead of vanishing or mixing seeds silently.
    """
    have = [seed for seed in seeds if rows.get(seed)]
    if not have:
        return {}
    name = f"{BASELINE} (frozen features)"
    if len(have) < len(seeds):
        missing = [seed for seed in seeds if seed not in have]
        logger.warning("%s: no figures for seeds %s (their runs were trained without it); its row covers seeds %s",
                       BASELINE, missing, have)
        name = f"{BASELINE} (frozen features, seeds {', '.join(map(str, have))} only)"
    runs = [rows[seed] for seed in have]
    return {name: {"overrides": [], "seeds": have, "runs": runs, "mean": aggregate(runs)}}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="configs/default.yaml")
    p.add_argument("--recipe", action="append", required=True, help="NAME=OVERRIDES (repeatable)")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--set", dest="overrides", action="append", default=[], help="override for every recipe")
    p.add_argument("--out", default="runs/sweep")
    p.add_argument("--keep-runs", action="store_true", help="keep each run's checkpoint (default: report only)")
    p.add_argument("--in-process", action="store_true",
                   help="train in this process instead of one `python -m train` per run (tiny models, tests)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    recipes = [parse_recipe(r) for r in args.recipe]
    results: dict[str, dict[str, Any]] = {}
    baseline_rows: dict[int, dict[str, float]] = {}  # seed -> the first recipe's baseline figures
    for i, (name, overrides) in enumerate(recipes):
        rows = []
        for seed in args.seeds:
            run_dir = out / f"{name}-s{seed}"
            done = out / f"{name}-s{seed}.json"  # a finished run's figures: a re-run of the sweep reuses them
            baselines = f"[{BASELINE}]" if i == 0 else "[]"
            sets = [*args.overrides, *overrides, f"seed={seed}", f"output_dir={run_dir}", "name=" + name,
                    "eval.enabled=true", f"eval.baselines={baselines}", "hub.push=false"]
            config = resolved_config(args.config, sets)
            if done.is_file():
                saved = json.loads(done.read_text(encoding="utf-8"))
                check_reusable(done, saved, config)
                rows.append(saved["model"])
                if i == 0:
                    baseline_rows[seed] = saved["baseline"]
                logger.info("%s seed %d: reusing %s", name, seed, done)
                continue
            if args.in_process:
                wall, rss, code = run_in_process(args.config, sets)
            else:
                wall, rss, code = run_training(args.config, sets, out / f"{name}-s{seed}.log")
            if code != 0:
                raise SystemExit(f"recipe {name!r} seed {seed} failed (exit {code}); see {out / f'{name}-s{seed}.log'}")
            report = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
            row = {**figures(report, "model"), "wall": wall, "rss": rss}
            rows.append(row)
            if i == 0:
                baseline_rows[seed] = figures(report, BASELINE)
            done.write_text(json.dumps({"overrides": sets, "config": config, "model": row,
                                        "baseline": figures(report, BASELINE)}, indent=2), encoding="utf-8")
            logger.info("%s seed %d: %s", name, seed, {k: round(v, 3) for k, v in row.items() if k.count(".") <= 1})
            if not args.keep_runs:
                for f in run_dir.glob("*.safetensors"):
                    f.unlink()
        results[name] = {"overrides": overrides, "runs": rows, "mean": aggregate(rows)}
    results.update(baseline_result(baseline_rows, args.seeds))
    table = render(results, args.seeds)
    cmd = "python -m research.sweep " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    (out / "sweep.md").write_text(f"`{cmd}`\n\n{table}", encoding="utf-8")
    (out / "sweep.json").write_text(json.dumps({"seeds": args.seeds, "results": results}, indent=2), encoding="utf-8")
    print(table)
    return results


if __name__ == "__main__":
    main()
