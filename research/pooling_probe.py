"""Which pooled states carry the stance? Logistic-regression probes on frozen or fine-tuned encoder states.

For the config's train/validation/test split, fits a class-balanced logistic regression on the stance
from (a) the frozen backbone's mean-pooled and first-token last hidden states and, with `--model`, (b) the
fine-tuned run's own mean-pooled and first-token states, and prints validation/test stance macro-F1
beside the run's own head. Used to tell a weak first-token head from a drifted encoder.

    python -m research.pooling_probe --config configs/default.yaml [--model runs/default]
    python -m research.pooling_probe --config configs/default.yaml --exclude authored_4 authored_5 authored_6
"""

from __future__ import annotations

import argparse
import logging

import numpy as np
import torch

logger = logging.getLogger("pooling_probe")


def pooled_states(model, tokenizer, texts, prefix: str = "", batch_size: int = 32, max_length: int = 256):
    """{"mean": (n, d) L2-normalized mean-pooled, "first": (n, d) first-token} last hidden states."""
    from train.evaluate.embeddings import mean_pool

    out = {"mean": [], "first": []}
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            enc = tokenizer([prefix + t for t in texts[start:start + batch_size]], padding=True, truncation=True,
                            max_length=max_length, return_tensors="pt")
            hidden = model(**enc, output_hidden_states=True).hidden_states[-1]
            out["mean"].append(mean_pool(hidden, enc["attention_mask"]).numpy())
            out["first"].append(torch.nn.functional.normalize(hidden[:, 0], dim=-1).numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def main() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

    from infer.labels import LabelSchema
    from train.backbones.bundled import load_pretrained
    from train.config import load_config
    from train.evaluate.embeddings import E5_PREFIX
    from train.run import prepare_data

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/default.yaml")
    parser.add_argument("--model", "--run", dest="run", help="a finished run directory whose own states are probed too")
    parser.add_argument("--exclude", nargs="*", default=[], help="leave out data files whose name contains these")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    cfg = load_config(args.config)
    schema = LabelSchema.from_yaml(cfg.data.schema)
    if args.exclude:
        cfg.data.files = [str(f) for f in cfg.data_files() if not any(x in f.name for x in args.exclude)]
    splits = prepare_data(cfg, schema)
    names = ("train", "validation", "test")
    y = {s: np.array([schema.stance.index(x) for x in splits[s]["stance"]]) for s in names}
    texts = {s: list(splits[s]["text"]) for s in names}

    encoders = [("frozen", load_pretrained(cfg.model.backbone, AutoModel).eval(),
                 load_pretrained(cfg.model.backbone, AutoTokenizer), E5_PREFIX)]
    if args.run:
        run_model = AutoModelForSequenceClassification.from_pretrained(args.run).eval()
        run_tok = AutoTokenizer.from_pretrained(args.run)
        encoders.append(("fine-tuned", run_model, run_tok, ""))
        k = len(schema.issues)
        with torch.inference_mode():
            for s in ("validation", "test"):
                pred = []
                for start in range(0, len(texts[s]), 32):
                    enc = run_tok(texts[s][start:start + 32], padding=True, truncation=True,
                                  max_length=cfg.data.max_length, return_tensors="pt")
                    pred.append(run_model(**enc).logits[:, k:].argmax(1).numpy())
                logger.info("%-10s head               %s stance macro-F1 %.3f", "fine-tuned", s,
                            f1_score(y[s], np.concatenate(pred), average="macro"))
    for label, model, tokenizer, prefix in encoders:
        feats = {s: pooled_states(model, tokenizer, texts[s], prefix, max_length=cfg.data.max_length) for s in names}
        for pooling in ("mean", "first"):
            probe = LogisticRegression(C=10.0, class_weight="balanced", max_iter=3000)
            probe.fit(feats["train"][pooling], y["train"])
            scores = [f1_score(y[s], probe.predict(feats[s][pooling]), average="macro") for s in ("validation", "test")]
            logger.info("%-10s %-5s-pooled probe   validation %.3f  test %.3f (stance macro-F1)",
                        label, pooling, *scores)


if __name__ == "__main__":
    main()
