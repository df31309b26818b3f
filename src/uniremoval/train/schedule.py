"""Learning-rate schedules: linear warm-up then cosine decay, as a factor of the base lr.

The factor is a pure function of the step, so a resumed run gets exactly the learning rate an
uninterrupted one would (no state to drift); it is wrapped in a ``LambdaLR`` only so that
schedulers checkpoint and restore like any other torch scheduler.
"""
from __future__ import annotations

import math
from functools import partial

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from .config import ScheduleConfig


def lr_factor(step: int, total_steps: int, cfg: ScheduleConfig) -> float:
    """Multiplier of the base learning rate for optimiser step ``step`` (0-based)."""
    if cfg.warmup_steps > 0 and step < cfg.warmup_steps:
        # Linear ramp from warmup_start to 1 over the warm-up steps.
        return cfg.warmup_start + (1.0 - cfg.warmup_start) * step / cfg.warmup_steps
    if cfg.name == "constant":
        return 1.0
    span = max(1, total_steps - cfg.warmup_steps)
    t = min(1.0, (step - cfg.warmup_steps) / span)
    return cfg.min_lr_ratio + (1.0 - cfg.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * t))


def build_scheduler(optimizer: Optimizer, total_steps: int, cfg: ScheduleConfig) -> LambdaLR:
    """A ``LambdaLR`` following :func:`lr_factor`; call ``step()`` once per optimiser step."""
    # functools.partial (not a lambda) keeps state_dict() free of code objects.
    return LambdaLR(optimizer, partial(lr_factor, total_steps=total_steps, cfg=cfg))
