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
import subprocess
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
from .config import ConfigError, OptimConfig, RunConfig, ScheduleConfig, dump_yaml, to_dict
from .data import ResumableSampler, make_loader
from .ema import EMA
from .schedule import build_scheduler

CKPT_FORMAT = "uniremoval-ckpt/1"


@dataclass
class ValResult:
    """What a validation function returns: scalar metrics and optional CHW images in [0, 1]."""

    metrics: dict[str, float]
    images: dict[str, torch.Tensor] = field(default_factory=dict)


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


StepFn = Callable[["Trainer", dict[str, Any]], Mapping[str, Any]]
ValFn = Callable[["Trainer"], ValResult]


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
        from ..infer import cpu_has_fast_bf16

        return torch.bfloat16 if device.type == "cpu" and cpu_has_fast_bf16() else None
    if amp in ("auto", "fp16"):
        if not cuda:
            raise ConfigError("run.amp=fp16 needs a CUDA device; use bf16 or off on CPU")
        return torch.float16
    return torch.bfloat16


def input_models(config: Any) -> dict[str, dict[str, str]]:
    """The model files a stage starts from (``model.init``, ``student``, ``teachers.<kind>``),
    each with the sha256 of its weights, so that an export names its lineage by content: a
    path alone points at a cache folder that may be gone or hold other weights by then."""
    from ..modelfile import ModelError, read_config

    paths: dict[str, str] = {}
    init = getattr(getattr(config, "model", None), "init", None)
    if isinstance(init, str) and init:
        paths["model.init"] = init
    student = getattr(config, "student", None)
    if isinstance(student, str) and student:
        paths["student"] = student
    teachers = getattr(config, "teachers", None)
    if isinstance(teachers, Mapping):
        paths.update({f"teachers.{k}": v for k, v in teachers.items() if isinstance(v, str)})
    out: dict[str, dict[str, str]] = {}
    for key, path in paths.items():
        try:
            cfg, json_path = read_config(os.path.expanduser(path))
            out[key] = {"path": str(json_path), "sha256": cfg.sha256}
        except ModelError as e:  # recorded, not fatal: the stage itself loaded what it used
            out[key] = {"path": path, "error": str(e)}
    return out


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % (1 << 32))
    torch.manual_seed(seed)


def git_commit() -> str | None:
    """The source tree's git commit (with ``-dirty`` when modified), or None outside git."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here, capture_output=True, text=True, timeout=5)
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


class Trainer:
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

    # ------------------------------------------------------------------ checkpoints

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

    # ------------------------------------------------------------------ logging

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
                    self.best_value, self.best_step = v, self.step
                    ckpt.save_atomic(
                        {
                            "format": CKPT_FORMAT + "+best",
                            "step": self.step,
                            "metric": key,
                            "value": v,
                            "modules": {n: c.module.state_dict() for n, c in self.components.items()},
                            "ema": {n: c.ema.module.state_dict() for n, c in self.components.items() if c.ema},
                        },
                        self.best_path,
                    )
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
