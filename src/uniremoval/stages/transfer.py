"""Stage 1: knowledge transfer from frozen specialist teachers to one student (METHOD.md, "Stage 1").

Every batch holds samples of every degradation kind, grouped by kind; each group goes through
its own frozen teacher (one teacher forward per kind). The student is trained with switchable,
weighted terms (``loss`` section of :class:`TransferConfig`)::

    L = out * L_out + gt * L_gt + feat * L_feat + img * L_img + fcl * L_fcl

- ``L_out``  |S(x) - T_k(x)|_1, ``L_gt`` |S(x) - y|_1 (:mod:`uniremoval.losses.distill`);
- ``L_feat`` collaborative feature transfer through projectors into the student's common space,
  plus ``recon_weight`` x the inverse projectors' reconstruction;
- ``L_img``  image-grain ratio contrast on frozen features phi (the group's teacher encoder,
  a user-supplied VGG-19, or off) with soft (own input) and/or hard (every input in the batch)
  negatives; ``L_fcl`` feature-grain InfoNCE in the common space
  (:mod:`uniremoval.losses.contrast`).

The loop is the shared :class:`~uniremoval.train.trainer.Trainer`: teachers are added without
an optimiser (frozen, checkpointed), the student and the projectors are one trained component
(:class:`TransferModel`, one optimiser and one EMA), and the student alone is exported.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import torch
from torch import nn
from torch.utils.data import Dataset

from .. import nets
from ..losses.contrast import TeacherEncoderFeatures, VGGFeatures, batch_negatives, feature_contrast, pool_normalize, ratio_contrast
from ..losses.distill import FeatureTransfer, feature_transfer_loss, gt_loss, output_distill
from ..metrics import psnr, ssim
from ..train.config import ConfigError, ModelConfig, OptimConfig, RunConfig, ScheduleConfig, load_config
from ..train.trainer import Trainer, ValResult
from .teacher import _pad_to


@dataclass
class TransferDataConfig:
    """Synthetic pairs of every kind, made on the fly from clean photos."""

    clean_dir: str | None = None
    #: Clean photos of the fixed synthetic validation set.
    val_dir: str | None = None
    crop: int = 128
    #: Global batch in samples; must be a multiple of the number of kinds (equal groups).
    batch_size: int = 12
    workers: int = 2
    #: Validation items *per kind* and the side of their crops.
    val_count: int = 8
    val_crop: int = 256
    val_seed: int = 12345
    epoch_size: int = 12000
    degrade: dict[str, Any] = field(default_factory=dict)
    #: Samples of a kind in every tuple (kinds not named: 1), e.g. {haze: 2}. Unlike
    #: ``loss.kind_weights`` this gives a lagging kind more *data* per step, not a larger
    #: share of the same few samples; ``batch_size`` must be a multiple of the tuple size.
    kind_mix: dict[str, int] = field(default_factory=dict)

    def validate(self, where: str) -> None:
        if self.batch_size < 1 or self.crop < 8 or self.val_count < 0:
            raise ConfigError(f"{where}: batch_size >= 1, crop >= 8 and val_count >= 0 required")
        for kind, n in self.kind_mix.items():
            if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                raise ConfigError(f"{where}.kind_mix.{kind}: must be a whole number >= 1")

    def counts(self, kinds: Sequence[str]) -> dict[str, int]:
        """Samples per tuple of each kind, in ``kinds`` order."""
        return {k: int(self.kind_mix.get(k, 1)) for k in kinds}


@dataclass
class TransferLossConfig:
    """Weights of the stage-1 terms (0 switches a term off) and their options."""

    out_weight: float = 1.0
    gt_weight: float = 1.0
    feat_weight: float = 1.0
    #: Inverse-projector reconstruction inside the feature term (METHOD.md: 0.05).
    recon_weight: float = 0.05
    img_weight: float = 0.1
    fcl_weight: float = 0.1
    #: Image grain: positives (teacher output, ground truth, or the mean of both ratios).
    img_positive: Literal["teacher", "target", "both"] = "teacher"
    #: Image grain: soft = own input, hard = every input of the batch, both = mean of the two.
    img_negatives: Literal["soft", "hard", "both"] = "both"
    #: phi: the group's frozen teacher encoder, VGG-19 from ``vgg_path``, or no image grain.
    img_phi: Literal["teachers", "vgg", "none"] = "teachers"
    vgg_path: str | None = None
    #: VGG ``features`` indices to tap (default relu1_1 .. relu5_1).
    vgg_layers: list[int] | None = None
    #: InfoNCE temperature.
    tau: float = 0.1
    #: Also run every other teacher on each sample and use its projected features as extra
    #: negatives (costs K-1 more teacher forwards; the batch's other kinds are negatives anyway).
    fcl_other_teachers: bool = False
    #: Per-kind weight of the per-group terms (gt, out, feat, img), e.g. {haze: 2.0}; kinds not
    #: named weigh 1. The batch-wide feature-grain InfoNCE is not split by kind and stays as is.
    #: A kind that lags its teacher gets more of the student's capacity without more data.
    kind_weights: dict[str, float] = field(default_factory=dict)

    def validate(self, where: str) -> None:
        for k in ("out_weight", "gt_weight", "feat_weight", "recon_weight", "img_weight", "fcl_weight"):
            if getattr(self, k) < 0:
                raise ConfigError(f"{where}.{k}: must be >= 0")
        for kind, w in self.kind_weights.items():
            if not isinstance(w, (int, float)) or isinstance(w, bool) or w < 0:
                raise ConfigError(f"{where}.kind_weights.{kind}: must be a number >= 0")
        if self.tau <= 0:
            raise ConfigError(f"{where}.tau: must be > 0")
        if self.img_weight > 0 and self.img_phi == "vgg" and not self.vgg_path:
            raise ConfigError(f"{where}.vgg_path: img_phi=vgg needs a VGG-19 weights file (nothing is downloaded)")


@dataclass
class TransferConfig:
    """A stage-1 experiment: teachers (kind -> model file), the student, losses, data."""

    #: Teacher model file per kind, e.g. {haze: teachers/haze.json}; the order is the kinds' order.
    teachers: dict[str, str] = field(default_factory=dict)
    #: Kinds to train on; default: the teachers' kinds (set it when no term needs teachers).
    kinds: list[str] = field(default_factory=list)
    run: RunConfig = field(default_factory=lambda: RunConfig(name="transfer"))
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    loss: TransferLossConfig = field(default_factory=TransferLossConfig)
    data: TransferDataConfig = field(default_factory=TransferDataConfig)

    def all_kinds(self) -> list[str]:
        return list(self.kinds) if self.kinds else list(self.teachers)

    def needs_teachers(self) -> bool:
        lo = self.loss
        return bool(
            lo.out_weight > 0
            or lo.feat_weight > 0
            or lo.fcl_weight > 0
            or (lo.img_weight > 0 and (lo.img_phi == "teachers" or lo.img_positive != "target"))
        )


@dataclass
class TransferResult:
    """What :func:`train_transfer` leaves behind."""

    run_dir: Path
    export: Path | None
    step: int
    metrics: dict[str, float]
    model: "TransferModel | None" = None
    teachers: dict[str, nn.Module] = field(default_factory=dict)


def load_transfer_config(path: str | Path | None, teachers: Mapping[str, str] | None = None, overrides: Sequence[str] = ()) -> TransferConfig:
    """Read a transfer config; ``teachers`` (from ``--teachers``) replace the file's; overrides last."""
    cfg = load_config(TransferConfig, path, list(overrides))
    if teachers:
        cfg.teachers = dict(teachers)
    return cfg


def parse_teachers(spec: str) -> dict[str, str]:
    """``"haze=a.json,rain=b.json"`` -> ``{"haze": "a.json", "rain": "b.json"}``."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        kind, sep, path = part.partition("=")
        if not sep or not kind.strip() or not path.strip():
            raise ConfigError(f"--teachers {spec!r}: use kind=PATH[,kind=PATH...]")
        out[kind.strip()] = path.strip()
    return out


# --------------------------------------------------------------------------------------
# Data: tuples holding one sample of every kind
# --------------------------------------------------------------------------------------


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
        return {
            "input": torch.stack([it["input"] for it in items]),
            "target": torch.stack([it["target"] for it in items]),
        }


def group_batch(t: torch.Tensor) -> torch.Tensor:
    """(G, K, ...) tuples -> (K * G, ...) with kind k's samples at ``[k * G:(k + 1) * G]``."""
    return t.transpose(0, 1).reshape(t.shape[0] * t.shape[1], *t.shape[2:])


# --------------------------------------------------------------------------------------
# Networks
# --------------------------------------------------------------------------------------


class FrozenTeacher(nn.Module):
    """A teacher that never trains: no gradients, and eval mode whatever ``train()`` says."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        net.requires_grad_(False)
        super().train(False)
        self.has_features = hasattr(net, "feature_channels")
        self.feature_channels: list[int] = list(getattr(net, "feature_channels", []))
        self.size_multiple = nets.size_multiple(net)

    def train(self, mode: bool = True) -> "FrozenTeacher":
        return super().train(False)

    @torch.no_grad()
    def forward(self, x: torch.Tensor, return_features: bool = False) -> Any:
        if return_features and self.has_features:
            return self.net(x, return_features=True)
        return self.net(x)


class TransferModel(nn.Module):
    """The trained component: the student plus (optionally) the feature projectors.

    One module so one optimiser, one EMA and one data-parallel wrapper cover both; every
    trainable piece runs inside :meth:`forward` (what DDP needs to synchronise gradients).
    """

    def __init__(self, student: nn.Module, transfer: FeatureTransfer | None) -> None:
        super().__init__()
        self.student = student
        self.transfer = transfer

    def forward(
        self, x: torch.Tensor, groups: Sequence[tuple[str, slice]] = (), teacher_feats: Mapping[str, Sequence[torch.Tensor]] | None = None
    ) -> tuple[torch.Tensor, dict[str, tuple[list[torch.Tensor], ...]]]:
        """Student output, and per kind group ``(z_s, z_t, recon, f_t)`` when features are given."""
        if self.transfer is None or not teacher_feats:
            return self.student(x), {}
        out, feats = self.student(x, return_features=True)
        proj: dict[str, tuple[list[torch.Tensor], ...]] = {}
        for kind, sl in groups:
            if kind in teacher_feats:
                proj[kind] = self.transfer.project(kind, [f[sl] for f in feats], teacher_feats[kind])
        return out, proj


# --------------------------------------------------------------------------------------
# Building blocks of the stage
# --------------------------------------------------------------------------------------


def load_teachers(paths: Mapping[str, str]) -> dict[str, FrozenTeacher]:
    """Load every teacher model file (any registered architecture), frozen."""
    from ..modelfile import load_model

    return {k: FrozenTeacher(load_model(p).net) for k, p in paths.items()}


def build_transfer_datasets(cfg: TransferConfig) -> tuple[Dataset, dict[str, list[dict[str, Any]]], dict[str, Any]]:
    """Training tuples, fixed validation items per kind, and a provenance description."""
    from .. import data as D
    from ._datasets import _registry

    d, kinds = cfg.data, cfg.all_kinds()
    if not d.clean_dir:
        raise ConfigError("data.clean_dir is required (e.g. --set data.clean_dir=PATH)")
    if not Path(d.clean_dir).expanduser().is_dir():
        raise ConfigError(f"data.clean_dir {d.clean_dir}: not a folder")
    reg = _registry(d.degrade)
    train = D.SyntheticPairs(Path(d.clean_dir).expanduser(), kinds=kinds, crop=d.crop, seed=cfg.run.seed, length=d.epoch_size, registry=reg)
    val = validation_items(d.val_dir, kinds, d.val_count, d.val_crop, d.val_seed, reg) if d.val_dir and d.val_count else {}
    desc = {"source": "synthetic", "kinds": kinds, "clean_dir": d.clean_dir, "images": len(train.images), "val_dir": d.val_dir, "degrade": d.degrade}
    return KindTuples(train, kinds, counts=d.counts(kinds)), val, desc


def validation_items(val_dir: str | Path, kinds: Sequence[str], count: int, crop: int, seed: int, registry: Any = None) -> dict[str, list[dict[str, Any]]]:
    """A fixed synthetic validation set: per kind, ``count`` pairs from ``val_dir`` (seeded)."""
    from .. import data as D
    from ._datasets import _val_items

    out = {}
    for k in kinds:
        vs = D.SyntheticPairs(Path(val_dir).expanduser(), kinds=[k], crop=crop, seed=seed, hflip=False, registry=registry)
        out[k] = _val_items(vs, count)
    return out


@torch.no_grad()
def evaluate_net(net: nn.Module, items: Sequence[dict[str, Any]], device: torch.device | str = "cpu", autocast: Any = None) -> dict[str, float]:
    """Mean PSNR/SSIM (RGB, no border crop) of ``net`` on pairs, and of the inputs themselves."""
    import contextlib

    m = nets.size_multiple(net)
    po, so, pi, si = [], [], [], []
    for item in items:
        x = item["input"].unsqueeze(0).to(device)
        y = item["target"].unsqueeze(0).to(device)
        xp, h, w = _pad_to(x, m)
        with autocast() if autocast is not None else contextlib.nullcontext():
            o = net(xp)
        o = o[..., :h, :w].float().clamp(0, 1)
        po.append(float(psnr(o, y)[0]))
        so.append(float(ssim(o, y)[0]))
        pi.append(float(psnr(x, y)[0]))
        si.append(float(ssim(x, y)[0]))
    k = max(1, len(po))
    return {"psnr": sum(po) / k, "ssim": sum(so) / k, "input_psnr": sum(pi) / k, "input_ssim": sum(si) / k}


def make_val_fn(val: Mapping[str, Sequence[dict[str, Any]]], n_samples: int):  # type: ignore[no-untyped-def]
    """Per-kind PSNR/SSIM of the (EMA) student, their means, and the inputs' PSNR."""

    def val_fn(tr: Trainer) -> ValResult:
        student = tr.eval_module("model").student  # type: ignore[union-attr]
        metrics: dict[str, float] = {}
        for kind, items in val.items():
            r = evaluate_net(student, items, tr.device, tr.autocast)
            metrics.update({f"psnr_{kind}": r["psnr"], f"ssim_{kind}": r["ssim"], f"input_psnr_{kind}": r["input_psnr"]})
        kinds = list(val)
        metrics["psnr"] = sum(metrics[f"psnr_{k}"] for k in kinds) / max(1, len(kinds))
        metrics["ssim"] = sum(metrics[f"ssim_{k}"] for k in kinds) / max(1, len(kinds))
        images = {}
        for i, (kind, items) in enumerate(val.items()):
            if i >= n_samples or not items:
                break
            x = items[0]["input"].unsqueeze(0).to(tr.device)
            xp, h, w = _pad_to(x, nets.size_multiple(student))
            o = student(xp)[..., :h, :w].float().clamp(0, 1)
            images[f"{kind}_input_output_target"] = torch.cat([x[0], o[0], items[0]["target"].to(tr.device)], dim=-1).cpu()
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


# --------------------------------------------------------------------------------------
# The stage
# --------------------------------------------------------------------------------------


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
    unknown = sorted(set(cfg.loss.kind_weights) - set(kinds))
    if unknown:
        raise ConfigError(f"loss.kind_weights names kind(s) {unknown} that are not trained (kinds: {kinds})")
    unknown = sorted(set(cfg.data.kind_mix) - set(kinds))
    if unknown:
        raise ConfigError(f"data.kind_mix names kind(s) {unknown} that are not trained (kinds: {kinds})")
    counts = cfg.data.counts(kinds)
    n_slots = sum(counts.values())  # images in one tuple
    if cfg.data.batch_size % n_slots:
        mix = " + ".join(f"{c} {k}" for k, c in counts.items())
        raise ConfigError(f"data.batch_size {cfg.data.batch_size} must be a multiple of the tuple size {n_slots} ({mix})")
    # Kind k's samples sit at slots [start, stop) of every tuple (KindTuples' order).
    stops = list(accumulate(counts.values()))
    slots = {k: (stop - counts[k], stop) for k, stop in zip(kinds, stops)}
    lo = cfg.loss
    tr = Trainer(cfg.run, cfg, global_batch=cfg.data.batch_size // n_slots, images_per_sample=n_slots)
    try:
        # --- teachers: frozen, added without an optimiser (checkpointed, never trained)
        frozen: dict[str, FrozenTeacher] = {}
        if cfg.needs_teachers():
            raw = dict(teachers) if teachers is not None else load_teachers(cfg.teachers)
            missing = [k for k in kinds if k not in raw]
            if missing:
                raise ConfigError(f"no teacher for kind(s) {missing}: --teachers {','.join(f'{k}=PATH' for k in missing)}")
            for k in kinds:
                t = raw[k] if isinstance(raw[k], FrozenTeacher) else FrozenTeacher(raw[k])
                tr.add(f"teacher_{k}", t)
                frozen[k] = t
                if not t.has_features and (lo.feat_weight > 0 or lo.fcl_weight > 0 or (lo.img_weight > 0 and lo.img_phi == "teachers")):
                    tr.log(f"[yellow]teacher {k} ({type(t.net).__name__}) has no features: output-only distillation for {k}[/]")
        feat_kinds = [k for k in kinds if k in frozen and frozen[k].has_features]

        # --- student (+ projectors): the one trained component
        student = cfg.model.build()
        use_feat = (lo.feat_weight > 0 or lo.fcl_weight > 0) and bool(feat_kinds)
        if use_feat and not hasattr(student, "feature_channels"):
            raise ConfigError(f"student {cfg.model.arch} has no features: set loss.feat_weight=0 and loss.fcl_weight=0")
        transfer = FeatureTransfer(student.feature_channels, {k: frozen[k].feature_channels for k in feat_kinds}) if use_feat else None  # type: ignore[arg-type]
        model = tr.add("model", TransferModel(student, transfer), cfg.optim, cfg.schedule, ema=True)

        # --- phi for the image-grain contrast, per kind (frozen; not checkpointed: rebuilt)
        phis: dict[str, nn.Module] = {}
        if lo.img_weight > 0 and lo.img_phi == "teachers":
            phis = {k: TeacherEncoderFeatures(frozen[k].net) for k in feat_kinds}
        elif lo.img_weight > 0 and lo.img_phi == "vgg":
            vgg = VGGFeatures(lo.vgg_path or "", lo.vgg_layers).to(tr.device)  # one network for every kind
            phis = {k: vgg for k in kinds}

        if train_set is None:
            train_set, built_val, data_desc = build_transfer_datasets(cfg)
            if val_items is None:
                val_items = built_val

        def step(t: Trainer, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
            if batch["input"].shape[1] != n_slots:
                raise ConfigError(f"training tuples hold {batch['input'].shape[1]} images, the kinds and data.kind_mix need {n_slots}")
            x, y = group_batch(batch["input"]), group_batch(batch["target"])
            g = batch["input"].shape[0]  # tuples on this process
            groups = [(k, slice(a * g, b * g)) for k, (a, b) in slots.items()]
            need_t_out = lo.out_weight > 0 or (lo.img_weight > 0 and lo.img_positive != "target")
            t_out: dict[str, torch.Tensor] = {}
            t_feats: dict[str, list[torch.Tensor]] = {}
            with t.autocast():
                if frozen and (need_t_out or use_feat):
                    for k, sl in groups:  # one teacher forward per kind group
                        r = frozen[k](x[sl], return_features=use_feat and k in feat_kinds)
                        if isinstance(r, tuple):
                            t_out[k], t_feats[k] = r[0], list(r[1])
                        else:
                            t_out[k] = r
                out, proj = model(x, groups, t_feats if use_feat else None)
            terms: dict[str, torch.Tensor] = {}
            if lo.gt_weight > 0:
                # A mean per kind group (then over kinds), so kind_mix adds data, not loss share.
                terms["gt"] = _kind_mean({k: gt_loss(out[sl], y[sl]) for k, sl in groups}, lo.kind_weights)
            if lo.out_weight > 0:
                terms["out"] = _kind_mean({k: output_distill(out[sl], t_out[k]) for k, sl in groups}, lo.kind_weights)
            if lo.feat_weight > 0 and proj:
                terms["feat"] = _kind_mean({k: feature_transfer_loss(zs, zt, rec, ft, lo.recon_weight) for k, (zs, zt, rec, ft) in proj.items()}, lo.kind_weights)
            if lo.img_weight > 0 and phis:
                terms["img"] = _image_contrast(t, phis, groups, out, x, y, t_out, lo)
            if lo.fcl_weight > 0 and proj:
                terms["fcl"] = _feature_grain(t, proj, frozen, x, groups, lo)
            weights = {"gt": lo.gt_weight, "out": lo.out_weight, "feat": lo.feat_weight, "img": lo.img_weight, "fcl": lo.fcl_weight}
            loss = sum((weights[n] * v for n, v in terms.items()), torch.zeros((), device=x.device))
            t.optimize("model", loss)
            return {"loss": loss.detach(), **{n: v.detach() for n, v in terms.items()}}

        val_fn = make_val_fn(val_items, cfg.run.val_samples) if val_items else None
        tr.fit(train_set, step, val_fn, workers=cfg.data.workers, stop_after=stop_after)
        export = _export_student(tr, cfg, data_desc) if tr.step >= cfg.run.steps and cfg.run.export else None
        comp = tr.components["model"]
        return TransferResult(tr.run_dir, export, tr.step, dict(tr.last_metrics), comp.module, dict(frozen))  # type: ignore[arg-type]
    finally:
        tr.close()


def _image_contrast(
    t: Trainer,
    phis: Mapping[str, nn.Module],
    groups: Sequence[tuple[str, slice]],
    out: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    t_out: Mapping[str, torch.Tensor],
    lo: TransferLossConfig,
) -> torch.Tensor:
    """Image-grain ratio contrast, per kind group with that group's phi, averaged over groups
    (weighted by ``lo.kind_weights``)."""
    per_group: dict[str, torch.Tensor] = {}
    for k, sl in groups:
        phi = phis.get(k)
        if phi is None:
            continue
        with t.autocast():
            anchor = phi(out[sl])  # gradients flow to the student's output, not into phi
            with torch.no_grad():
                pos = []
                if lo.img_positive in ("teacher", "both"):
                    pos.append(phi(t_out[k]))
                if lo.img_positive in ("target", "both"):
                    pos.append(phi(y[sl]))
                negs = []
                if lo.img_negatives in ("soft", "both"):
                    negs.append(phi(x[sl]))  # the sample's own degraded input
                if lo.img_negatives in ("hard", "both"):
                    negs.append(batch_negatives(phi(x)))  # every degraded input of the batch
        terms = [ratio_contrast(anchor, p, n) for p in pos for n in negs]
        per_group[k] = torch.stack(terms).mean()
    return _kind_mean(per_group, lo.kind_weights) if per_group else torch.zeros((), device=out.device)


def _kind_mean(per_kind: Mapping[str, torch.Tensor], weights: Mapping[str, float]) -> torch.Tensor:
    """Mean over kinds of each kind's loss times its weight (1 when not named)."""
    return torch.stack([float(weights.get(k, 1.0)) * v for k, v in per_kind.items()]).mean()


def _feature_grain(
    t: Trainer,
    proj: Mapping[str, tuple[list[torch.Tensor], ...]],
    frozen: Mapping[str, FrozenTeacher],
    x: torch.Tensor,
    groups: Sequence[tuple[str, slice]],
    lo: TransferLossConfig,
) -> torch.Tensor:
    """Feature-grain InfoNCE over the whole batch (all groups), one level at a time."""
    kinds = list(proj)
    levels = {len(proj[k][0]) for k in kinds}
    if len(levels) != 1 or len({tuple(z.shape[1:]) for k in kinds for z in proj[k][0][:1]}) != 1:
        # Teachers with different depths: contrast within each group only.
        return torch.stack([feature_contrast(proj[k][0], proj[k][1], tau=lo.tau) for k in kinds]).mean()
    n_lv = levels.pop()
    z_s = [torch.cat([proj[k][0][lv] for k in kinds]) for lv in range(n_lv)]
    z_t = [torch.cat([proj[k][1][lv] for k in kinds]) for lv in range(n_lv)]
    extra = None
    if lo.fcl_other_teachers and len(kinds) > 1:
        extra = _other_teacher_negatives(t, frozen, x, groups, kinds, n_lv)
    return feature_contrast(z_s, z_t, extra, tau=lo.tau)


@torch.no_grad()
def _other_teacher_negatives(
    t: Trainer, frozen: Mapping[str, FrozenTeacher], x: torch.Tensor, groups: Sequence[tuple[str, slice]], kinds: Sequence[str], n_lv: int
) -> list[torch.Tensor]:
    """Per level (N, K-1, D): the other teachers' projected, pooled features of each sample."""
    transfer: FeatureTransfer = t.components["model"].module.transfer  # type: ignore[assignment]
    per_level: list[list[torch.Tensor]] = [[] for _ in range(n_lv)]
    for k, sl in groups:
        if k not in kinds:
            continue
        others = []
        for j in kinds:
            if j == k:
                continue
            with t.autocast():
                _, fj = frozen[j](x[sl], return_features=True)
                # Teacher j's projectors at its own resolution: the vectors are pooled anyway.
                zj = transfer.teachers[j](list(fj)[len(fj) - transfer.levels[j] :])
            others.append([pool_normalize(z) for z in zj])
        for lv in range(n_lv):
            per_level[lv].append(torch.stack([o[lv] for o in others], dim=1))
    return [torch.cat(v) for v in per_level]
