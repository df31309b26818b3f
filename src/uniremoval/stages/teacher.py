"""Stage 0: train one specialist teacher per degradation kind (METHOD.md, "Stage 0").

A teacher is a restoration network trained supervised on (degraded, clean) pairs of a single
kind: on-the-fly synthetic pairs made from a folder of clean photos, or a paired dataset. The
loop itself is the shared :class:`~uniremoval.train.trainer.Trainer`; this module only says
what one step and one validation are.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from .. import nets
from ..metrics import psnr, ssim
from ..train.config import ConfigError, ModelConfig, OptimConfig, RunConfig, ScheduleConfig, load_config
from ..train.trainer import Trainer, ValResult


@dataclass
class DataConfig:
    """Where training and validation pairs come from."""

    #: synthetic: degrade clean photos on the fly; paired: read (degraded, clean) pairs.
    source: Literal["synthetic", "paired"] = "synthetic"
    #: Folder of clean photos (synthetic source).
    clean_dir: str | None = None
    #: Paired dataset root (paired source); layout as understood by ``uniremoval.data``.
    paired_dir: str | None = None
    #: Validation: clean photos to degrade with fixed seeds (synthetic), or a paired root.
    val_dir: str | None = None
    #: Training crop side in pixels.
    crop: int = 128
    #: Global batch (over all processes).
    batch_size: int = 16
    workers: int = 2
    #: Size of the fixed validation set and the side of its centre crops.
    val_count: int = 16
    val_crop: int = 256
    val_seed: int = 12345
    #: Epoch length for the synthetic source (samples; crops are drawn anew every epoch).
    epoch_size: int = 10000
    #: Optional degradation config for ``uniremoval.degrade`` (kind ranges, new kinds).
    degrade: dict[str, Any] = field(default_factory=dict)

    def validate(self, where: str) -> None:
        if self.batch_size < 1 or self.crop < 8 or self.val_count < 0:
            raise ConfigError(f"{where}: batch_size >= 1, crop >= 8 and val_count >= 0 required")


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
    data: DataConfig = field(default_factory=DataConfig)


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


def load_teacher_config(path: str | Path | None, kind: str | None = None, overrides: Sequence[str] = ()) -> TeacherConfig:
    """Read a teacher config. ``kind`` (from the command line) replaces the file's kind and
    names the run ``teacher-<kind>`` unless the file names it; ``overrides`` come last."""
    base: dict[str, Any] = {}
    pre: list[str] = []
    if kind is not None:
        base = {"run": {"name": f"teacher-{kind}"}}
        pre = [f"kind={kind}"]
    return load_config(TeacherConfig, path, pre + list(overrides), base=base)


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


def build_datasets(cfg: TeacherConfig) -> tuple[Dataset, Sequence[dict[str, Any]], Any]:
    """Training dataset, fixed validation items and a description for provenance, from ``cfg.data``.

    Uses :mod:`uniremoval.data` (synthetic pairs from clean photos, or paired folders).
    """
    try:
        from .. import data as data_mod  # noqa: F401
    except ImportError as e:  # pragma: no cover - depends on the data package being present
        raise ConfigError(f"the dataset package uniremoval.data is not available: {e}") from None
    from ._datasets import build_teacher_datasets

    return build_teacher_datasets(cfg)


def _pad_to(x: torch.Tensor, m: int) -> tuple[torch.Tensor, int, int]:
    h, w = x.shape[-2:]
    ph, pw = (-h) % m, (-w) % m
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="reflect")
    return x, h, w


def make_val_fn(val_items: Sequence[dict[str, Any]], n_samples: int):  # type: ignore[no-untyped-def]
    """Validation: PSNR/SSIM of the EMA network on fixed items, and of the input itself."""

    def val_fn(tr: Trainer) -> ValResult:
        net = tr.eval_module("net")
        m = nets.size_multiple(net)
        p_out, s_out, p_in, s_in = [], [], [], []
        images: dict[str, torch.Tensor] = {}
        for i, item in enumerate(val_items):
            x = item["input"].unsqueeze(0).to(tr.device)
            y = item["target"].unsqueeze(0).to(tr.device)
            xp, h, w = _pad_to(x, m)
            with tr.autocast():
                out = net(xp)
            out = out[..., :h, :w].float().clamp(0, 1)
            p_out.append(float(psnr(out, y)[0]))
            s_out.append(float(ssim(out, y)[0]))
            p_in.append(float(psnr(x, y)[0]))
            s_in.append(float(ssim(x, y)[0]))
            if i < n_samples:
                images[f"{i}_input_output_target"] = torch.cat([x[0], out[0], y[0]], dim=-1).cpu()
        k = max(1, len(p_out))
        return ValResult(
            metrics={"psnr": sum(p_out) / k, "ssim": sum(s_out) / k, "input_psnr": sum(p_in) / k, "input_ssim": sum(s_in) / k},
            images=images,
        )

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
    tr = Trainer(cfg.run, cfg, global_batch=cfg.data.batch_size)
    try:
        if train_set is None:
            train_set, built_val, data_desc = build_datasets(cfg)
            if val_items is None:
                val_items = built_val
        net = cfg.model.build()
        model = tr.add("net", net, cfg.optim, cfg.schedule, ema=True)

        def step(t: Trainer, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
            with t.autocast():
                out = model(batch["input"])
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
