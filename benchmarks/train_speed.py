"""Train the default config and print wall time, peak RSS, training tokens/s and achieved FLOP/s.

    python benchmarks/train_speed.py [--config configs/default.yaml] [--set key=value ...]

FLOP/s is estimated as 6 × (non-embedding parameters) × (training tokens) / train time (forward +
backward; embeddings frozen by default) and printed as a fraction of a plain fp32 matmul measured in
the same run, so figures compare across machines as ratios.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import fp32_matmul_flops, machine_line, peak_rss_mib  # noqa: E402
from train.config import load_config  # noqa: E402
from train.run import main as train_main  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="configs/default.yaml")
    p.add_argument("--set", dest="overrides", action="append", default=[])
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    cfg = load_config(args.config, args.overrides + ["output_dir=runs/bench-train", "eval.enabled=false"])
    peak = fp32_matmul_flops()
    start = time.perf_counter()
    run_dir = train_main(cfg)
    wall = time.perf_counter() - start
    metrics = json.loads((run_dir / "metrics.json").read_text())
    final = next(e for e in reversed(metrics["log_history"]) if "train_runtime" in e)
    epochs = final["epoch"]
    train_ids = set(json.loads((run_dir / "splits.json").read_text())["train"])
    from transformers import AutoConfig, AutoTokenizer

    from infer.labels import LabelSchema
    from train.data import load_records

    tok = AutoTokenizer.from_pretrained(run_dir)
    records = [r for r in load_records(cfg.data_files(), LabelSchema.from_yaml(cfg.data.schema)) if r["id"] in train_ids]
    tokens = sum(len(ids) for ids in tok([r["text"] for r in records], truncation=True,
                                         max_length=cfg.data.max_length)["input_ids"])
    conf = AutoConfig.from_pretrained(run_dir)
    h, layers, inter = conf.hidden_size, conf.num_hidden_layers, conf.intermediate_size
    non_embedding = layers * (4 * h * h + 2 * h * inter)
    trained_tokens = tokens * epochs
    flops = 6 * non_embedding * trained_tokens / final["train_runtime"]
    print(machine_line())
    print(f"config: {args.config} {' '.join(args.overrides)}")
    print(f"wall time: {wall:.1f} s (train loop {final['train_runtime']:.1f} s, {epochs:.2f} epochs, "
          f"{len(records)} train records, {tokens} tokens/epoch)")
    print(f"peak RSS: {peak_rss_mib():.0f} MiB")
    print(f"training tokens/s: {trained_tokens / final['train_runtime']:.0f}")
    print(f"achieved FLOP/s: {flops / 1e9:.1f} GFLOP/s = {flops / peak:.2f} x plain fp32 matmul "
          f"({peak / 1e9:.1f} GFLOP/s measured now)")
    test = metrics["test"]
    print(f"test: issue macro-F1 {test.get('test_issues_macro_f1', float('nan')):.3f} (thresholds 0.5), "
          f"stance macro-F1 {test.get('test_stance_macro_f1', float('nan')):.3f}")


if __name__ == "__main__":
    main()
