"""Stability guard: keep non-finite losses and exploding gradients out of a run's checkpoints.

Adversarial fine-tuning (stage 2) is the least stable training in the method: one bad batch
can send the discriminator's or the generator's weights to NaN, and a checkpoint written after
that would poison every resume. The guard keeps an in-memory snapshot of the last good state
of every trained component (weights, optimiser, schedule, EMA, and frozen stateful modules such
as a prototype bank) and

- :meth:`StabilityGuard.loss_ok` rejects a non-finite loss *before* it is back-propagated;
- :meth:`StabilityGuard.grad_ok` rejects a non-finite gradient norm or a spike (norm above
  ``spike_factor`` x its running average, after ``warmup`` observations) *after* the step;
- :meth:`StabilityGuard.rollback` restores the snapshot, multiplies every trained component's
  learning rate by ``lr_factor`` (base lr of its schedule too, so the schedule continues from
  the lower value, and it is saved with the scheduler state), logs the event to the console,
  TensorBoard (``guard/rollbacks``) and ``RUN/guard.jsonl``, and lets training go on with the
  next batch;
- :meth:`install` wraps the trainer's ``save_checkpoint`` so a checkpoint is written only when
  every weight is finite (otherwise it rolls back first), and refreshes the snapshot from each
  checkpointed (good) state.

The step counter and data position are not rewound: the bad batch is skipped, not replayed
(replaying it with the same weights would fail again).
"""
from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import torch

if TYPE_CHECKING:
    from .trainer import Trainer


@dataclass
class GuardConfig:
    """When the stability guard steps in (all steps count training steps)."""

    enabled: bool = True
    #: Refresh the in-memory good-state snapshot every this many steps (and at each checkpoint).
    snapshot_every: int = 50
    #: A gradient norm above spike_factor x its running mean counts as exploding.
    spike_factor: float = 20.0
    #: Observations of a component's gradient norm before spikes are judged.
    warmup: int = 20
    #: Learning-rate multiplier applied at every rollback.
    lr_factor: float = 0.5
    #: Give up (raise) after this many rollbacks: the run is diverging, not glitching.
    max_rollbacks: int = 20

    def validate(self, where: str) -> None:
        from .config import ConfigError

        if self.snapshot_every < 1 or not 0 < self.lr_factor <= 1 or self.spike_factor <= 1 or self.max_rollbacks < 1:
            raise ConfigError(f"{where}: snapshot_every >= 1, 0 < lr_factor <= 1, spike_factor > 1, max_rollbacks >= 1 required")


class TrainingDiverged(RuntimeError):
    """More rollbacks than ``max_rollbacks``."""


def _all_ranks_true(flag: bool, device: torch.device) -> bool:
    """AND of a flag over data-parallel processes, so every rank rolls back together."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        t = torch.tensor([0 if flag else 1], device=device)
        torch.distributed.all_reduce(t)
        return int(t.item()) == 0
    return flag


class StabilityGuard:
    """See the module docstring. ``extra`` names frozen components whose state must roll back
    together with the trained ones (e.g. a prototype bank)."""

    def __init__(self, tr: "Trainer", cfg: GuardConfig, extra: Sequence[str] = ()) -> None:
        self.tr = tr
        self.cfg = cfg
        self.extra = list(extra)
        self.rollbacks = 0
        self.events: list[dict[str, Any]] = []
        self._norm_mean: dict[str, float] = {}
        self._norm_n: dict[str, int] = {}
        self._snapshot: dict[str, Any] | None = None
        self._snap_step = -1

    # -------------------------------------------------------------- state

    def _names(self) -> list[str]:
        return [n for n, c in self.tr.components.items() if c.optimizer is not None] + self.extra

    def weights_finite(self) -> bool:
        ok = True
        for n in self._names():
            for t in list(self.tr.components[n].module.parameters()) + list(self.tr.components[n].module.buffers()):
                if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                    ok = False
                    break
        return _all_ranks_true(ok, self.tr.device)

    def snapshot(self) -> None:
        """Remember the current state as good (only if every weight is finite)."""
        if not self.weights_finite():
            return
        snap: dict[str, Any] = {}
        for n in self._names():
            c = self.tr.components[n]
            snap[n] = copy.deepcopy(
                {
                    "module": c.module.state_dict(),
                    "optimizer": c.optimizer.state_dict() if c.optimizer else None,
                    "scheduler": c.scheduler.state_dict() if c.scheduler else None,
                    "scaler": c.scaler.state_dict() if c.scaler else None,
                    "ema": c.ema.state_dict() if c.ema else None,
                }
            )
        self._snapshot, self._snap_step = snap, self.tr.step

    def maybe_snapshot(self) -> None:
        """Call once per step after the updates: snapshot every ``snapshot_every`` steps."""
        if self._snapshot is None or self.tr.step - self._snap_step >= self.cfg.snapshot_every:
            self.snapshot()

    # -------------------------------------------------------------- checks

    def loss_ok(self, name: str, loss: torch.Tensor) -> bool:
        """True when ``loss`` is finite on every process; else roll back and return False."""
        ok = _all_ranks_true(bool(torch.isfinite(loss.detach()).all()), self.tr.device)
        if not ok:
            self.rollback(f"non-finite {name} loss ({float(loss.detach()):.4g})")
        return ok

    def grad_ok(self, name: str, norm: float | None) -> bool:
        """Judge the pre-clip gradient norm ``Trainer.optimize`` returned (None: not clipped,
        then only the weights are checked). Rolls back and returns False when it is bad."""
        reason = None
        if norm is not None:
            if not math.isfinite(norm) and self.tr.components[name].scaler is not None:
                # fp16 loss scaling: an inf/NaN gradient is the GradScaler's normal signal; it
                # skipped this step and lowered the scale itself, so nothing to roll back.
                return True
            if not math.isfinite(norm):
                reason = f"non-finite {name} gradient norm"
            else:
                n = self._norm_n.get(name, 0)
                mean = self._norm_mean.get(name, norm)
                if n >= self.cfg.warmup and norm > self.cfg.spike_factor * mean:
                    reason = f"{name} gradient norm {norm:.4g} > {self.cfg.spike_factor:g} x running mean {mean:.4g}"
                else:
                    # Running mean of accepted norms only: a spike must not raise the bar.
                    self._norm_mean[name] = mean + (norm - mean) / min(n + 1, 100)
                    self._norm_n[name] = n + 1
        if reason is None and norm is None and not self.weights_finite():
            reason = f"non-finite weights after the {name} step"
        if reason is not None:
            self.rollback(reason)
            return False
        return True

    # -------------------------------------------------------------- recovery

    def rollback(self, reason: str) -> None:
        """Restore the last good snapshot, lower every learning rate, log, continue."""
        tr = self.tr
        self.rollbacks += 1
        if self._snapshot is None:
            raise TrainingDiverged(f"step {tr.step + 1}: {reason}, and no good state to roll back to")
        for n, s in self._snapshot.items():
            c = tr.components[n]
            c.module.load_state_dict(s["module"])
            if c.optimizer is not None and s["optimizer"] is not None:
                c.optimizer.load_state_dict(copy.deepcopy(s["optimizer"]))
            if c.scheduler is not None and s["scheduler"] is not None:
                c.scheduler.load_state_dict(copy.deepcopy(s["scheduler"]))
            if c.scaler is not None and s["scaler"] is not None:
                c.scaler.load_state_dict(s["scaler"])
            if c.ema is not None and s["ema"] is not None:
                c.ema.load_state_dict(s["ema"])
        lrs: dict[str, float] = {}
        for n, c in tr.components.items():
            if c.optimizer is None:
                continue
            for g in c.optimizer.param_groups:
                g["lr"] *= self.cfg.lr_factor
            if c.scheduler is not None:
                # LambdaLR recomputes lr = base_lr * factor(step): lower the base too, and it
                # is part of the scheduler's state_dict, so a resume keeps the lower rate.
                c.scheduler.base_lrs = [b * self.cfg.lr_factor for b in c.scheduler.base_lrs]
            lrs[n] = c.optimizer.param_groups[0]["lr"]
        # Drop spike statistics: after a rollback the norms restart from the good state.
        self._norm_mean.clear()
        self._norm_n.clear()
        # The good snapshot itself is kept but now with the lowered lr (so a second rollback
        # does not bring the old rate back).
        self.snapshot_lr_only()
        event = {"step": tr.step + 1, "reason": reason, "restored_step": self._snap_step, "lr": lrs, "rollbacks": self.rollbacks, "time": time.time()}
        self.events.append(event)
        tr.log(f"[yellow]guard: step {tr.step + 1}: {reason}; rolled back to the state of step {self._snap_step}, lr x{self.cfg.lr_factor:g} -> {', '.join(f'{k} {v:.3g}' for k, v in lrs.items())}[/]")
        tr.log_scalars({"rollbacks": float(self.rollbacks)}, "guard")
        if tr.env.is_main:
            tr.run_dir.mkdir(parents=True, exist_ok=True)
            with open(tr.run_dir / "guard.jsonl", "a") as f:
                f.write(json.dumps(event) + "\n")
        if self.rollbacks > self.cfg.max_rollbacks:
            raise TrainingDiverged(f"{self.rollbacks} rollbacks (max {self.cfg.max_rollbacks}); last: {reason}")

    def snapshot_lr_only(self) -> None:
        """Write the current (lowered) learning rates into the stored snapshot."""
        if self._snapshot is None:
            return
        for n, s in self._snapshot.items():
            c = self.tr.components[n]
            if s["optimizer"] is not None and c.optimizer is not None:
                for sg, g in zip(s["optimizer"]["param_groups"], c.optimizer.param_groups):
                    sg["lr"] = g["lr"]
            if s["scheduler"] is not None and c.scheduler is not None:
                s["scheduler"]["base_lrs"] = list(c.scheduler.base_lrs)
                s["scheduler"]["_last_lr"] = [g["lr"] for g in c.optimizer.param_groups] if c.optimizer else s["scheduler"].get("_last_lr")

    def install(self) -> "StabilityGuard":
        """Guard the trainer's checkpoints: only finite states are written; each written state
        becomes the new snapshot."""
        tr = self.tr
        original = tr.save_checkpoint

        def guarded_save() -> Any:
            if not self.weights_finite():
                self.rollback("non-finite weights at checkpoint time")
            path = original()
            self.snapshot()
            return path

        tr.save_checkpoint = guarded_save  # type: ignore[method-assign]
        return self
