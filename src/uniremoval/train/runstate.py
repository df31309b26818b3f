"""The :class:`~.trainer.Trainer`'s checkpoints (``last.pt``, ``best.pt``) and its logs
(console, TensorBoard, progress bar, the run's ``config.yaml``), as mixins of the trainer."""
from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from . import checkpoint as ckpt
from . import distributed as dist_
from .config import ConfigError, RunConfig, dump_yaml, to_dict
from .ema import EMA


CKPT_FORMAT = "uniremoval-ckpt/1"


@dataclass
class Component:
    """One trained network with its optimiser, schedule, loss scaler and EMA."""

    module: nn.Module  # unwrapped
    wrapped: nn.Module  # what forward passes use (DDP in a multi-process run)
    optimizer: torch.optim.Optimizer | None
    scheduler: torch.optim.lr_scheduler.LRScheduler | None
    scaler: torch.amp.GradScaler | None
    ema: EMA | None
    grad_clip: float


class CheckpointMixin:
    """Checkpoint state of a trainer: every component, the data position, RNG, best metric."""

    run: RunConfig
    config: Any
    env: dist_.DistEnv
    device: torch.device
    ckpt_dir: Path
    components: dict[str, Component]
    step: int
    epoch: int
    batch_pos: int
    global_batch: int
    best_value: float | None
    best_step: int | None
    resumed_from: int | None

    @property
    def last_path(self) -> Path:
        return self.ckpt_dir / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.ckpt_dir / "best.pt"

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue this run exactly."""
        comps: dict[str, Any] = {}
        for name, c in self.components.items():
            comps[name] = {
                "module": c.module.state_dict(),
                "optimizer": c.optimizer.state_dict() if c.optimizer else None,
                "scheduler": c.scheduler.state_dict() if c.scheduler else None,
                "scaler": c.scaler.state_dict() if c.scaler else None,
                "ema": c.ema.state_dict() if c.ema else None,
            }
        return {
            "format": CKPT_FORMAT,
            "step": self.step,
            "epoch": self.epoch,
            "batch_pos": self.batch_pos,
            "global_batch": self.global_batch,
            "world_size": self.env.world_size,
            "best": {"value": self.best_value, "step": self.best_step},
            "components": comps,
            "rng": ckpt.rng_state(),
            "config": to_dict(self.config),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (components must already be added)."""
        if state.get("format") != CKPT_FORMAT:
            raise ValueError(f"not a {CKPT_FORMAT} checkpoint")
        if int(state["global_batch"]) != self.global_batch:
            raise ConfigError(
                f"checkpoint was trained with batch {state['global_batch']}, config says {self.global_batch}; "
                "the data position would not line up (start a new run name)"
            )
        missing = set(self.components) - set(state["components"])
        if missing:
            raise ValueError(f"checkpoint has no state for component(s) {', '.join(sorted(missing))}")
        for name, c in self.components.items():
            s = state["components"][name]
            c.module.load_state_dict(s["module"])
            if c.optimizer is not None and s["optimizer"] is not None:
                c.optimizer.load_state_dict(s["optimizer"])
            if c.scheduler is not None and s["scheduler"] is not None:
                c.scheduler.load_state_dict(s["scheduler"])
            if c.scaler is not None and s["scaler"] is not None:
                c.scaler.load_state_dict(s["scaler"])
            if c.ema is not None and s["ema"] is not None:
                c.ema.load_state_dict(s["ema"])
        self.step = int(state["step"])
        self.epoch = int(state["epoch"])
        self.batch_pos = int(state["batch_pos"])
        self.best_value = state["best"]["value"]
        self.best_step = state["best"]["step"]
        ckpt.set_rng_state(state["rng"])

    def save_checkpoint(self) -> Path | None:
        """Write ``last.pt`` atomically (rank 0 only); every process waits for it."""
        path = None
        if self.env.is_main:
            path = ckpt.save_atomic(self.state_dict(), self.last_path)
        dist_.barrier(self.env)
        return path

    def try_resume(self) -> bool:
        """Load ``last.pt`` of this run folder when it exists and ``run.resume`` is on."""
        if not self.run.resume or not self.last_path.is_file():
            return False
        state = ckpt.load(self.last_path, map_location=self.device)
        self.load_state_dict(state)
        self.resumed_from = self.step
        return True

    def save_best(self, key: str, value: float) -> None:
        """Record ``value`` of metric ``key`` as the best and write ``best.pt`` (weights, raw + EMA)."""
        self.best_value, self.best_step = value, self.step
        ckpt.save_atomic(
            {
                "format": CKPT_FORMAT + "+best",
                "step": self.step,
                "metric": key,
                "value": value,
                "modules": {n: c.module.state_dict() for n, c in self.components.items()},
                "ema": {n: c.ema.module.state_dict() for n, c in self.components.items() if c.ema},
            },
            self.best_path,
        )


class RunLogMixin:
    """Console lines, TensorBoard scalars and the progress bar (rank 0 only)."""

    run: RunConfig
    config: Any
    env: dist_.DistEnv
    run_dir: Path
    step: int
    _writer: Any
    _console: Any

    def _init_logging(self) -> None:
        if not self.env.is_main:
            return
        from rich.console import Console

        self._console = Console(stderr=True, highlight=False)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.run_dir / "tb"), purge_step=self.step + 1 if self.step else None)
        except ImportError:  # tensorboard is a declared dependency; keep training if it is missing
            self._console.print("[yellow]tensorboard is not installed: no TensorBoard logs[/]")

    def log(self, message: str) -> None:
        """Print a line on rank 0."""
        if self.env.is_main and self._console is not None:
            self._console.print(message, soft_wrap=True)

    def log_scalars(self, values: Mapping[str, float], prefix: str) -> None:
        """TensorBoard scalars at the current step (rank 0)."""
        if self._writer is not None:
            for k, v in values.items():
                self._writer.add_scalar(f"{prefix}/{k}", v, self.step)

    def _write_config(self) -> None:
        """Save the resolved config; keep the previous one when a resume changed it."""
        if not self.env.is_main:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        text = dump_yaml(self.config)
        path = self.run_dir / "config.yaml"
        if path.is_file() and path.read_text() != text:
            stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            os.replace(path, self.run_dir / f"config.{stamp}.yaml")
            self.log(f"[yellow]config differs from the one this run started with; previous kept as config.{stamp}.yaml[/]")
        tmp = path.with_name(".config.yaml.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)

    def _progress(self) -> tuple[Any, Any] | None:
        if not (self.env.is_main and self.run.progress):
            return None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        p = Progress(
            TextColumn(f"[bold]{self.run.name}[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
            console=self._console,
            transient=False,
        )
        task = p.add_task("train", total=self.run.steps, completed=self.step, info="")
        p.start()
        return p, task
