"""The training loop every stage shares: a stage supplies networks, a step function and a
validation function; the :class:`Trainer` does the rest.

What the trainer owns (so no stage re-implements it):
- seeding, threads, determinism, device, data-parallel wrapping (torchrun, see ``distributed``);
- optimisers (Adam/AdamW), warm-up + cosine schedules, gradient clipping, AMP + loss scaling,
  EMA of weights, one :meth:`Trainer.optimize` call per loss;
- the endless deterministic data loader and its position (``data``);
- checkpoints every ``ckpt_every`` steps (atomic; weights, optimisers, schedulers, scalers,
  EMA, RNG states, step, epoch, data position, best metric) and automatic resume;
- validation every ``val_every`` steps on rank 0 with best-checkpoint tracking;
- TensorBoard scalars/images and a rich progress bar with ETA on rank 0;
- export of the final (EMA) weights as a model file (:mod:`uniremoval.modelfile`).

A stage's step function looks like::

    def step(tr: Trainer, batch: dict) -> dict[str, torch.Tensor]:
        with tr.autocast():
            out = tr.modules["net"](batch["input"])
            loss = F.l1_loss(out.float(), batch["target"])
        tr.optimize("net", loss)
        return {"loss": loss}
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from ..hostmem import tune_malloc
from . import checkpoint as ckpt
from . import distributed as dist_
from .amp import resolve_amp
from .config import ConfigError, OptimConfig, RunConfig, ScheduleConfig, to_dict
from .data import ResumableSampler, make_loader
from .ema import EMA
from .provenance import git_commit, input_models
from .runstate import CKPT_FORMAT, CheckpointMixin, Component, RunLogMixin
from .schedule import build_scheduler

__all__ = ["Trainer", "ValResult", "Component", "StepFn", "ValFn", "CKPT_FORMAT", "resolve_amp", "input_models", "git_commit", "seed_everything"]


@dataclass
class ValResult:
    """What a validation function returns: scalar metrics and optional CHW images in [0, 1]."""

    metrics: dict[str, float]
    images: dict[str, torch.Tensor] = field(default_factory=dict)


StepFn = Callable[["Trainer", dict[str, Any]], Mapping[str, Any]]
ValFn = Callable[["Trainer"], ValResult]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % (1 << 32))
    torch.manual_seed(seed)


class Trainer(CheckpointMixin, RunLogMixin):
    """Shared, resumable, data-parallel training machinery (see the module docstring).

    Args:
        run: the ``run`` section of the experiment config.
        config: the whole resolved experiment config (a dataclass); saved with the run and
            into checkpoints and exported models.
        global_batch: samples per optimiser step over all processes.
        images_per_sample: images in one sample (stage 1's samples are tuples of one image per
            kind), so the logged ``images_per_s`` counts images.
        env: process placement; default: from torchrun's environment variables.
    """

    def __init__(self, run: RunConfig, config: Any, global_batch: int, env: dist_.DistEnv | None = None, images_per_sample: int = 1) -> None:
        self.run = run
        self.config = config
        self.global_batch = global_batch
        self.images_per_sample = images_per_sample
        if run.threads:
            torch.set_num_threads(run.threads)
        if run.deterministic:
            # cuBLAS needs this for deterministic matmuls; harmless on CPU.
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
        self.env = env or dist_.init(run.device)
        self.device = self.env.device
        if self.device.type == "cpu":
            # Activations and their gradients are large, short-lived blocks: keep their pages
            # between steps instead of faulting them in anew (see uniremoval.hostmem).
            tune_malloc()
        if global_batch % self.env.world_size:
            raise ConfigError(f"batch size {global_batch} is not divisible by {self.env.world_size} processes")
        self.amp_dtype = resolve_amp(run.amp, self.device)
        seed_everything(run.seed)
        self.run_dir = Path(run.out_dir).expanduser() / run.name
        self.ckpt_dir = self.run_dir / "ckpt"
        self.components: dict[str, Component] = {}
        self.step = 0
        self.epoch = 0
        self.batch_pos = 0
        self.best_value: float | None = None
        self.best_step: int | None = None
        self.last_metrics: dict[str, float] = {}
        self.resumed_from: int | None = None
        self._writer: Any = None
        self._console: Any = None

    # ------------------------------------------------------------------ setup

    @property
    def modules(self) -> dict[str, nn.Module]:
        """The networks as forward passes should call them (DDP-wrapped when data-parallel)."""
        return {k: c.wrapped for k, c in self.components.items()}

    def add(
        self,
        name: str,
        module: nn.Module,
        optim: OptimConfig | None = None,
        schedule: ScheduleConfig | None = None,
        ema: bool = False,
        total_steps: int | None = None,
    ) -> nn.Module:
        """Register a network; with ``optim`` it is trained, else it is checkpointed but frozen.

        Returns the module forward passes should use (DDP-wrapped in a multi-process run).
        """
        if name in self.components:
            raise ValueError(f"component {name!r} added twice")
        module = module.to(self.device)
        if self.run.channels_last:
            module = module.to(memory_format=torch.channels_last)
        optimizer = scheduler = scaler = None
        wrapped: nn.Module = module
        if optim is not None:
            params = [p for p in module.parameters() if p.requires_grad]
            cls = torch.optim.AdamW if optim.name == "adamw" else torch.optim.Adam
            b1, b2 = optim.betas
            optimizer = cls(params, lr=optim.lr, betas=(b1, b2), weight_decay=optim.weight_decay)
            if schedule is not None:
                scheduler = build_scheduler(optimizer, total_steps or self.run.steps, schedule)
            if self.amp_dtype == torch.float16:
                scaler = torch.amp.GradScaler("cuda")
            if self.env.enabled:
                from torch.nn.parallel import DistributedDataParallel as DDP

                wrapped = DDP(module, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.components[name] = Component(
            module=module,
            wrapped=wrapped,
            optimizer=optimizer,
            scheduler=scheduler,
            scaler=scaler,
            ema=EMA(module, self.run.ema_decay) if ema and self.run.ema_decay > 0 else None,
            grad_clip=optim.grad_clip if optim is not None else 0.0,
        )
        return wrapped

    def eval_module(self, name: str) -> nn.Module:
        """The weights to validate and export: the EMA copy when there is one, else the raw net."""
        c = self.components[name]
        return c.ema.module if c.ema is not None else c.module

    # ------------------------------------------------------------------ per step

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """Mixed-precision context for forward passes (a no-op when AMP is off)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def optimize(self, name: str, loss: torch.Tensor) -> float | None:
        """Backward ``loss`` into component ``name`` and take one optimiser step.

        Handles loss scaling, gradient clipping (returns the pre-clip gradient norm), the
        schedule and the EMA. Gradients of other components are left alone.
        """
        c = self.components[name]
        if c.optimizer is None:
            raise ValueError(f"component {name!r} has no optimiser")
        c.optimizer.zero_grad(set_to_none=True)
        if c.scaler is not None:
            c.scaler.scale(loss).backward()
        else:
            loss.backward()
        norm: float | None = None
        if c.grad_clip > 0:
            if c.scaler is not None:
                c.scaler.unscale_(c.optimizer)
            params = [p for g in c.optimizer.param_groups for p in g["params"]]
            norm = float(torch.nn.utils.clip_grad_norm_(params, c.grad_clip))
        if c.scaler is not None:
            c.scaler.step(c.optimizer)
            c.scaler.update()
        else:
            c.optimizer.step()
        if c.scheduler is not None:
            c.scheduler.step()
        if c.ema is not None:
            c.ema.update(c.module)
        return norm

    def to_device(self, batch: Any) -> Any:
        """Move tensors of a (nested) batch to the training device."""
        if isinstance(batch, torch.Tensor):
            t = batch.to(self.device, non_blocking=True)
            if self.run.channels_last and t.dim() == 4:
                t = t.contiguous(memory_format=torch.channels_last)
            return t
        if isinstance(batch, dict):
            return {k: self.to_device(v) for k, v in batch.items()}
        if isinstance(batch, (list, tuple)):
            return type(batch)(self.to_device(v) for v in batch)
        return batch

    # ------------------------------------------------------------------ validation

    def validate(self, val_fn: ValFn) -> dict[str, float]:
        """Run ``val_fn`` on rank 0 without disturbing the training RNG; track the best."""
        metrics: dict[str, float] = {}
        if self.env.is_main:
            rng = ckpt.rng_state()
            modes = {k: c.module.training for k, c in self.components.items()}
            for c in self.components.values():
                c.module.eval()
            try:
                with torch.no_grad():
                    res = val_fn(self)
            finally:
                for k, c in self.components.items():
                    c.module.train(modes[k])
                ckpt.set_rng_state(rng)
            metrics = dict(res.metrics)
            self.last_metrics = metrics
            self.log_scalars(metrics, "val")
            if self._writer is not None and self.run.val_samples:
                for k, img in res.images.items():
                    self._writer.add_image(f"samples/{k}", img.clamp(0, 1).float().cpu(), self.step)
            key = self.run.best_metric
            if key in metrics and math.isfinite(metrics[key]):
                v = metrics[key]
                better = self.best_value is None or (v > self.best_value if self.run.best_mode == "max" else v < self.best_value)
                if better:
                    self.save_best(key, v)
            shown = "  ".join(f"{k} {v:.4g}" for k, v in metrics.items())
            self.log(f"step {self.step}: val {shown}" + (f"  (best {key} {self.best_value:.4g} @ {self.best_step})" if self.best_value is not None else ""))
        dist_.barrier(self.env)
        return metrics

    # ------------------------------------------------------------------ the loop

    def fit(self, dataset: Dataset, step_fn: StepFn, val_fn: ValFn | None = None, workers: int = 0, stop_after: int | None = None) -> None:
        """Train until ``run.steps`` (resuming first when a checkpoint exists).

        ``stop_after`` ends the loop early after that many total steps as if the process had
        been stopped right after its checkpoint at that step (used by tests and benchmarks).
        """
        run = self.run
        if self.try_resume():
            pass
        self._write_config()
        self._init_logging()
        if self.resumed_from is not None:
            self.log(f"resumed {self.run_dir} at step {self.step} (epoch {self.epoch}, batch {self.batch_pos})")
        loader = make_loader(
            dataset,
            self.global_batch,
            run.seed,
            self.env.rank,
            self.env.world_size,
            self.epoch,
            self.batch_pos,
            workers=workers,
            pin_memory=self.device.type == "cuda",
        )
        per_epoch = ResumableSampler(len(dataset), self.global_batch, run.seed).batches_per_epoch  # type: ignore[arg-type]
        it: Iterator[Any] = iter(loader)
        sums: dict[str, float] = {}
        count = 0
        t_log = time.perf_counter()
        progress = self._progress()
        try:
            while self.step < run.steps:
                batch = self.to_device(next(it))
                for c in self.components.values():
                    if c.optimizer is not None:
                        c.module.train()
                out = step_fn(self, batch)
                self.step += 1
                self.batch_pos += 1
                if self.batch_pos >= per_epoch:
                    self.epoch, self.batch_pos = self.epoch + 1, 0
                for k, v in out.items():
                    sums[k] = sums.get(k, 0.0) + float(v.detach() if isinstance(v, torch.Tensor) else v)
                count += 1
                if progress is not None:
                    progress[0].update(progress[1], completed=self.step, info=" ".join(f"{k} {sums[k] / count:.4f}" for k in list(sums)[:2]))
                if self.step % run.log_every == 0 or self.step == run.steps:
                    now = time.perf_counter()
                    means = {k: v / count for k, v in sums.items()}
                    for name, c in self.components.items():
                        if c.optimizer is not None:
                            means[f"lr_{name}"] = c.optimizer.param_groups[0]["lr"]
                    means["images_per_s"] = count * self.global_batch * self.images_per_sample / max(now - t_log, 1e-9)
                    self.log_scalars(means, "train")
                    if progress is None:
                        self.log(f"step {self.step}/{run.steps}  " + "  ".join(f"{k} {v:.4g}" for k, v in means.items()))
                    sums, count, t_log = {}, 0, now
                if val_fn is not None and (self.step % run.val_every == 0 or self.step == run.steps):
                    self.validate(val_fn)
                if self.step % run.ckpt_every == 0 or self.step == run.steps:
                    self.save_checkpoint()
                if stop_after is not None and self.step >= stop_after:
                    break
        finally:
            if progress is not None:
                progress[0].stop()
            if self._writer is not None:
                self._writer.flush()

    # ------------------------------------------------------------------ export / close

    def provenance(self, name: str, data: Any = None) -> dict[str, Any]:
        """What an export of component ``name`` records: config, input models, steps, data,
        code and library versions, the last and the best validation."""
        return {
            "stage_config": to_dict(self.config),
            "inputs": input_models(self.config),
            "steps": self.step,
            "weights": "ema" if self.components[name].ema is not None else "raw",
            "data": data,
            "git_commit": git_commit(),
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "torch": torch.__version__,
            "val": self.last_metrics,
            "best": {"metric": self.run.best_metric, "value": self.best_value, "step": self.best_step},
        }

    def export(self, name: str, arch: str, arch_args: Mapping[str, Any], kinds: list[str], data: Any = None, path: Path | None = None) -> Path | None:
        """Write component ``name``'s EMA (else raw) weights as a model file (rank 0)."""
        if not self.env.is_main:
            return None
        from ..modelfile import save_model

        path = path or (self.run_dir / "export" / f"{self.run.name}.json")
        out = save_model(self.eval_module(name), path, arch, dict(arch_args), kinds, self.provenance(name, data), half=self.run.export_half)
        self.log(f"exported {out}")
        return out

    def close(self) -> None:
        """Close logs and leave the process group."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        dist_.shutdown(self.env)
