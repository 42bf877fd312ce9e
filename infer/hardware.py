"""What the machine can run fast: CPU instruction-set features and the accelerator, read at run time.

The features are those the CPU reports (/proc/cpuinfo), less those the process is told not to use:
`ONEDNN_MAX_CPU_ISA` (oneDNN's cap, which also governs bf16 matmuls) and `ATEN_CPU_CAPABILITY`
(PyTorch's own kernels). Capping both emulates an older CPU on a newer one, e.g. an AVX2-only machine:

    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 python -m train ...

and then `auto` precision and `auto` inference routes choose what that machine would (fp32).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

# /proc/cpuinfo flag -> the name printed in benchmarks and logs
_FLAGS = {
    "avx2": "AVX2",
    "avx512f": "AVX512F",
    "avx512_vnni": "AVX512-VNNI",
    "avx_vnni": "AVX-VNNI",
    "avx512_bf16": "AVX512-BF16",
    "amx_bf16": "AMX-BF16",
    "amx_int8": "AMX-INT8",
}
# The lowest oneDNN ISA level (ONEDNN_MAX_CPU_ISA, in oneDNN's order) at which each feature is used.
_ONEDNN_LEVELS = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI",
                  "AVX512_CORE_BF16", "AVX10_1_512", "AVX512_CORE_FP16", "AVX10_1_512_AMX",
                  "AVX512_CORE_AMX", "AVX10_1_512_AMX_FP16", "AVX512_CORE_AMX_FP16")
_FEATURE_LEVEL = {"AVX2": "AVX2", "AVX-VNNI": "AVX2_VNNI", "AVX512F": "AVX512_CORE",
                  "AVX512-VNNI": "AVX512_CORE_VNNI", "AVX512-BF16": "AVX512_CORE_BF16",
                  "AMX-BF16": "AVX10_1_512_AMX", "AMX-INT8": "AVX10_1_512_AMX"}
# ATEN_CPU_CAPABILITY value -> the features PyTorch's kernels may then use
_ATEN_ALLOWS = {"default": frozenset(), "avx2": frozenset({"AVX2", "AVX-VNNI"})}


def features_from_cpuinfo(text: str) -> frozenset[str]:
    """The AVX2 / AVX512 / VNNI / BF16 / AMX features named on the `flags` line of a /proc/cpuinfo text.

    Example:
        >>> sorted(features_from_cpuinfo("flags\t: fpu avx2 avx512_bf16 sse4_2"))
        ['AVX2', 'AVX512-BF16']
    """
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
            return frozenset(name for flag, name in _FLAGS.items() if flag in flags)
    return frozenset()


def apply_isa_caps(features: frozenset[str], environ=os.environ) -> frozenset[str]:
    """`features` less those that ONEDNN_MAX_CPU_ISA or ATEN_CPU_CAPABILITY in `environ` rule out.

    Example:
        >>> sorted(apply_isa_caps(frozenset({"AVX2", "AVX512F", "AMX-BF16"}), {"ONEDNN_MAX_CPU_ISA": "AVX2"}))
        ['AVX2']
        >>> sorted(apply_isa_caps(frozenset({"AVX2", "AVX512-BF16"}), {"ATEN_CPU_CAPABILITY": "avx2"}))
        ['AVX2']
    """
    onednn = environ.get("ONEDNN_MAX_CPU_ISA", environ.get("DNNL_MAX_CPU_ISA", "")).strip().upper()
    if onednn in _ONEDNN_LEVELS:
        cap = _ONEDNN_LEVELS.index(onednn)
        features = frozenset(f for f in features if _ONEDNN_LEVELS.index(_FEATURE_LEVEL[f]) <= cap)
    aten = environ.get("ATEN_CPU_CAPABILITY", "").strip().lower()
    if aten in _ATEN_ALLOWS:
        features = features & _ATEN_ALLOWS[aten]
    return features


@functools.lru_cache(maxsize=1)
def cpu_features() -> frozenset[str]:
    """The AVX2 / AVX512 / VNNI / BF16 / AMX features this CPU reports and this process may use."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    return apply_isa_caps(features_from_cpuinfo(text))


def cpu_has_native_bf16() -> bool:
    """True where bf16 matmuls run on dedicated instructions (AMX or AVX512-BF16)."""
    return bool({"AMX-BF16", "AVX512-BF16"} & cpu_features())
