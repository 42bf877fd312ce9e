"""Train a config end to end and print wall time, peak RSS, the recipe's training FLOPs and FLOP/s.

    python -m benchmarks.train_speed [--config configs/default.yaml] [--set key=value ...] [--no-eval]

Training FLOPs are counted from the recipe: 6 x (non-embedding parameters per layer) x layers trained
x training tokens x epochs run, plus 2 x parameters x layers cached x tokens of every split for the
one forward pass that fills the cache (`training_flops`); the figure is printed as a
ratio to the full recipe (every layer trained, 15 epochs, same records; `data.context_pairs` adds inputs to
the recipe's count, not to the full one's), and as achieved FLOP/s against
a plain fp32 matmul measured in the same run, with the CPU features this process saw, and the wall
seconds of each stage (`metrics.json` "stage_seconds"). Timings are only comparable as ratios measured
in one run on one machine. An AVX2-only CPU can be emulated on a newer one (`infer.hardware`):

    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 python -m benchmarks.train_speed

The frozen-feature baseline's vectors come from `train.evaluate.vector_store`: by default the benchmark gives the run
an empty temporary store (`--vectors cold`: a new user's first run embeds every text); `--vectors warm`
uses the user's store (`$STC_VECTOR_CACHE` or ~/.cache), where an earlier run on the same texts left them.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time

import torch

from benchmarks.common import fp32_matmul_flops, machine_line, peak_rss_mib
from train.config import load_config
from train.run import main as train_main

FULL_RECIPE_EPOCHS = 15

# Share of a BERT layer's matmul FLOPs still spent on every position when only the first token's output is
# needed (`infer.first_token`): the key and value projections, 2 h^2 of 4 h^2 + 2 h x intermediate (= 12 h^2).
FIRST_TOKEN_LAST_LAYER = 1 / 6


def training_flops(non_embedding_per_layer: int, layers_trained: float, layers_cached: int, tokens_per_epoch: int,
                   epochs: float, cached_passes: float = 1, first_token_last: bool = False) -> dict[str, float]:
    """Training FLOPs of a recipe, counted as 6 x params x tokens for trained layers (forward + backward)
    and 2 x params x tokens for the one forward pass that fills the cache (over `cached_passes` epochs'
    worth of tokens: train + validation + test). With `first_token_last` the last trained layer counts
    `FIRST_TOKEN_LAST_LAYER` of a layer. Attention-score FLOPs are left out (short texts)."""
    if first_token_last:
        layers_trained = layers_trained - 1 + FIRST_TOKEN_LAST_LAYER
    trained = 6 * non_embedding_per_layer * layers_trained * tokens_per_epoch * epochs
    cached = 2 * non_embedding_per_layer * layers_cached * tokens_per_epoch * cached_passes
    return {"trained": float(trained), "cached": float(cached), "total": float(trained + cached)}


def inputs_line(records: int, inputs: dict | None) -> str:
    """What one epoch trained on: `1334 train records + 1273 context pairs`."""
    if not inputs or not inputs.get("context_pairs"):
        return f"{records} train records"
    return f"{records} train records + {inputs['context_pairs']} context pairs"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="configs/default.yaml")
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--no-eval", action="store_true", help="skip the end-of-run evaluation report")
    p.add_argument("--out", default="runs/bench-train")
    p.add_argument("--vectors", choices=("cold", "warm"), default="cold",
                   help="cold: an empty temporary vector store (first run); warm: the user's store")
    args = p.parse_args()
    store = None
    if args.vectors == "cold":
        store = tempfile.TemporaryDirectory(prefix="stc-vectors-")
        os.environ["STC_VECTOR_CACHE"] = store.name
    logging.basicConfig(level=logging.WARNING)
    extra = [f"output_dir={args.out}"] + (["eval.enabled=false"] if args.no_eval else [])
    cfg = load_config(args.config, args.overrides + extra)
    peak = fp32_matmul_flops()
    start = time.perf_counter()
    run_dir = train_main(cfg, overwrite=True)  # the benchmark owns its output directory
    wall = time.perf_counter() - start
    metrics = json.loads((run_dir / "metrics.json").read_text())
    final = next(e for e in reversed(metrics["log_history"]) if "train_runtime" in e)
    epochs = final["epoch"]
    splits = json.loads((run_dir / "splits.json").read_text())
    from transformers import AutoConfig, AutoTokenizer

    from infer.labels import LabelSchema
    from train.data.records import load_records

    tok = AutoTokenizer.from_pretrained(run_dir)
    by_id = {r["id"]: r for r in load_records(cfg.data_files(), LabelSchema.from_yaml(cfg.data.schema))}

    def tokens(ids: list[str]) -> int:
        enc = tok([by_id[i]["text"] for i in ids], truncation=True, max_length=cfg.data.max_length)
        return sum(len(x) for x in enc["input_ids"])

    inputs = metrics.get("train_inputs")  # with data.context_pairs, train holds more inputs than records
    record_tokens = tokens(splits["train"])
    train_tokens = inputs["tokens"] if inputs else record_tokens
    all_tokens = train_tokens + sum(tokens(ids) for name, ids in splits.items() if name != "train")
    conf = AutoConfig.from_pretrained(run_dir)
    h, inter = conf.hidden_size, conf.intermediate_size
    per_layer = 4 * h * h + 2 * h * inter
    layers = conf.num_hidden_layers
    pooling_layer = 1 if cfg.model.pooling == "mean_layer" else 0
    if cfg.model.train_layers is not None:
        trained = cfg.model.train_layers + pooling_layer
        cached = layers - trained if cfg.train.cache_frozen_layers else 0
        frozen_uncached = 0 if cfg.train.cache_frozen_layers else layers - trained
    else:
        trained, cached, frozen_uncached = layers, 0, 0
    from transformers import AutoModelForSequenceClassification

    from infer.first_token import supports_first_token

    with torch.device("meta"):  # the architecture only, to ask whether the last layer runs for one token
        first_token = supports_first_token(AutoModelForSequenceClassification.from_config(conf))
    first_token_last = first_token and cfg.model.train_layers is not None
    recipe = training_flops(per_layer, trained, cached, train_tokens, epochs, cached_passes=all_tokens / train_tokens,
                            first_token_last=first_token_last)
    recipe["total"] += 2 * per_layer * frozen_uncached * train_tokens * epochs  # frozen layers' forward, uncached
    from train.backbones.bundled import load_pretrained

    backbone_layers = load_pretrained(cfg.model.backbone, AutoConfig).num_hidden_layers
    full = training_flops(per_layer, backbone_layers, 0, record_tokens, FULL_RECIPE_EPOCHS)  # the records, no pairs
    achieved = (recipe["total"] - recipe["cached"]) / final["train_runtime"]
    print(machine_line())
    print(f"config: {args.config} {' '.join(args.overrides)}")
    print(f"wall time (end to end{'' if args.no_eval else ', evaluation included'}): {wall:.1f} s; train loop "
          f"{final['train_runtime']:.1f} s, {epochs:.2f} epochs, {inputs_line(len(splits['train']), inputs)}, "
          f"{train_tokens} tokens/epoch")
    print(f"peak RSS: {peak_rss_mib():.0f} MiB")
    print(f"frozen-feature vectors: {'cold (empty temporary store)' if store else 'warm (the user store)'}")
    print(f"layers: {trained} trained{' (the last for the first token only)' if first_token else ''}, "
          f"{cached} cached (of {layers})")
    print(f"training FLOPs: {recipe['total'] / 1e12:.2f} TFLOP (cache fill {recipe['cached'] / 1e12:.2f}) = "
          f"{recipe['total'] / full['total']:.3f} x the full recipe ({backbone_layers} layers trained, "
          f"{FULL_RECIPE_EPOCHS} epochs: {full['total'] / 1e12:.2f} TFLOP)")
    print(f"achieved in the train loop: {achieved / 1e9:.1f} GFLOP/s = {achieved / peak:.2f} x plain fp32 matmul "
          f"({peak / 1e9:.1f} GFLOP/s measured now)")
    stages = metrics.get("stage_seconds", {})
    if stages:
        print("stages: " + ", ".join(f"{k} {v:.0f} s" for k, v in stages.items()))
    test = metrics["test"]
    print(f"test (Trainer, thresholds 0.5): issue macro-F1 {test.get('test_issues_macro_f1', float('nan')):.3f}, "
          f"stance macro-F1 {test.get('test_stance_macro_f1', float('nan')):.3f}")
    report = run_dir / "report.json"
    if report.is_file():
        rep = json.loads(report.read_text())
        for name, part in rep.get("extra", {}).items():
            m = part["systems"]["model"]
            print(f"{name}: issue macro-F1 {m['issues']['macro_f1']:.3f}, stance macro-F1 {m['stance']['macro_f1']:.3f}")


if __name__ == "__main__":
    main()
