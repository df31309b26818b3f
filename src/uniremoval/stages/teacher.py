"""Stage 0: train one specialist teacher per degradation kind (docs/method.md, "Stage 0").

A teacher is a restoration network trained supervised on (degraded, clean) pairs of a single
kind: on-the-fly synthetic pairs made from a folder of clean photos, or a paired dataset. The
loop itself is the shared :class:`~uniremoval.train.trainer.Trainer`; this module only says
what one step and one validation are.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Mapping, Sequence

import torch
from torch import nn
from torch.utils.data import Dataset

from .. import nets
from ..train.config import ConfigError, ModelConfig, OptimConfig, RunConfig, ScheduleConfig, load_config
from ..train.trainer import Trainer, ValResult
from .common import StageDataConfig, degrade_registry, fixed_items, score_items, training_prior


@dataclass
class TeacherDataConfig(StageDataConfig):
    """Where training and validation pairs come from; a step sees ``images_per_step`` pairs."""

    #: synthetic: degrade clean photos on the fly; paired: read (degraded, clean) pairs.
    source: Literal["synthetic", "paired"] = "synthetic"
    #: Paired dataset root (paired source); layout as understood by ``uniremoval.data``.
    paired_dir: str | None = None
    #: Training pairs (images) per optimiser step, over all processes.
    images_per_step: int = 16

    RENAMED: ClassVar[dict[str, str]] = {"batch_size": "images_per_step"}

    @property
    def batch_size(self) -> int:
        """Old name of :attr:`images_per_step`."""
        return self.images_per_step

    def validate(self, where: str) -> None:
        self.check(where, "images_per_step")


@dataclass
class LossConfig:
    """Pixel loss to ground truth, plus an optional frequency term."""

    name: Literal["l1", "charbonnier"] = "charbonnier"
    eps: float = 1e-3
    #: Weight of an L1 loss between the 2-D FFTs of output and target (0: off).
    fft_weight: float = 0.0


@dataclass
class TeacherConfig:
    """A stage-0 experiment: one teacher for one degradation ``kind``."""

    kind: str = "haze"
    run: RunConfig = field(default_factory=RunConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: TeacherDataConfig = field(default_factory=TeacherDataConfig)


@dataclass
class TeacherResult:
    """What :func:`train_teacher` leaves behind."""

    run_dir: Path
    export: Path | None
    step: int
    metrics: dict[str, float]
    #: The trained network (raw weights; ``ema`` holds the averaged copy when enabled).
    net: nn.Module | None = None
    ema: nn.Module | None = None


def load_teacher_config(
    path: str | Path | None, kind: str | None = None, overrides: Sequence[str] = (), fixed: Mapping[str, Any] | None = None
) -> TeacherConfig:
    """Read a teacher config. ``kind`` (from the command line) replaces the file's kind and
    names the run ``teacher-<kind>`` unless the file names it; ``fixed`` (typed values) is
    merged over the file; ``overrides`` come last."""
    base: dict[str, Any] = {}
    over: dict[str, Any] = {}
    if kind is not None:
        base = {"run": {"name": f"teacher-{kind}"}}
        over = {"kind": kind}
    return load_config(TeacherConfig, path, list(overrides), base=base, fixed={**over, **dict(fixed or {})})


def pixel_loss(out: torch.Tensor, target: torch.Tensor, cfg: LossConfig) -> torch.Tensor:
    """L1 or Charbonnier loss (+ optional FFT term), computed in float32."""
    out, target = out.float(), target.float()
    diff = out - target
    if cfg.name == "l1":
        loss = diff.abs().mean()
    else:
        loss = torch.sqrt(diff * diff + cfg.eps**2).mean()
    if cfg.fft_weight > 0:
        fo, ft = torch.fft.rfft2(out), torch.fft.rfft2(target)
        loss = loss + cfg.fft_weight * (torch.view_as_real(fo) - torch.view_as_real(ft)).abs().mean()
    return loss


def build_datasets(cfg: TeacherConfig, context_size: int | None = None, prior: nn.Module | None = None) -> tuple[Dataset, Sequence[dict[str, Any]], Any]:
    """Training dataset, fixed validation items and a description for provenance, from ``cfg.data``.

    synthetic: ``SyntheticPairs`` of ``cfg.kind`` made from ``data.clean_dir`` (validation: the
    same synthesis with ``data.val_seed`` on ``data.val_dir``, crops of ``data.val_crop``).
    paired: ``layout_dataset`` of ``data.paired_dir`` (auto layout) keeping pairs of
    ``cfg.kind`` when kinds are known; validation from ``data.val_dir`` the same way.
    """
    from .. import data as D

    d = cfg.data
    if d.source == "synthetic":
        if not d.clean_dir:
            raise ConfigError("data.clean_dir is required for synthetic pairs (e.g. --set data.clean_dir=PATH)")
        if not Path(d.clean_dir).expanduser().is_dir():
            raise ConfigError(f"data.clean_dir {d.clean_dir}: not a folder")
        reg = degrade_registry(d.degrade)
        syn = d.synthesis(context_size, prior)
        train = D.SyntheticPairs(Path(d.clean_dir).expanduser(), kinds=[cfg.kind], crop=d.crop, seed=cfg.run.seed, length=d.epoch_size, registry=reg, scales=d.train_scales(), **syn)
        val: list[dict[str, Any]] = []
        if d.val_dir and d.val_count:
            vs = D.SyntheticPairs(Path(d.val_dir).expanduser(), kinds=[cfg.kind], crop=d.val_crop, seed=d.val_seed, hflip=False, registry=reg, **syn)
            val = fixed_items(vs, d.val_count)
        desc = {"source": "synthetic", "kind": cfg.kind, "clean_dir": d.clean_dir, "images": len(train.images), "val_dir": d.val_dir, "degrade": d.degrade, "whole_photo": syn["whole"]}
        return train, val, desc
    if not d.paired_dir:
        raise ConfigError("data.paired_dir is required for paired data")
    root = Path(d.paired_dir).expanduser()
    pairs = [p for p in D.find_pairs(root).pairs if p.kind in (cfg.kind, "unknown")]
    if not pairs:
        raise ConfigError(f"data.paired_dir {root}: no pairs of kind {cfg.kind!r}")
    train = D.PairedDataset(pairs, crop=d.crop, hflip=True, seed=cfg.run.seed, root=root)
    val = []
    if d.val_dir and d.val_count:
        vpairs = [p for p in D.find_pairs(Path(d.val_dir).expanduser()).pairs if p.kind in (cfg.kind, "unknown")]
        val = fixed_items(D.PairedDataset(vpairs, crop=d.val_crop, seed=d.val_seed), d.val_count)
    return train, val, {"source": "paired", "kind": cfg.kind, "paired_dir": d.paired_dir, "pairs": len(pairs), "val_dir": d.val_dir}


def make_val_fn(val_items: Sequence[dict[str, Any]], n_samples: int):  # type: ignore[no-untyped-def]
    """Validation: PSNR/SSIM of the EMA network on fixed items, and of the input itself."""

    def val_fn(tr: Trainer) -> ValResult:
        metrics, strips = score_items(tr.eval_module("net"), val_items, tr.device, tr.autocast, keep=n_samples)
        return ValResult(metrics=metrics, images={f"{i}_input_output_target": s for i, s in enumerate(strips)})

    return val_fn


def train_teacher(
    cfg: TeacherConfig,
    train_set: Dataset | None = None,
    val_items: Sequence[dict[str, Any]] | None = None,
    stop_after: int | None = None,
    data_desc: Any = None,
) -> TeacherResult:
    """Train (or resume) a teacher; export its EMA weights when ``run.steps`` is reached.

    ``train_set`` yields dicts with CHW float ``input`` and ``target`` in [0, 1]; by default it
    and ``val_items`` are built from ``cfg.data``. ``stop_after`` stops early (as if killed
    right after that step; tests use it).
    """
    tr = Trainer(cfg.run, cfg, global_batch=cfg.data.images_per_step)
    try:
        net = cfg.model.build()
        if train_set is None:
            train_set, built_val, data_desc = build_datasets(cfg, nets.descriptor(net).context_size, training_prior(net))
            if val_items is None:
                val_items = built_val
        model = tr.add("net", net, cfg.optim, cfg.schedule, ema=True)

        def step(t: Trainer, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
            # A network reading the whole photo gets each crop's whole-photo thumbnail.
            kw = {"context": batch["context"]} if "context" in batch else {}
            with t.autocast():
                out = model(batch["input"], **kw)
            loss = pixel_loss(out, batch["target"], cfg.loss)
            t.optimize("net", loss)
            return {"loss": loss.detach()}

        val_fn = make_val_fn(val_items, cfg.run.val_samples) if val_items else None
        tr.fit(train_set, step, val_fn, workers=cfg.data.workers, stop_after=stop_after)
        export = None
        if tr.step >= cfg.run.steps and cfg.run.export:
            export = tr.export("net", cfg.model.arch, cfg.model.args, [cfg.kind], data=data_desc)
        comp = tr.components["net"]
        return TeacherResult(tr.run_dir, export, tr.step, dict(tr.last_metrics), comp.module, comp.ema.module if comp.ema else None)
    finally:
        tr.close()
