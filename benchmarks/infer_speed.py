"""Inference throughput: a plain `transformers` pipeline (the baseline) vs `classify()` and its routes.

    python -m benchmarks.infer_speed --model runs/default [--data data/labels] [--split test] [--repeat 2]

One process, one checkpoint, the same paragraphs for every system. For each system it prints
paragraphs/s, tokens/s, the process's peak RSS while it ran (all models stay loaded), the speed-up over the baseline
(`pipeline("text-classification")`, fp32, `batch_size=16`, padded batches), its issue / stance
macro-F1 minus the baseline's on the gold labels (with the checkpoint's tuned thresholds for both), and
the macro-F1 of its decisions scored against the baseline's decisions (1.000: the same decisions).
It also prints the CPU features it saw, because the fastest route depends on them, and each system's
executed FLOPs (counted by `torch.utils.flop_counter` over one extra pass) and achieved FLOP/s.

Last it prints the bound on any exact fp32 route: the fewest FLOPs the model needs for these texts
(`classify()`'s first-token forward one paragraph at a time: no padding) at the fp32 matmul peak measured
in the same run, as a speed-up over the baseline. A route that keeps fp32's decisions and goes past it
must skip work the model does, not run it faster.

On the real-news dev set: `--data ../shared/realnews/dev.jsonl` (an external file is used whole).
Without `--data` it times the seed paragraphs of `data/labels/seed.jsonl` (the paragraphs of the
`--split` when the run's `splits.json` names them, else all).
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import fp32_matmul_flops, machine_line, peak_rss_mib, reset_peak_rss
from infer.classifier import Classifier
from infer.routes import available_routes


def load_paragraphs(model_dir: Path, data: Path, split: str) -> list[dict]:
    """Gold-labeled records: the run's `split` records from `data` (all records if no split file)."""
    files = sorted(data.glob("*.jsonl")) if data.is_dir() else [data]
    records = [json.loads(line) for f in files for line in f.read_text(encoding="utf-8").splitlines() if line]
    splits = model_dir / "splits.json"
    if splits.exists():
        ids = set(json.loads(splits.read_text())[split])
        if any(r["id"] in ids for r in records):  # the run's own data: keep its `split`; other files whole
            records = [r for r in records if r["id"] in ids]
    return records


def macro_f1(schema, thresholds, scores: np.ndarray, records: list[dict]) -> tuple[float, float]:
    from sklearn.metrics import f1_score

    k = len(schema.issues)
    gold_issues = np.array([[name in r["issues"] for name in schema.issues] for r in records])
    gold_stance = [schema.stance.index(r["stance"]) for r in records]
    issues = f1_score(gold_issues, scores[:, :k] >= thresholds, average="macro", zero_division=0)
    stance = f1_score(gold_stance, scores[:, k:].argmax(1), average="macro", zero_division=0)
    return float(issues), float(stance)


def decisions(schema, thresholds, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    k = len(schema.issues)
    return scores[:, :k] >= thresholds, scores[:, k:].argmax(1)


def agreement_f1(reference: tuple[np.ndarray, np.ndarray], other: tuple[np.ndarray, np.ndarray]) -> tuple[float, float]:
    """Issue / stance macro-F1 of `other`'s decisions scored against `reference`'s (1.0: the same decisions)."""
    from sklearn.metrics import f1_score

    issues = f1_score(reference[0], other[0], average="macro", zero_division=1.0)
    stance = f1_score(reference[1], other[1], average="macro", zero_division=1.0)
    return float(issues), float(stance)


def time_it(fn, repeat: int) -> tuple[float, float, object]:
    """Best wall time of `repeat` runs after one warm-up, the peak RSS while they ran, and the last result."""
    reset_peak_rss()
    result = fn()  # warm-up (and first-touch allocations)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, peak_rss_mib(), result


def executed_flops(fn) -> float:
    """FLOPs that one call of `fn` executes (matmuls and attention, as `torch.utils.flop_counter` counts)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="runs/default")
    p.add_argument("--data", default="data/labels/seed.jsonl")
    p.add_argument("--split", default="test")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--limit", type=int, default=None, help="Use only the first N paragraphs.")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from transformers import pipeline

    model_dir = Path(args.model)
    records = load_paragraphs(model_dir, Path(args.data), args.split)[: args.limit]
    texts = [r["text"] for r in records]
    fp32 = Classifier.from_pretrained(model_dir, device="cpu", route="fp32")  # a CPU benchmark, like the pipeline's
    schema, thresholds = fp32.schema, fp32.thresholds
    tokens = sum(len(ids) for ids in fp32.tokenizer(texts, truncation=True)["input_ids"])
    print(machine_line())
    print(f"checkpoint: {model_dir}; {len(texts)} paragraphs, {tokens} tokens "
          f"(mean {tokens / len(texts):.0f}); best of {args.repeat} after a warm-up\n")

    pipe = pipeline("text-classification", model=str(model_dir), device=-1, top_k=None, truncation=True)

    def run_pipeline():
        out = pipe(texts, batch_size=16)
        index = {label: i for i, label in enumerate(schema.id2label.values())}
        logits = np.zeros((len(texts), schema.num_labels))
        for row, labels in enumerate(out):
            for item in labels:  # sigmoid scores (problem_type multi_label): invert to logits
                s = min(max(item["score"], 1e-7), 1 - 1e-7)
                logits[row, index[item["label"]]] = np.log(s / (1 - s))
        return schema.scores(logits)

    systems = [("pipeline fp32 bs16 (baseline)", run_pipeline)]
    full_forward = Classifier(fp32.model, fp32.tokenizer, schema, fp32.raw_thresholds, fp32.device, "fp32",
                              calibration=fp32.calibration, first_token=False)  # every position of the last layer
    systems.append(("classify() fp32 sorted, full last layer", lambda: full_forward.predict_scores(texts, batch_size=16)))
    systems.append(("classify() fp32 sorted, first-token last", lambda: fp32.predict_scores(texts, batch_size=16)))
    for route in available_routes(torch.device("cpu")):
        if route != "fp32":
            clf = fp32.with_route(route)
            systems.append((f"classify() {route} bs16", lambda clf=clf: clf.predict_scores(texts, batch_size=16)))
    auto = Classifier.from_pretrained(model_dir, device="cpu")  # what `infer.classify` uses by default on a CPU
    systems.append((f"classify() default (auto -> {auto.route})",
                    lambda: auto.predict_scores(texts)))

    base_time = base_f1 = base_decisions = None
    print(f"{'system':44s} {'para/s':>7s} {'tok/s':>7s} {'x base':>6s} {'peak MiB':>8s} "
          f"{'issue F1':>8s} {'d':>6s} {'stance F1':>9s} {'d':>6s} {'vs base: issue F1':>17s} {'stance F1':>9s} "
          f"{'TFLOP':>6s} {'GFLOP/s':>7s}")
    for name, fn in systems:
        gc.collect()
        seconds, rss, scores = time_it(fn, args.repeat)
        flops = executed_flops(fn)
        # the pipeline's scores are uncalibrated: its cuts are config.json's (the same decisions)
        cuts = fp32.raw_thresholds if name.startswith("pipeline") else thresholds
        f1 = macro_f1(schema, cuts, np.asarray(scores), records)
        made = decisions(schema, cuts, np.asarray(scores))
        base_time, base_f1 = base_time or seconds, base_f1 or f1
        base_decisions = base_decisions or made
        agree = agreement_f1(base_decisions, made)
        print(f"{name:44s} {len(texts) / seconds:7.1f} {tokens / seconds:7.0f} {base_time / seconds:6.2f} "
              f"{rss:8.0f} {f1[0]:8.3f} {f1[0] - base_f1[0]:+6.3f} {f1[1]:9.3f} {f1[1] - base_f1[1]:+6.3f} "
              f"{agree[0]:17.3f} {agree[1]:9.3f} {flops / 1e12:6.2f} {flops / seconds / 1e9:7.1f}")

    needed = executed_flops(lambda: fp32.predict_scores(texts, batch_size=1))
    peak = fp32_matmul_flops()
    bound = needed / peak
    print(f"\nexact fp32 bound: the model needs {needed / 1e12:.2f} TFLOP for these texts (first-token forward, "
          f"no padding); at the fp32 matmul peak measured now ({peak / 1e9:.1f} GFLOP/s, 1024x1024) that is "
          f"{bound:.1f} s = {base_time / bound:.2f} x the baseline, the most any route with fp32's arithmetic "
          f"can reach on this CPU")


if __name__ == "__main__":
    main()
