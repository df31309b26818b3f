"""Exponential moving average of a network's weights (the weights that get validated and exported)."""
from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


class EMA:
    """Keeps ``shadow = decay * shadow + (1 - decay) * weights`` after every optimiser step.

    The effective decay ramps up as ``min(decay, (1 + n) / (10 + n))`` so early averages are not
    dominated by the random initialisation. Buffers (non-trainable state) are copied as is.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.num_updates = 0
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the current weights of ``model`` (same architecture, unwrapped) into the average."""
        self.num_updates += 1
        d = min(self.decay, (1.0 + self.num_updates) / (10.0 + self.num_updates))
        src = model.state_dict()
        shadows, values = [], []
        for name, shadow in self.module.state_dict().items():
            value = src[name].detach()
            if shadow.is_floating_point():
                shadows.append(shadow)
                values.append(value.to(shadow.dtype))
            else:
                shadow.copy_(value)
        if shadows:
            # One fused multi-tensor op instead of a Python loop of small kernels (on a GPU the
            # loop's launch overhead was a visible part of a small network's step).
            torch._foreach_lerp_(shadows, values, 1.0 - d)

    def state_dict(self) -> dict[str, Any]:
        return {"module": self.module.state_dict(), "num_updates": self.num_updates, "decay": self.decay}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["module"])
        self.num_updates = int(state["num_updates"])
