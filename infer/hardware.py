"""What the machine can run fast: CPU instruction-set features and the accelerator, read at run time."""

from __future__ import annotations

import functools
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


@functools.lru_cache(maxsize=1)
def cpu_features() -> frozenset[str]:
    """The subset of AVX2 / AVX512 / VNNI / BF16 / AMX features this CPU reports (empty if unknown)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    return features_from_cpuinfo(text)


def cpu_has_native_bf16() -> bool:
    """True where bf16 matmuls run on dedicated instructions (AMX or AVX512-BF16)."""
    return bool({"AMX-BF16", "AVX512-BF16"} & cpu_features())


def cpu_has_int8_dot() -> bool:
    """True where int8 GEMMs have dot-product instructions (VNNI or AMX), so int8 does not saturate."""
    return bool({"AVX512-VNNI", "AVX-VNNI", "AMX-INT8"} & cpu_features())
