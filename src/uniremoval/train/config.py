"""Typed experiment configs: YAML in, validated dataclasses out, ``--set a.b=value`` overrides.

Every stage defines its experiment as a dataclass tree built from the shared pieces below
(:class:`RunConfig`, :class:`OptimConfig`, ...). :func:`load_config` (from :mod:`.configio`)
reads a YAML file, applies overrides to the raw mapping (so a typo in an override is caught
like a typo in the file), then converts it with :func:`from_dict`, which rejects unknown keys
and wrong types with the dotted path of the offending key. :func:`to_dict` /
:func:`dump_yaml` give the resolved config back, which every run writes next to its checkpoints.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

# The YAML <-> dataclass machinery lives in .configio; its names are this module's API too.
from .configio import ConfigError, apply_override, apply_renames, dump_yaml, from_dict, load_config, to_dict

if TYPE_CHECKING:
    import torch

__all__ = [
    "ConfigError", "ModelConfig", "OptimConfig", "ScheduleConfig", "RunConfig",
    "apply_override", "apply_renames", "dump_yaml", "from_dict", "load_config", "to_dict",
]


# --------------------------------------------------------------------------------------
# Shared building blocks
# --------------------------------------------------------------------------------------


@dataclass
class ModelConfig:
    """A network from the registry in :mod:`uniremoval.nets`: name + keyword arguments."""

    arch: str = "nafnet-small"
    args: dict[str, Any] = field(default_factory=dict)
    #: Model file (JSON/safetensors, checksum verified) whose weights start a fresh run:
    #: fine-tuning or continued training. Its architecture and arguments must equal ``arch``
    #: and ``args``. Ignored when the run resumes from its own checkpoint (that wins).
    init: str | None = None
    #: Let ``init`` be a shallower network of a growable architecture (its descriptor's
    #: ``grow_block``; NAFNet: same width, fewer blocks per level): the blocks it lacks start
    #: as the identity (NAFNet: zero residual scales), so the grown network computes the
    #: same function as ``init`` at step 0 (checked on load, :func:`uniremoval.nets.grow`)
    #: and training adds capacity to a trained model instead of starting from scratch.
    grow: bool = False
    #: Start a network of another architecture from ``init`` wherever weight names and shapes
    #: agree (:func:`uniremoval.nets.warm_start`, e.g. ``uniremoval-net`` from release 6's
    #: ``nafnet-small-deep``: its blocks transfer, intro/ending are converted); the rest starts
    #: as built. Unlike ``grow`` this is a warm start, not the same function.
    warm_start: bool = False

    def build(self) -> "torch.nn.Module":
        """Build the network, with the ``init`` weights when set (train mode, trainable)."""
        from .. import nets
        from ..modelfile import load_model

        net = nets.build(self.arch, **self.args)
        if self.init:
            loaded = load_model(os.path.expanduser(self.init))
            if self.grow and self.warm_start:
                raise ConfigError("model.grow and model.warm_start: choose one")
            if self.warm_start:
                from ..nets.ctxnet import CtxUNet

                if not isinstance(net, CtxUNet):
                    raise ConfigError(f"model.warm_start: {self.arch} cannot be warm-started (uniremoval-net can)")
                fresh = nets.warm_start(loaded.net, net)
                if len(fresh) == len(net.state_dict()):
                    raise ConfigError(f"model.init {self.init}: no weight of it fits {self.arch} {self.args}")
            elif self.grow:
                try:
                    nets.grow(loaded.net, net)
                except ValueError as e:
                    raise ConfigError(f"model.init {self.init}: {e}") from None
            elif loaded.config.arch != self.arch or dict(loaded.config.arch_args) != dict(self.args):
                raise ConfigError(
                    f"model.init {self.init}: it is {loaded.config.arch} {loaded.config.arch_args}, "
                    f"the run builds {self.arch} {self.args} (model.grow=true starts a deeper "
                    "NAFNet from a shallower one)"
                )
            else:
                net.load_state_dict(loaded.net.state_dict(), strict=True)
        return net


@dataclass
class OptimConfig:
    """Optimiser and the per-step update rules that go with it."""

    name: Literal["adam", "adamw"] = "adam"
    lr: float = 2e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 0.0
    #: Clip the global gradient norm to this value; 0 disables clipping.
    grad_clip: float = 0.0

    def validate(self, where: str) -> None:
        if len(self.betas) != 2 or self.lr <= 0 or self.grad_clip < 0:
            raise ConfigError(f"{where}: need two betas, lr > 0 and grad_clip >= 0")


@dataclass
class ScheduleConfig:
    """Linear warm-up from ``warmup_start`` x lr, then cosine decay to ``min_lr_ratio`` x lr."""

    name: Literal["cosine", "constant"] = "cosine"
    warmup_steps: int = 0
    warmup_start: float = 0.01
    min_lr_ratio: float = 0.01


@dataclass
class RunConfig:
    """How long to train and how often to checkpoint, validate and log (all in steps)."""

    name: str = "run"
    #: Parent folder of the run folder; ``~`` is expanded. ``runs/`` is git-ignored.
    out_dir: str = "runs"
    steps: int = 1000
    seed: int = 0
    ckpt_every: int = 500
    val_every: int = 500
    log_every: int = 50
    #: Write sample images to TensorBoard at every validation (0 = none).
    val_samples: int = 4
    #: Resume from the run folder's last checkpoint when there is one.
    resume: bool = True
    #: Exponential moving average of weights; 0 disables it.
    ema_decay: float = 0.999
    #: Mixed precision: auto = fp16 with loss scaling on CUDA, bf16 on a CPU with native bf16,
    #: else off (fp32); see ``trainer.resolve_amp``.
    amp: Literal["auto", "off", "fp16", "bf16"] = "auto"
    channels_last: bool = False
    #: torch.use_deterministic_algorithms (bit-exact resume on CPU; slower on GPU).
    deterministic: bool = False
    #: CPU threads per process (None: torch's default).
    threads: int | None = None
    device: str = "auto"
    #: Metric that decides the best checkpoint, and whether larger is better.
    best_metric: str = "psnr"
    best_mode: Literal["max", "min"] = "max"
    #: Export the EMA (else raw) weights as a model file when training ends.
    export: bool = True
    export_half: bool = False
    #: Show a progress bar (rank 0 only).
    progress: bool = True

    def validate(self, where: str) -> None:
        for key in ("steps", "ckpt_every", "val_every", "log_every"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{where}.{key}: must be at least 1")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"{where}.ema_decay: must be in [0, 1)")
        if not self.name or "/" in self.name or self.name in (".", ".."):
            raise ConfigError(f"{where}.name: {self.name!r} is not a valid folder name")
