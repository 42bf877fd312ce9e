"""Shared measurements for the benchmark scripts: CPU features, matmul peak, peak RSS."""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

import torch

from infer.hardware import cpu_features


def fp32_matmul_flops(n: int = 1024, seconds: float = 2.0) -> float:
    """Achieved FLOP/s of a plain fp32 n×n matmul on this machine, now (warm-up excluded)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    return 2 * n**3 * count / (time.perf_counter() - start)


def peak_rss_mib() -> float:
    """Peak resident set size of this process (since start, or since the last `reset_peak_rss`)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (Linux: write 5 to /proc/self/clear_refs); False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


ISA_CAPS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return "unknown CPU"


def machine_line() -> str:
    """The CPU, the features this process may use and any ISA caps in force (an emulated older CPU)."""
    caps = [f"{k}={os.environ[k]}" for k in ISA_CAPS if os.environ.get(k)]
    return (f"CPU: {cpu_model()}; features used: {', '.join(sorted(cpu_features())) or 'none detected'}"
            f"{' (capped: ' + ' '.join(caps) + ')' if caps else ''}; torch threads: {torch.get_num_threads()}; "
            f"torch {torch.__version__}")
