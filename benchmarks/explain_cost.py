"""Cost of `classify(..., explain=True)` (leave-one-sentence-out evidence) relative to plain `classify`.

    python -m benchmarks.explain_cost [--model runs/default] [--n 100] [--repeat 3]

Takes `--n` paragraphs drawn (seeded) from every file of `data/labels/`, times plain `classify` and
`classify(explain=True)` alternately on the same paragraphs after one warm-up each, and prints the
median wall times, their ratio, the mean number of sentences per paragraph (explain scores
sentences + 1 texts per paragraph) and the CPU model. Without a trained run (`--model` missing) it
uses the bundled backbone with a random head: the ratio, not the labels, is what is measured.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import time
from pathlib import Path

import torch

from benchmarks.common import machine_line
from infer.classifier import Classifier
from infer.evidence import split_sentences
from infer.labels import LabelSchema


def load_classifier(model: str, backbone: str) -> tuple[Classifier, str]:
    if Path(model, "config.json").is_file():
        return Classifier.from_pretrained(model, route="fp32"), model
    from train.config import ModelConfig
    from train.model.build import build_model

    schema = LabelSchema.from_yaml("data/labels/schema.yaml")
    torch.manual_seed(0)
    net, tokenizer = build_model(ModelConfig(backbone=backbone), schema)
    return (Classifier(net, tokenizer, schema, [0.5] * len(schema.issues), torch.device("cpu")),
            f"{backbone} + random head (no run at {model})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="runs/default")
    p.add_argument("--backbone", default="bundled:multilingual-e5-small", help="used when --model is not a run")
    p.add_argument("--data", default="data/labels")
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)

    records = [json.loads(line) for f in sorted(Path(args.data).glob("*.jsonl"))
               for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = [r["text"] for r in random.Random(args.seed).sample(records, min(args.n, len(records)))]
    clf, what = load_classifier(args.model, args.backbone)
    sentences = [len(split_sentences(t)) for t in texts]
    tokens = sum(len(ids) for ids in clf.tokenizer(texts)["input_ids"])

    def plain():
        clf.classify(texts, batch_size=args.batch_size)

    def explained():
        clf.classify(texts, batch_size=args.batch_size, explain=True)

    plain(), explained()  # warm-up
    times: dict[str, list[float]] = {"plain": [], "explain": []}
    for _ in range(args.repeat):  # alternate, so load from other processes hits both alike
        for name, fn in (("plain", plain), ("explain", explained)):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    t_plain, t_explain = statistics.median(times["plain"]), statistics.median(times["explain"])
    print(machine_line())
    print(f"model: {what}; {len(texts)} paragraphs from {args.data}, {tokens} tokens, "
          f"{statistics.mean(sentences):.2f} sentences per paragraph (max {max(sentences)}); "
          f"median of {args.repeat} after a warm-up")
    print(f"classify():             {t_plain:7.2f} s  ({len(texts) / t_plain:6.1f} paragraphs/s)")
    print(f"classify(explain=True): {t_explain:7.2f} s  ({len(texts) / t_explain:6.1f} paragraphs/s)")
    print(f"explain costs {t_explain / t_plain:.2f}x plain classify "
          f"(texts scored: {len(texts) + sum(sentences)} vs {len(texts)})")


if __name__ == "__main__":
    main()
