"""Why `infer` has no int8 route: dynamic int8 quantization against fp32 on one checkpoint and one text set.

    python -m research.int8_probe --model runs/default [--data ../shared/realnews/dev.jsonl] [--repeat 2]

Each variant quantizes the checkpoint's Linear layers, runs `classify()`'s length-sorted batches of 16, and is
compared with the fp32 `classify()` of the same process: seconds (best of `--repeat` after a warm-up) and speed
over fp32, the paragraphs with at least one decision changed, and the stance and issue decisions changed.

Variants:
    ao-tensor    torch.ao `quantize_dynamic`, per-tensor int8 weights (deprecated API; fbgemm's fast kernels)
    ao-channel   the same with per-channel weights
    torchao      torchao's int8 dynamic per-token activations x per-channel weights, if torchao is installed

For each variant it also prints a margin gate, the only way int8 could keep fp32's decisions: re-run in fp32
every paragraph whose int8 margin (the smallest of its issue logits' distance to their thresholds and its
stance log-odds of first over second) is below `delta`; it prints the share re-run, the changed paragraphs the
gate misses, and the cost as a multiple of fp32 (the int8 pass plus the re-run share).
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import machine_line
from benchmarks.infer_speed import load_paragraphs, time_it
from infer.classifier import Classifier

DELTAS = (0.1, 0.25, 0.5, 1.0, 1.5)


def quantized(model: torch.nn.Module, variant: str) -> torch.nn.Module:
    """A copy of `model` with its Linear layers quantized as `variant` says."""
    model = copy.deepcopy(model)
    if variant == "torchao":
        from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

        quantize_(model, Int8DynamicActivationInt8WeightConfig())
        return model
    from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig, quantize_dynamic

    qconfig = per_channel_dynamic_qconfig if variant == "ao-channel" else default_dynamic_qconfig
    with warnings.catch_warnings():  # the deprecation notices of torch.ao, known and the reason for this probe
        warnings.simplefilter("ignore")
        return quantize_dynamic(model, {torch.nn.Linear: qconfig}, dtype=torch.qint8)


def margins(scores: np.ndarray, thresholds: np.ndarray, k: int) -> np.ndarray:
    """Per paragraph: min over issues of |logit(score) - logit(threshold)|, and stance log(p1 / p2)."""
    def logit(p):
        p = np.clip(p, 1e-7, 1 - 1e-7)
        return np.log(p / (1 - p))

    issue = np.abs(logit(scores[:, :k]) - logit(thresholds)).min(1)
    stance = np.sort(np.log(np.clip(scores[:, k:], 1e-9, 1.0)), axis=1)
    return np.minimum(issue, stance[:, -1] - stance[:, -2])


def timed(clf: Classifier, texts: list[str], repeat: int) -> tuple[float, np.ndarray]:
    """Best seconds of `repeat` `classify()` passes (batches of 16) after a warm-up, and the scores."""
    seconds, _, scores = time_it(lambda: np.asarray(clf.predict_scores(texts, batch_size=16)), repeat)
    return seconds, scores


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="runs/default")
    p.add_argument("--data", default="../shared/realnews/dev.jsonl")
    p.add_argument("--split", default="test")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--variant", action="append", choices=["ao-tensor", "ao-channel", "torchao"],
                   help="repeatable (default: all; torchao only if installed)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    variants = args.variant or ["ao-tensor", "ao-channel"] + (
        ["torchao"] if importlib.util.find_spec("torchao") else [])
    texts = [r["text"] for r in load_paragraphs(Path(args.model), Path(args.data), args.split)]
    # dynamic int8 quantization (torch.ao, torchao's CPU kernels) runs on the CPU only: the comparison stays there
    fp32 = Classifier.from_pretrained(args.model, device="cpu", route="fp32")
    k = len(fp32.schema.issues)
    print(machine_line())
    print(f"checkpoint: {args.model}; {len(texts)} paragraphs; best of {args.repeat} after a warm-up\n")
    base_seconds, base = timed(fp32, texts, args.repeat)
    base_issues, base_stance = base[:, :k] >= fp32.thresholds, base[:, k:].argmax(1)
    print(f"fp32 classify(): {base_seconds:.1f} s")
    results = {}
    for variant in variants:
        clf = Classifier(quantized(fp32.model, variant), fp32.tokenizer, fp32.schema, fp32.raw_thresholds,
                         fp32.device, calibration=fp32.calibration)
        seconds, scores = timed(clf, texts, args.repeat)
        issues, stance = scores[:, :k] >= fp32.thresholds, scores[:, k:].argmax(1)
        changed = (issues != base_issues).any(1) | (stance != base_stance)
        results[variant] = {"seconds": seconds, "speedup": base_seconds / seconds,
                            "paragraphs_changed": int(changed.sum()), "stance_changed": int((stance != base_stance).sum()),
                            "issue_decisions_changed": int((issues != base_issues).sum())}
        print(f"\n{variant}: {seconds:.1f} s = {base_seconds / seconds:.2f} x fp32; paragraphs with a changed decision "
              f"{changed.sum()} of {len(texts)}; stance decisions changed {(stance != base_stance).sum()}, "
              f"issue decisions changed {(issues != base_issues).sum()} of {issues.size}")
        margin = margins(scores, fp32.thresholds, k)
        for delta in DELTAS:
            rerun = margin < delta
            missed = int((changed & ~rerun).sum())
            cost = seconds / base_seconds + rerun.mean()
            results[variant][f"gate_{delta}"] = {"rerun": float(rerun.mean()), "missed": missed, "cost_x_fp32": cost}
            print(f"  gate: re-run in fp32 if margin < {delta:4.2f}: {rerun.mean():4.0%} re-run, {missed:3d} changed "
                  f"paragraphs missed, cost {cost:.2f} x fp32")
    return results


if __name__ == "__main__":
    main()
