"""Dropout for CPU training: the same Bernoulli masks as `nn.Dropout`, drawn ~3x cheaper.

On CPU, torch draws a dropout mask with a serial kernel, one generator call per element
(~10-15 ns per element on the 2-core machines of this project). For the top-layer recipe that is a
large share of a step: an attention-probability mask alone is batch x heads x length^2 elements
per layer. `fast_dropout` draws 64-bit random words instead and reads each as four 16-bit
uniforms, so one generator call serves four elements, then keeps an element when its uniform is at
least `p` (p rounded to a multiple of 1/65536: 0.1 -> 0.100006). The masks are i.i.d. Bernoulli
from torch's seeded CPU generator, so runs stay reproducible; they are not bit-identical to
`nn.Dropout`'s (another stream of the same distribution).

`use_fast_dropout(model)` switches a model's CPU training to it: its `nn.Dropout` modules and the
attention-probability dropout, computed by `attention_with_fast_dropout` (the softmax attention
written out, as torch's own math kernel computes it when dropout is on). Off the CPU (CUDA fuses
dropout into its kernels) and in eval mode nothing changes, and nothing is saved with the
checkpoint: the attention implementation is not part of config.json.

Example:
    >>> with use_fast_dropout(model):  # doctest: +SKIP
    ...     trainer.train()
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

ATTENTION_NAME = "sdpa_fast_dropout"
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


def attention_with_fast_dropout(module, query, key, value, attention_mask, dropout: float = 0.0,
                                scaling: float | None = None, **kwargs):
    """A `transformers` attention function: SDPA without dropout, else softmax attention with `fast_dropout`.

    `attention_mask` is what `sdpa_mask` builds (boolean, True = attend; or None), query/key/value are
    (batch, heads, length, head_dim); returns (batch, length, heads, head_dim) and no weights, like SDPA.
    """
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if not dropout or query.device.type != "cpu":
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    scores = torch.matmul(query, key.transpose(-1, -2)) * scale
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
        else:
            scores = scores + attention_mask
    probs = fast_dropout(torch.softmax(scores, dim=-1), dropout)
    return torch.matmul(probs.to(value.dtype), value).transpose(1, 2).contiguous(), None


def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(ATTENTION_NAME, attention_with_fast_dropout)
    AttentionMaskInterface.register(ATTENTION_NAME, sdpa_mask)


@contextlib.contextmanager
def use_fast_dropout(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block, `model` (an SDPA or eager transformers model) trains with `fast_dropout`.

    Dropout modules become `FastDropout` and attention runs `attention_with_fast_dropout`; both are
    restored on exit (also on an exception), so the saved and evaluated model is the plain one.
    """
    config = model.config
    previous = config._attn_implementation
    swapped = [m for m in model.modules() if type(m) is nn.Dropout]
    if previous in ("sdpa", "eager"):
        _register()
        config._attn_implementation = ATTENTION_NAME
    for m in swapped:
        m.__class__ = FastDropout
    try:
        yield model
    finally:
        for m in swapped:
            m.__class__ = nn.Dropout
        config._attn_implementation = previous
