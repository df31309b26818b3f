"""What machine a measurement ran on: recorded in every benchmark and report."""
from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    """The CPU's marketing name (from /proc/cpuinfo on Linux), else platform's guess."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_has_fast_bf16() -> bool:
    """True when this CPU computes bf16 natively (AVX-512 BF16 / AMX), where bf16 pays off:
    the one test behind ``precision=auto`` (inference) and ``run.amp=auto`` (training)."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:
        return False


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo); empty where unknown."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


#: Environment variables that make oneDNN, ATen and MKL use a narrower ISA than the CPU has.
ISA_CAPS = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS")


def cpu_isa() -> str:
    """The widest vector ISA this CPU offers to PyTorch: ``AMX bf16``, ``AVX-512 bf16``,
    ``AVX-512``, ``AVX2`` or torch's own name for it. Speed figures are only comparable
    within one class, so every benchmark records it. A cap set with :data:`ISA_CAPS`
    (used to measure a smaller CPU class on a bigger one) is reported beside it."""
    import torch

    flags = cpu_flags()
    capability = str(torch.backends.cpu.get_cpu_capability())
    if "amx_bf16" in flags:
        isa = "AMX bf16"
    elif "avx512_bf16" in flags:
        isa = "AVX-512 bf16"
    elif "avx512f" in flags or capability.startswith("AVX512"):
        isa = "AVX-512"
    elif "avx2" in flags or capability == "AVX2":
        isa = "AVX2"
    else:
        isa = capability
    caps = [f"{k}={os.environ[k]}" for k in ISA_CAPS if os.environ.get(k)]
    return f"{isa} (capped: {', '.join(caps)}; torch kernels {capability})" if caps else isa


def machine() -> dict[str, Any]:
    """CPU, usable cores, load, library versions and the GPU when there is one."""
    import numpy as np
    import torch

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "isa": cpu_isa(),
        "cores": usable,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info
