"""Dropout for CPU training: the same Bernoulli masks as `nn.Dropout`, drawn ~3x cheaper.

On CPU, torch draws a dropout mask with a serial kernel, one generator call per element
(~10-15 ns per element on the 2-core machines of this project). `fast_dropout` draws 64-bit random
words instead and reads each as four 16-bit uniforms, so one generator call serves four elements,
then keeps an element when its uniform is at least `p` (p rounded to a multiple of 1/65536:
0.1 -> 0.100006). The masks are i.i.d. Bernoulli from torch's seeded CPU generator, so runs stay
reproducible; they are not bit-identical to `nn.Dropout`'s (another stream of the same distribution).

`use_fast_dropout(model)` switches a model's `nn.Dropout` modules (hidden states, classifier) to it
for training; the attention-probability dropout stays torch's, inside SDPA (the default recipe sets it
to 0: `model.attention_dropout`, so CPU training runs the fused attention kernel). Off the CPU (CUDA
fuses dropout into its kernels) and in eval mode nothing changes, and nothing is saved with the
checkpoint (the modules keep `nn.Dropout`'s state dict, which is empty).

Measured (`benchmarks/step_speed.py`, README "Results"; fp32 under AVX2 caps, two runs): with the
default's attention dropout 0, a training step on cached states took 684 / 753 ms with these masks vs
736 / 742 with torch's (16 x 80 tokens) and 1475 / 1496 vs 1492 / 1512 (16 x 160): a few percent at
most, within that machine's noise. The larger saving is the attention dropout off.

Example:
    >>> with use_fast_dropout(model):  # doctest: +SKIP
    ...     trainer.train()
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

_LEVELS = 1 << 16


def fast_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """`F.dropout(x, p, training=True)` with masks from 16-bit slices of random 64-bit words (CPU)."""
    if p <= 0:
        return x
    if not 0 <= p < 1:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    if x.device.type != "cpu":
        return nn.functional.dropout(x, p, training=True)
    n = x.numel()
    drop_levels = round(p * _LEVELS)
    words = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(1 << 63), None)  # all 64 bits random
    keep = words.view(torch.int16)[:n].view(x.shape) >= drop_levels - _LEVELS // 2  # int16 in [-32768, 32767]
    return torch.where(keep, x * (_LEVELS / (_LEVELS - drop_levels)), 0.0)


class FastDropout(nn.Dropout):
    """`nn.Dropout` drawing its mask with `fast_dropout` (same module interface and state dict)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fast_dropout(x, self.p) if self.training and self.p > 0 else x


@contextlib.contextmanager
def use_fast_dropout(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block, the `nn.Dropout` modules of `model` draw their masks with `fast_dropout`.

    They are restored on exit (also on an exception), so the saved and evaluated model is the plain one.
    The attention-probability dropout of SDPA attention is torch's own (inside its kernel).
    """
    swapped = [m for m in model.modules() if type(m) is nn.Dropout]
    for m in swapped:
        m.__class__ = FastDropout
    try:
        yield model
    finally:
        for m in swapped:
            m.__class__ = nn.Dropout
