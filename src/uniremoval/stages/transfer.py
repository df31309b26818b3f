"""Stage 1: knowledge transfer from frozen specialist teachers to one student (docs/method.md, "Stage 1").

Every batch holds samples of every degradation kind, grouped by kind; each group goes through
its own frozen teacher (one teacher forward per kind). The student is trained with switchable,
weighted terms, declared in one table (:mod:`.transfer_losses`)::

    L = gt * L_gt + out * L_out + feat * L_feat + img * L_img + fcl * L_fcl

The loop is the shared :class:`~uniremoval.train.trainer.Trainer`: teachers are added without
an optimiser (frozen, checkpointed), the student and the projectors are one trained component
(:class:`TransferModel`, one optimiser and one EMA), and the student alone is exported.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import torch
from torch import nn
from torch.utils.data import Dataset

from .. import nets
from ..losses.contrast import TeacherEncoderFeatures, VGGFeatures
from ..losses.distill import FeatureTransfer
from ..train.config import ConfigError, ModelConfig, OptimConfig, RunConfig, ScheduleConfig, load_config
from ..train.trainer import Trainer, ValResult
from .common import StageDataConfig, degrade_registry, need_dir, parse_teachers, score_items, synthetic_val_sets, training_prior
from .terms import needing, needs, weighted_sum
from .transfer_losses import TEACHER_NEEDS, TERMS, TransferLossConfig, TransferStep
from .transfer_nets import FrozenTeacher, TransferModel, load_teachers

#: Names other modules import from here (the stage's public face).
__all__ = [
    "TransferDataConfig", "TransferLossConfig", "TransferConfig", "TransferResult", "KindTuples", "group_batch",
    "FrozenTeacher", "TransferModel", "load_teachers", "load_transfer_config", "parse_teachers",
    "build_transfer_datasets", "make_val_fn", "train_transfer",
]


@dataclass
class TransferDataConfig(StageDataConfig):
    """Synthetic pairs of every kind, made on the fly from clean photos; a step sees
    ``images_per_step`` pairs, as whole tuples (one sample of every kind, see ``kind_mix``)."""

    #: Training pairs (images) per optimiser step over all processes; a multiple of the tuple size.
    images_per_step: int = 12
    #: Validation items *per kind* and the side of their crops.
    val_count: int = 8
    epoch_size: int = 12000
    #: Samples of a kind in every tuple (kinds not named: 1), e.g. {haze: 2}. Unlike
    #: ``loss.kind_weights`` this gives a lagging kind more *data* per step, not a larger
    #: share of the same few samples; ``images_per_step`` must be a multiple of the tuple size.
    kind_mix: dict[str, int] = field(default_factory=dict)

    RENAMED: ClassVar[dict[str, str]] = {"batch_size": "images_per_step"}

    @property
    def batch_size(self) -> int:
        """Old name of :attr:`images_per_step`."""
        return self.images_per_step

    def validate(self, where: str) -> None:
        self.check(where, "images_per_step")
        for kind, n in self.kind_mix.items():
            if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                raise ConfigError(f"{where}.kind_mix.{kind}: must be a whole number >= 1")

    def counts(self, kinds: Sequence[str]) -> dict[str, int]:
        """Samples per tuple of each kind, in ``kinds`` order."""
        return {k: int(self.kind_mix.get(k, 1)) for k in kinds}


@dataclass
class TransferConfig:
    """A stage-1 experiment: teachers (kind -> model file), the student, losses, data."""

    #: Teacher model file per kind, e.g. {haze: teachers/haze.json}; the order is the kinds' order.
    teachers: dict[str, str] = field(default_factory=dict)
    #: Kinds to train on; default: the teachers' kinds, then ``untaught`` (set it when no term
    #: needs teachers).
    kinds: list[str] = field(default_factory=list)
    #: Kinds trained on the ground truth alone, with no teacher, e.g. [clean] (a clean photo's
    #: target is itself: no specialist knows it better). The teacher terms skip their groups.
    untaught: list[str] = field(default_factory=list)
    run: RunConfig = field(default_factory=lambda: RunConfig(name="transfer"))
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    loss: TransferLossConfig = field(default_factory=TransferLossConfig)
    data: TransferDataConfig = field(default_factory=TransferDataConfig)

    def all_kinds(self) -> list[str]:
        return list(self.kinds) if self.kinds else list(self.teachers) + [k for k in self.untaught if k not in self.teachers]

    def needs(self) -> frozenset[str]:
        """What the active loss terms need (:data:`.transfer_losses.TERMS`)."""
        return needs(TERMS, self.loss)

    def needs_teachers(self) -> bool:
        return bool(self.needs() & TEACHER_NEEDS)


@dataclass
class TransferResult:
    """What :func:`train_transfer` leaves behind."""

    run_dir: Path
    export: Path | None
    step: int
    metrics: dict[str, float]
    model: "TransferModel | None" = None
    teachers: dict[str, nn.Module] = field(default_factory=dict)


def load_transfer_config(
    path: str | Path | None, teachers: Mapping[str, str] | None = None, overrides: Sequence[str] = (), fixed: Mapping[str, Any] | None = None
) -> TransferConfig:
    """Read a transfer config; ``fixed`` (typed values) is merged over the file, overrides come
    last; ``teachers`` (from ``--teachers``) replace the file's."""
    cfg = load_config(TransferConfig, path, list(overrides), fixed=fixed)
    if teachers:
        cfg.teachers = dict(teachers)
    return cfg


# ---------------------------------------------------------------------------- data


class KindTuples(Dataset):
    """Item ``j`` = one sample of every kind (stacked as (K, 3, H, W), in ``kinds`` order);
    with ``counts`` ({kind: n}), n distinct samples of that kind, next to each other.

    The Trainer owns the sampler (resumable, split among processes), so the kind grouping of
    :class:`~uniremoval.data.KindGroupedBatchSampler` is made here instead, at the item level:
    a batch of ``B / K`` tuples is regrouped by :func:`group_batch` into ``K`` contiguous
    groups, and under data parallelism every process still gets every kind.
    """

    def __init__(
        self, dataset: Dataset, kinds: Sequence[str], item_kinds: Sequence[str] | None = None, counts: Mapping[str, int] | None = None
    ) -> None:
        self.dataset = dataset
        self.kinds = list(kinds)
        self.counts = {k: int((counts or {}).get(k, 1)) for k in self.kinds}
        item_kinds = list(item_kinds) if item_kinds is not None else list(dataset.item_kinds())  # type: ignore[attr-defined]
        self.pools = {k: [i for i, ik in enumerate(item_kinds) if ik == k] for k in self.kinds}
        empty = [k for k, p in self.pools.items() if len(p) < self.counts[k]]
        if empty:
            raise ValueError(f"too few items of kind(s) {empty}")
        self.length = min(len(p) // self.counts[k] for k, p in self.pools.items())
        self.epoch = 0

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        set_epoch = getattr(self.dataset, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(epoch)

    def __getitem__(self, j: int) -> dict[str, Any]:
        items = [self.dataset[self.pools[k][j * c + i]] for k, c in self.counts.items() for i in range(c)]
        keys = ("input", "target", "context") if all("context" in it for it in items) else ("input", "target")
        return {key: torch.stack([it[key] for it in items]) for key in keys}


def group_batch(t: torch.Tensor) -> torch.Tensor:
    """(G, K, ...) tuples -> (K * G, ...) with kind k's samples at ``[k * G:(k + 1) * G]``."""
    return t.transpose(0, 1).reshape(t.shape[0] * t.shape[1], *t.shape[2:])


def build_transfer_datasets(cfg: TransferConfig, context_size: int | None = None, prior: nn.Module | None = None) -> tuple[Dataset, dict[str, list[dict[str, Any]]], dict[str, Any]]:
    """Training tuples, fixed validation items per kind, and a provenance description.

    ``context_size`` (the student's descriptor) adds each crop's whole-photo thumbnail;
    ``prior`` (:func:`~.common.training_prior`) the crop of its output on the whole photo."""
    from .. import data as D

    d, kinds = cfg.data, cfg.all_kinds()
    if not d.clean_dir:
        raise ConfigError("data.clean_dir is required (e.g. --set data.clean_dir=PATH)")
    clean = need_dir(d.clean_dir, "data.clean_dir")
    reg = degrade_registry(d.degrade)
    syn = d.synthesis(context_size, prior)
    train = D.SyntheticPairs(clean, kinds=kinds, crop=d.crop, seed=cfg.run.seed, length=d.epoch_size, registry=reg, scales=d.train_scales(), **syn)
    val = synthetic_val_sets(d.val_dir, kinds, d.val_count, d.val_crop, d.val_seed, reg, syn) if d.val_dir and d.val_count else {}
    desc = {"source": "synthetic", "kinds": kinds, "clean_dir": d.clean_dir, "images": len(train.images), "val_dir": d.val_dir, "degrade": d.degrade, "whole_photo": syn["whole"],
            "prior_reads": None if prior is None else ("photo" if syn["context"] is not None else "crop")}
    return KindTuples(train, kinds, counts=d.counts(kinds)), val, desc


# ---------------------------------------------------------------------------- validation, export


def make_val_fn(val: Mapping[str, Sequence[dict[str, Any]]], n_samples: int):  # type: ignore[no-untyped-def]
    """Per-kind PSNR/SSIM of the (EMA) student, their means, and the inputs' PSNR."""

    def val_fn(tr: Trainer) -> ValResult:
        student = tr.eval_module("model").student  # type: ignore[union-attr]
        metrics: dict[str, float] = {}
        images = {}
        for i, (kind, items) in enumerate(val.items()):
            r, strips = score_items(student, items, tr.device, tr.autocast, keep=1 if i < n_samples else 0)
            metrics.update({f"psnr_{kind}": r["psnr"], f"ssim_{kind}": r["ssim"], f"input_psnr_{kind}": r["input_psnr"]})
            if strips:
                images[f"{kind}_input_output_target"] = strips[0]
        kinds = list(val)
        metrics["psnr"] = sum(metrics[f"psnr_{k}"] for k in kinds) / max(1, len(kinds))
        metrics["ssim"] = sum(metrics[f"ssim_{k}"] for k in kinds) / max(1, len(kinds))
        return ValResult(metrics, images)

    return val_fn


def _export_student(tr: Trainer, cfg: TransferConfig, data_desc: Any) -> Path | None:
    """The student's EMA (else raw) weights as a model file (rank 0), with provenance."""
    if not tr.env.is_main:
        return None
    from ..modelfile import save_model

    path = tr.run_dir / "export" / f"{cfg.run.name}.json"
    # Only the student is exported (not the projectors), so Trainer.export's module won't do.
    prov = {"stage": "transfer", **tr.provenance("model", data_desc)}
    student = tr.eval_module("model").student  # type: ignore[union-attr]
    out = save_model(student, path, cfg.model.arch, dict(cfg.model.args), cfg.all_kinds(), prov, half=cfg.run.export_half)
    tr.log(f"exported {out}")
    return out


# ---------------------------------------------------------------------------- the stage


def _tuple_slots(cfg: TransferConfig, kinds: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Kind k's samples sit at slots [start, stop) of every tuple (:class:`KindTuples`' order);
    checks that the per-kind settings name trained kinds and that a step holds whole tuples."""
    unknown = sorted(set(cfg.loss.kind_weights) - set(kinds))
    if unknown:
        raise ConfigError(f"loss.kind_weights names kind(s) {unknown} that are not trained (kinds: {kinds})")
    unknown = sorted(set(cfg.data.kind_mix) - set(kinds))
    if unknown:
        raise ConfigError(f"data.kind_mix names kind(s) {unknown} that are not trained (kinds: {kinds})")
    counts = cfg.data.counts(kinds)
    n_slots = sum(counts.values())  # images in one tuple
    if cfg.data.images_per_step % n_slots:
        mix = " + ".join(f"{c} {k}" for k, c in counts.items())
        raise ConfigError(
            f"data.images_per_step (formerly batch_size) {cfg.data.images_per_step} must be a multiple of the tuple size {n_slots} ({mix})"
        )
    stops = list(accumulate(counts.values()))
    return {k: (stop - counts[k], stop) for k, stop in zip(kinds, stops)}


def _add_teachers(tr: Trainer, cfg: TransferConfig, kinds: Sequence[str], teachers: Mapping[str, nn.Module] | None) -> dict[str, FrozenTeacher]:
    """The frozen teachers the active terms need, added without an optimiser (checkpointed, never trained)."""
    frozen: dict[str, FrozenTeacher] = {}
    if not cfg.needs_teachers():
        return frozen
    raw = dict(teachers) if teachers is not None else load_teachers(cfg.teachers)
    missing = [k for k in kinds if k not in raw and k not in cfg.untaught]
    if missing:
        raise ConfigError(
            f"no teacher for kind(s) {missing}: --teachers {','.join(f'{k}=PATH' for k in missing)}"
            f" (or --set 'untaught=[{', '.join(missing)}]' to train them on the ground truth alone)"
        )
    both = [k for k in cfg.untaught if k in raw and k in kinds]
    if both:
        raise ConfigError(f"untaught: kind(s) {both} also have a teacher; drop one of the two")
    need = cfg.needs()
    for k in kinds:
        if k in cfg.untaught:
            continue
        t = raw[k] if isinstance(raw[k], FrozenTeacher) else FrozenTeacher(raw[k])
        tr.add(f"teacher_{k}", t)
        frozen[k] = t
        if not t.has_features and need & {"features", "teacher_phi"}:
            tr.log(f"[yellow]teacher {k} ({type(t.net).__name__}) has no features: output-only distillation for {k}[/]")
    return frozen


def _phis(tr: Trainer, cfg: TransferConfig, frozen: Mapping[str, FrozenTeacher], kinds: Sequence[str]) -> dict[str, nn.Module]:
    """phi of the image-grain contrast per kind (frozen; not checkpointed: rebuilt)."""
    need, lo = cfg.needs(), cfg.loss
    if "teacher_phi" in need:
        return {k: TeacherEncoderFeatures(frozen[k].net) for k in kinds if k in frozen and frozen[k].has_features}
    if "vgg_phi" in need:
        vgg = VGGFeatures(lo.vgg_path or "", lo.vgg_layers).to(tr.device)  # one network for every kind
        # An untaught kind has no teacher output to be a positive; with targets alone it may join.
        return {k: vgg for k in kinds if k in frozen or lo.img_positive == "target"}
    return {}


def _make_step(cfg: TransferConfig, model: nn.Module, frozen: Mapping[str, FrozenTeacher], phis: Mapping[str, nn.Module], slots: Mapping[str, tuple[int, int]], use_feat: bool):  # type: ignore[no-untyped-def]
    """One stage-1 step: teacher forwards per kind group, the student, the table's weighted sum."""
    n_slots = max(b for _, b in slots.values())
    feat_kinds = {k for k, t in frozen.items() if t.has_features}
    need_t_out = "teacher_outputs" in cfg.needs()

    def step(t: Trainer, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        if batch["input"].shape[1] != n_slots:
            raise ConfigError(f"training tuples hold {batch['input'].shape[1]} images, the kinds and data.kind_mix need {n_slots}")
        x, y = group_batch(batch["input"]), group_batch(batch["target"])
        ctx = group_batch(batch["context"]) if "context" in batch else None
        g = batch["input"].shape[0]  # tuples on this process
        groups = [(k, slice(a * g, b * g)) for k, (a, b) in slots.items()]
        t_out: dict[str, torch.Tensor] = {}
        t_feats: dict[str, list[torch.Tensor]] = {}
        with t.autocast():
            if frozen and (need_t_out or use_feat):
                for k, sl in groups:  # one teacher forward per kind group (untaught kinds have none)
                    if k not in frozen:
                        continue
                    r = frozen[k](x[sl], return_features=use_feat and k in feat_kinds, context=None if ctx is None else ctx[sl])
                    if isinstance(r, tuple):
                        t_out[k], t_feats[k] = r[0], list(r[1])
                    else:
                        t_out[k] = r
            out, proj = model(x, groups, t_feats if use_feat else None, context=ctx)
        ctx = TransferStep(t, cfg.loss, groups, x, y, out, t_out, proj, phis, frozen)
        loss, terms = weighted_sum(TERMS, cfg.loss, ctx, torch.zeros((), device=x.device))
        t.optimize("model", loss)
        return {"loss": loss.detach(), **{n: v.detach() for n, v in terms.items()}}

    return step


def train_transfer(
    cfg: TransferConfig,
    train_set: Dataset | None = None,
    val_items: Mapping[str, Sequence[dict[str, Any]]] | None = None,
    teachers: Mapping[str, nn.Module] | None = None,
    stop_after: int | None = None,
    data_desc: Any = None,
) -> TransferResult:
    """Train (or resume) a stage-1 student; export it when ``run.steps`` is reached.

    ``train_set`` yields ``{"input", "target"}`` tuples of shape (K, 3, H, W) in kind order
    (:class:`KindTuples`); by default it and ``val_items`` (per kind) come from ``cfg.data``.
    ``teachers`` (kind -> network) replace loading ``cfg.teachers`` (tests use it).
    """
    kinds = cfg.all_kinds()
    if not kinds:
        raise ConfigError("no kinds: give teachers (--teachers haze=PATH,...) or kinds")
    stray = [k for k in cfg.untaught if k not in kinds]
    if stray:
        raise ConfigError(f"untaught: kind(s) {stray} are not among the kinds trained ({', '.join(kinds)})")
    slots = _tuple_slots(cfg, kinds)
    n_slots = max(b for _, b in slots.values())
    tr = Trainer(cfg.run, cfg, global_batch=cfg.data.images_per_step // n_slots, images_per_sample=n_slots)
    try:
        frozen = _add_teachers(tr, cfg, kinds, teachers)
        feat_kinds = [k for k in kinds if k in frozen and frozen[k].has_features]
        # --- student (+ projectors): the one trained component
        student = cfg.model.build()
        use_feat = "features" in cfg.needs() and bool(feat_kinds)
        if use_feat and not nets.descriptor(student).has_features:
            off = " and ".join(f"loss.{w}=0" for w in needing(TERMS, "features", cfg.loss))
            raise ConfigError(f"student {cfg.model.arch} has no features: set {off}")
        transfer = FeatureTransfer(list(nets.descriptor(student).feature_channels), {k: frozen[k].feature_channels for k in feat_kinds}) if use_feat else None  # type: ignore[arg-type]
        model = tr.add("model", TransferModel(student, transfer), cfg.optim, cfg.schedule, ema=True)
        phis = _phis(tr, cfg, frozen, kinds)
        if train_set is None:
            train_set, built_val, data_desc = build_transfer_datasets(cfg, nets.descriptor(student).context_size, training_prior(student))
            if val_items is None:
                val_items = built_val
        step = _make_step(cfg, model, frozen, phis, slots, use_feat)
        val_fn = make_val_fn(val_items, cfg.run.val_samples) if val_items else None
        tr.fit(train_set, step, val_fn, workers=cfg.data.workers, stop_after=stop_after)
        export = _export_student(tr, cfg, data_desc) if tr.step >= cfg.run.steps and cfg.run.export else None
        comp = tr.components["model"]
        return TransferResult(tr.run_dir, export, tr.step, dict(tr.last_metrics), comp.module, dict(frozen))  # type: ignore[arg-type]
    finally:
        tr.close()
