"""Time one training step of the default recipe on cached states, per dropout variant, and print ratios.

    python -m benchmarks.step_speed [--config configs/default.yaml] [--lengths 80 160] [--steps 6]

A step is what the train loop repeats: `TopLayers` (the trained top layers + head) forward on a random
batch of cached states (batch `train.batch_size`, every second text padded to 3/4 of the length), the
loss, backward and an AdamW step. Variants, all in the same process, alternated over `--rounds`:
torch's dropout everywhere (the recipe before this session), hidden-state (and classifier) masks
from `train.model.dropout.fast_dropout`, no attention-probability dropout (with torch's or fast
hidden-state masks: the default is the latter) and no dropout at all. Prints milliseconds per step
(best round) and the ratio to the first variant, with the CPU seen.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import time

import torch

from benchmarks.common import machine_line
from infer.labels import LabelSchema
from train.config import load_config
from train.model.dropout import use_fast_dropout
from train.model.layer_cache import TopLayers, encoder_layers
from train.model.build import build_model, first_trained_layer

VARIANTS = {  # name: (attention dropout, hidden dropout, fast hidden-state masks)
    "torch dropout (attention + hidden)": (0.1, 0.1, False),
    "fast hidden masks, torch attention dropout": (0.1, 0.1, True),
    "torch hidden dropout, attention 0": (0.0, 0.1, False),
    "fast hidden masks, attention 0 (default)": (0.0, 0.1, True),
    "no dropout": (0.0, 0.0, False),
}

def set_dropout(model, start: int, attention: float, hidden: float) -> None:
    for layer in encoder_layers(model)[start:]:
        layer.attention.self.dropout.p = attention
        layer.attention.output.dropout.p = hidden
        layer.output.dropout.p = hidden


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="configs/default.yaml")
    p.add_argument("--lengths", type=int, nargs="+", default=[80, 160], help="padded batch lengths (tokens)")
    p.add_argument("--steps", type=int, default=6, help="timed steps per variant and round (after 2 warm-ups)")
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    cfg = load_config(args.config)
    schema = LabelSchema.from_yaml(cfg.data.schema)
    model, _ = build_model(cfg.model, schema)
    start = first_trained_layer(model, cfg.model)
    top = TopLayers(model, start).train()
    optimizer = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=1e-5)
    print(machine_line())
    print(f"config: {args.config}; layers {start}..{len(encoder_layers(model)) - 1} trained on cached states; "
          f"batch {cfg.train.batch_size}; fp32")
    for length in args.lengths:
        torch.manual_seed(0)
        hidden = torch.randn(cfg.train.batch_size, length, model.config.hidden_size)
        mask = torch.ones(cfg.train.batch_size, length, dtype=torch.long)
        mask[1::2, length * 3 // 4:] = 0

        def step() -> None:
            loss = top(hidden_states=hidden, attention_mask=mask).logits.float().pow(2).mean()
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()

        best: dict[str, float] = {}
        for _ in range(args.rounds):
            for name, (attention, hidden_p, fast) in VARIANTS.items():
                set_dropout(model, start, attention, hidden_p)
                with use_fast_dropout(model) if fast else contextlib.nullcontext():
                    for _ in range(2):
                        step()
                    t = time.perf_counter()
                    for _ in range(args.steps):
                        step()
                best[name] = min(best.get(name, float("inf")), (time.perf_counter() - t) / args.steps)
        base = next(iter(best.values()))
        print(f"\nbatch of {cfg.train.batch_size} x {length} tokens:")
        for name, seconds in best.items():
            print(f"  {name:48s} {seconds * 1000:7.0f} ms  {seconds / base:5.2f}x")


if __name__ == "__main__":
    main()
