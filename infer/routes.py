"""Execution routes: how the model runs (precision, quantization), chosen from the hardware at hand.

Routes:
    fp32   the checkpoint as saved; length-sorted, dynamically padded batches (every route does that).
    bf16   weights and activations in bfloat16: GPUs, and CPUs with AMX or AVX512-BF16.
    fp16   float16 weights: CUDA only.

`auto` picks the fastest route the hardware supports natively; a non-fp32 route is kept only if it
agrees with fp32 on a probe set (`agreement`), otherwise the classifier falls back to fp32.

There is no int8 route: dynamic int8 quantization of the Linear layers changed too many decisions on real
news (`research/int8_probe.py`: torch.ao's deprecated `quantize_dynamic`, the fast kernels, changed at least
one decision on about a third of the real-news dev paragraphs, on AVX2 and on VNNI alike, and an fp32 re-check
of the low-margin ones would have to re-run nearly all of them; torchao's per-token int8 changed 7-10% of
them and ran 1.1x fp32 on AVX2, 1.7x with VNNI, where bf16 is faster). bf16 is the fast route where the CPU
has it.
"""

from __future__ import annotations

import copy
import logging

import torch

from infer.hardware import cpu_has_native_bf16

logger = logging.getLogger(__name__)

ROUTES = ("auto", "fp32", "bf16", "fp16")
_REMOVED = {"int8": "route 'int8' was removed: dynamic int8 quantization changed too many decisions on real news "
                    "(see infer.routes); use 'auto', 'bf16' (CPUs with AVX512-BF16 or AMX, GPUs) or 'fp32'"}

# Short multilingual paragraphs used only to check that a fast route labels like fp32 does.
PROBE_TEXTS = (
    "NATO foreign ministers said the alliance's open door is not up for negotiation with Moscow.",
    "Moscow insists on legally binding guarantees that the alliance will not move further east.",
    "The delegations will meet in Geneva on Monday, followed by a NATO-Russia Council in Brussels.",
    "Washington warned of severe economic sanctions if Russian troops cross into Ukraine.",
    "Russian and Belarusian forces began joint drills near the Ukrainian border on Thursday.",
    "Beijing said it understands and supports Russia's security concerns in Europe.",
    "Рябков заявил, что Россия не отступит от требований о нерасширении НАТО.",
    "Die Bundesregierung setzt weiter auf Dialog und lehnt Vorbedingungen ab.",
    "La Chine et la Russie ont signé une déclaration conjointe sur leur partenariat stratégique.",
    "الولايات المتحدة ترفض وقف توسع حلف شمال الأطلسي وتلوّح بعقوبات اقتصادية.",
    "美国表示不会在乌克兰部署进攻性导弹系统。",
    "Los ejercicios militares cerca de la frontera preocupan a los países bálticos.",
)


def check_route(route: str) -> str:
    """`route` if it is one of ROUTES, else a ValueError that names the choices (and why int8 is gone)."""
    if route in _REMOVED:
        raise ValueError(_REMOVED[route])
    if route not in ROUTES:
        raise ValueError(f"unknown route {route!r}; expected one of {ROUTES}")
    return route


def available_routes(device: torch.device) -> list[str]:
    """Routes this device runs natively, fastest first (fp32 always last)."""
    if device.type == "cuda":
        return (["bf16"] if torch.cuda.is_bf16_supported() else []) + ["fp16", "fp32"]
    return (["bf16"] if cpu_has_native_bf16() else []) + ["fp32"]


def apply_route(model: torch.nn.Module, route: str, device: torch.device) -> torch.nn.Module:
    """Return a copy of `model` (fp32, eval mode) converted for `route` and moved to `device`."""
    if check_route(route) == "auto":
        raise ValueError(f"route 'auto' is chosen by Classifier.from_pretrained; expected one of {ROUTES[1:]}")
    if route == "fp32":
        return model.to(device)
    if route == "fp16" and device.type != "cuda":
        raise ValueError("route 'fp16' needs a CUDA device; on CPU use 'bf16' (AVX512-BF16 or AMX) or 'fp32'")
    dtype = torch.bfloat16 if route == "bf16" else torch.float16
    return copy.deepcopy(model).to(device=device, dtype=dtype)

