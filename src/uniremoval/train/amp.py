"""Which autocast dtype a run uses (``run.amp``) on which device."""
from __future__ import annotations

import torch

from ..sysinfo import cpu_has_fast_bf16
from .config import ConfigError




def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``run.amp`` on ``device`` (None: fp32).

    ``auto`` is fp16 with loss scaling on CUDA and bf16 on a CPU that computes bf16 natively
    (AVX-512 BF16 / AMX), where bf16 autocast with channels-last trains nafnet-small ~1.2x
    faster than fp32 (docs/training.md, AMP); on other CPUs it is fp32, as emulated bf16 is slower.
    """
    cuda = device.type == "cuda"
    if amp == "off":
        return None
    if amp == "auto" and not cuda:
        return torch.bfloat16 if device.type == "cpu" and cpu_has_fast_bf16() else None
    if amp in ("auto", "fp16"):
        if not cuda:
            raise ConfigError("run.amp=fp16 needs a CUDA device; use bf16 or off on CPU")
        return torch.float16
    return torch.bfloat16
