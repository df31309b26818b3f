"""Stage 2: unsupervised adaptation of the student to real photos (METHOD.md, "Stage 2").

The student (initialised from a model file, normally the stage-1 student) is fine-tuned on
unpaired real degraded photos with

- an adversarial loss: a PatchGAN discriminator D (spectral norm) judges restored real photos
  against unpaired clean photos (LSGAN or hinge; D/G step ratio; optional lazy R1);
- extended instance contrast: anchor S(r), positive = frozen pseudo-target (the matching
  teacher's output where the photo's folder gives its kind and a teacher was given, else the
  frozen initial student's), negative = r (``losses.extended``);
- cluster-grained contrast: a frozen embedding network g (the initial student's or a teacher's
  encoder) and prototypes of clean and of degraded embeddings, refreshed every N steps, with
  InfoNCE over prototypes (``losses.cluster``);
- synthetic replay: a batch of synthetic pairs per step with stage 1's supervised terms
  (output distillation to the kind's teacher when one is given, and the ground-truth L1), so
  the student does not forget what it learnt.

L_G = adv * L_adv + cluster * L_cgcl + ext * L_ext + syn * L_syn.

A :class:`~uniremoval.train.guard.StabilityGuard` keeps non-finite losses and exploding
gradients out of the run: it rolls back to the last good state, halves the learning rates,
logs and goes on; checkpoints are only written from finite states. The loop is the shared
:class:`~uniremoval.train.trainer.Trainer`, so the stage resumes, validates, logs and exports
like every other.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from .. import nets
from ..degrade import PRIMARY_KINDS
from ..losses import adversarial as adv
from ..losses.cluster import EncoderEmbedder, PrototypeBank, prototype_nce
from ..losses.extended import extended_contrast, pseudo_targets
from ..metrics import psnr
from ..train.config import ConfigError, ModelConfig, OptimConfig, RunConfig, ScheduleConfig, load_config
from ..train.guard import GuardConfig, StabilityGuard
from ..train.trainer import Trainer, ValResult


# ---------------------------------------------------------------------------- config


@dataclass
class AdaptDataConfig:
    """Unpaired real photos, clean photos, synthetic replay and validation sets."""

    #: Real degraded photos; top subfolders hazy/rain/blur give the kind, others are unknown.
    real_dir: str | None = None
    #: Keep only real photos of these kinds (haze, rain, blur, unknown); empty: all.
    real_kinds: list[str] = field(default_factory=list)
    #: Clean photos: the discriminator's "real" class and the clean prototypes.
    clean_dir: str | None = None
    #: Clean photos degraded on the fly for the replay batch (default: clean_dir).
    synthetic_dir: str | None = None
    #: Clean photos degraded with fixed seeds for validation PSNR (none: no PSNR).
    val_dir: str | None = None
    #: Held-out real photos scored with NIQE in validation (optional; costs ~0.1 s a photo).
    real_val_dir: str | None = None
    #: Kinds of the replayed synthetic pairs.
    kinds: list[str] = field(default_factory=lambda: list(PRIMARY_KINDS))
    crop: int = 128
    #: Photos per sub-batch: each step sees batch_size real, clean and synthetic crops.
    batch_size: int = 4
    workers: int = 2
    val_count: int = 12
    val_crop: int = 128
    val_seed: int = 12345
    real_val_count: int = 6
    real_val_crop: int = 256
    #: Items per epoch (each draws a random real, clean and synthetic crop).
    epoch_size: int = 4000
    degrade: dict[str, Any] = field(default_factory=dict)

    def validate(self, where: str) -> None:
        if self.batch_size < 1 or self.crop < 32 or self.epoch_size < 1:
            raise ConfigError(f"{where}: batch_size >= 1, crop >= 32, epoch_size >= 1 required")


@dataclass
class GanConfig:
    """Discriminator and adversarial loss."""

    loss: Literal["lsgan", "hinge"] = "lsgan"
    #: D updates per G update (1: alternate; 2: two D steps per step; 0.5: every other step).
    d_ratio: float = 1.0
    #: R1 penalty weight gamma (0: off), applied lazily every r1_every D steps (scaled up).
    r1_gamma: float = 0.0
    r1_every: int = 4
    #: Steps at the start where only D learns (L_adv of G is 0), so G is not pushed by a random D.
    d_warmup: int = 0
    disc: ModelConfig = field(default_factory=lambda: ModelConfig(arch="patchgan", args={"width": 32, "n_layers": 3}))


@dataclass
class ClusterConfig:
    """Cluster-grained contrast: frozen embedding network and prototype bank."""

    #: Embedding network g: "student" (the frozen initial student's encoder) or a teacher kind.
    embedder: str = "student"
    pool: Literal["mean", "meanstd"] = "meanstd"
    prototypes: int = 4
    memory: int = 256
    method: Literal["kmeans", "running"] = "kmeans"
    momentum: float = 0.9
    refresh_every: int = 50
    tau: float = 0.1


@dataclass
class AdaptLossConfig:
    """Weights of the generator's loss terms (METHOD.md starting points)."""

    adv: float = 0.1
    cluster: float = 0.1
    ext: float = 0.1
    syn: float = 1.0
    #: Within L_syn: output distillation to the kind's teacher (when given) and ground truth.
    syn_distill: float = 1.0
    syn_gt: float = 1.0
    #: Features phi of the extended contrast: "student" (initial student's encoder) or a kind.
    phi: str = "student"


@dataclass
class AdaptConfig:
    """A stage-2 experiment."""

    #: Model file of the student to adapt (stage 1's export).
    student: str | None = None
    #: Teachers as kind -> model file (optional; pseudo-targets for real photos of known kind).
    teachers: dict[str, str] = field(default_factory=dict)
    run: RunConfig = field(default_factory=lambda: RunConfig(name="adapt", best_metric="psnr"))
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=2e-5, betas=[0.5, 0.999], grad_clip=1.0))
    optim_d: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-4, betas=[0.5, 0.999], grad_clip=10.0))
    schedule: ScheduleConfig = field(default_factory=lambda: ScheduleConfig(name="constant", warmup_steps=0))
    gan: GanConfig = field(default_factory=GanConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    loss: AdaptLossConfig = field(default_factory=AdaptLossConfig)
    guard: GuardConfig = field(default_factory=GuardConfig)
    data: AdaptDataConfig = field(default_factory=AdaptDataConfig)


def parse_teachers(spec: str | None) -> dict[str, str]:
    """``haze=PATH,rain=PATH`` -> {"haze": PATH, "rain": PATH}."""
    out: dict[str, str] = {}
    for part in (spec or "").split(","):
        part = part.strip()
        if not part:
            continue
        if "=" not in part:
            raise ConfigError(f"--teachers {part!r}: use kind=PATH[,kind=PATH...]")
        k, _, p = part.partition("=")
        out[k.strip()] = p.strip()
    return out


def load_adapt_config(path: str | Path | None, overrides: Sequence[str] = ()) -> AdaptConfig:
    """Read a stage-2 config (YAML) with ``--set`` overrides."""
    return load_config(AdaptConfig, path, list(overrides))


# ---------------------------------------------------------------------------- data


class AdaptItems(Dataset):
    """One item = a random real crop, a random clean crop and a random synthetic pair.

    Which photo of each set, its crop and its degradation are a function of (seed, epoch,
    index), like every dataset here, so the stage resumes exactly and worker count does not
    matter. Keys: ``real``, ``real_kind``, ``real_name``, ``clean``, ``syn_input``,
    ``syn_target``, ``syn_kind``.
    """

    def __init__(self, real: Dataset, clean: Dataset, synthetic: Dataset, length: int, seed: int) -> None:
        self.real, self.clean, self.synthetic = real, clean, synthetic
        self.length, self.seed, self.epoch = int(length), int(seed), 0

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _draw(self, ds: Any, rng: np.random.Generator, index: int) -> dict[str, Any]:
        # Give the sub-dataset a fresh "epoch" per (epoch, index): its crop/flip seed is then
        # unique even when the same photo is drawn many times in one epoch.
        ds.set_epoch(self.epoch * self.length + index)
        return ds[int(rng.integers(len(ds)))]

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        r = self._draw(self.real, rng, index)
        c = self._draw(self.clean, rng, index)
        s = self._draw(self.synthetic, rng, index)
        return {
            "real": r["input"], "real_kind": r["kind"], "real_name": r["name"],
            "clean": c["input"],
            "syn_input": s["input"], "syn_target": s["target"], "syn_kind": s["kind"],
        }


def _need_dir(value: str | None, key: str) -> Path:
    if not value:
        raise ConfigError(f"{key} is required")
    p = Path(value).expanduser()
    if not p.is_dir():
        raise ConfigError(f"{key} {value}: not a folder")
    return p


def build_adapt_data(cfg: AdaptConfig) -> tuple[Dataset, list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """Training items, synthetic validation pairs, held-out real photos, provenance."""
    from .. import data as D
    from ._datasets import _registry, _val_items

    d = cfg.data
    real_dir = _need_dir(d.real_dir, "data.real_dir (--real)")
    clean_dir = _need_dir(d.clean_dir, "data.clean_dir (--clean)")
    syn_dir = _need_dir(d.synthetic_dir or d.clean_dir, "data.synthetic_dir")
    reg = _registry(d.degrade)
    real = D.RealPhotos(real_dir, crop=d.crop, seed=cfg.run.seed, hflip=True, full_check=False, include=d.real_kinds or None)
    if len(real) == 0:
        raise ConfigError(f"data.real_dir {real_dir}: no readable photos")
    clean = D.RealPhotos(clean_dir, crop=d.crop, seed=cfg.run.seed + 1, hflip=True, full_check=False)
    if len(clean) == 0:
        raise ConfigError(f"data.clean_dir {clean_dir}: no readable photos")
    syn = D.SyntheticPairs(syn_dir, kinds=d.kinds, crop=d.crop, seed=cfg.run.seed + 2, registry=reg, full_check=False)
    items = AdaptItems(real, clean, syn, d.epoch_size, cfg.run.seed)
    val: list[dict[str, Any]] = []
    if d.val_dir and d.val_count:
        vs = D.SyntheticPairs(_need_dir(d.val_dir, "data.val_dir"), kinds=d.kinds, crop=d.val_crop, seed=d.val_seed, hflip=False, registry=reg)
        val = [dict(it, kind=vs.kind_of(round(i * len(vs) / min(d.val_count, len(vs))))) for i, it in enumerate(_val_items(vs, d.val_count))]
    real_val: list[dict[str, Any]] = []
    if d.real_val_dir and d.real_val_count:
        rv = D.RealPhotos(_need_dir(d.real_val_dir, "data.real_val_dir"), crop=None, full_check=False, include=d.real_kinds or None)
        n = min(d.real_val_count, len(rv))
        for i in range(n):
            it = rv[round(i * len(rv) / n)]
            x = it["input"]
            c = d.real_val_crop  # centre crop keeps NIQE cheap and sizes a multiple of 16
            h, w = x.shape[-2:]
            ch, cw = min(c, h) // 16 * 16, min(c, w) // 16 * 16
            y0, x0 = (h - ch) // 2, (w - cw) // 2
            real_val.append({"input": x[:, y0 : y0 + ch, x0 : x0 + cw], "kind": it["kind"], "name": it["name"]})
    desc = {
        "real_dir": str(real_dir), "real_photos": len(real), "real_kinds": {k: real.item_kinds().count(k) for k in sorted(set(real.item_kinds()))},
        "clean_dir": str(clean_dir), "clean_photos": len(clean), "synthetic_dir": str(syn_dir), "kinds": d.kinds,
        "val_dir": d.val_dir, "real_val_dir": d.real_val_dir,
    }
    return items, val, real_val, desc


# ---------------------------------------------------------------------------- networks


@dataclass
class Frozen:
    """The frozen networks of stage 2 (never trained, never checkpointed: rebuilt from files)."""

    student0: nn.Module
    teachers: dict[str, nn.Module]
    phi: nn.Module
    embed: EncoderEmbedder
    arch: str
    arch_args: dict[str, Any]
    kinds: list[str]
    files: dict[str, str]


def _frozen_copy(net: nn.Module, device: torch.device) -> nn.Module:
    net = net.to(device).eval()
    net.requires_grad_(False)
    return net


def load_frozen(cfg: AdaptConfig, device: torch.device) -> tuple[nn.Module, Frozen]:
    """Load the student to train (a trainable copy of ``cfg.student``) and the frozen networks:
    the initial student, the teachers, phi (extended contrast) and g (cluster contrast)."""
    from ..losses.contrast import TeacherEncoderFeatures
    from ..modelfile import ModelError, load_model

    files: dict[str, str] = {}
    try:
        if not cfg.student:
            raise ConfigError("student is required (--student PATH: the stage-1 model file)")
        lm = load_model(cfg.student)
        arch, arch_args, kinds = lm.config.arch, dict(lm.config.arch_args), list(lm.config.kinds)
        trainable, frozen0 = lm.net, load_model(cfg.student).net
        files["student"] = f"{lm.path} sha256:{lm.config.sha256}"
        teachers: dict[str, nn.Module] = {}
        for kind, path in cfg.teachers.items():
            lt = load_model(path)
            teachers[kind] = _frozen_copy(lt.net, device)
            files[f"teacher_{kind}"] = f"{lt.path} sha256:{lt.config.sha256}"
    except ModelError as e:
        raise ConfigError(str(e)) from None
    trainable.requires_grad_(True)
    trainable.train()
    frozen0 = _frozen_copy(frozen0, device)

    def pick(which: str, what: str) -> nn.Module:
        if which == "student":
            return frozen0
        if which not in teachers:
            raise ConfigError(f"{what}: {which!r} is neither 'student' nor a kind with a teacher ({', '.join(teachers) or 'none given'})")
        return teachers[which]

    phi = TeacherEncoderFeatures(pick(cfg.loss.phi, "loss.phi")).to(device)
    embed = EncoderEmbedder(pick(cfg.cluster.embedder, "cluster.embedder"), pool=cfg.cluster.pool).to(device)
    return trainable, Frozen(frozen0, teachers, phi, embed, arch, arch_args, kinds, files)


# ---------------------------------------------------------------------------- validation


def _pad(x: torch.Tensor, m: int) -> tuple[torch.Tensor, int, int]:
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    if (-h) % m or (-w) % m:
        x = F.pad(x, (0, (-w) % m, 0, (-h) % m), mode="reflect")
    return x, h, w


def make_val_fn(val: Sequence[Mapping[str, Any]], real_val: Sequence[Mapping[str, Any]], frozen: Frozen, n_samples: int):  # type: ignore[no-untyped-def]
    """Validation: synthetic PSNR (overall and per kind) of the EMA student and of the initial
    student (computed once: the forgetting budget is psnr - psnr_init >= -0.3 dB), and NIQE on
    held-out real photos (with the initial student's NIQE for comparison)."""
    cache: dict[str, float] = {}

    def restore(net: nn.Module, x: torch.Tensor, tr: Trainer) -> torch.Tensor:
        xp, h, w = _pad(x.unsqueeze(0).to(tr.device), nets.size_multiple(net))
        with tr.autocast():
            out = net(xp)
        return out[..., :h, :w].float().clamp(0, 1)

    def val_fn(tr: Trainer) -> ValResult:
        from ..metrics import niqe

        net = tr.eval_module("student")
        metrics: dict[str, float] = {}
        images: dict[str, torch.Tensor] = {}
        if val:
            per: dict[str, list[float]] = {}
            per0: dict[str, list[float]] = {}
            for it in val:
                y = it["target"].unsqueeze(0).to(tr.device)
                per.setdefault(it["kind"], []).append(float(psnr(restore(net, it["input"], tr), y)[0]))
                if "psnr_init" not in cache:
                    per0.setdefault(it["kind"], []).append(float(psnr(restore(frozen.student0, it["input"], tr), y)[0]))
            allv = [v for vs in per.values() for v in vs]
            metrics["psnr"] = sum(allv) / len(allv)
            for k, vs in per.items():
                metrics[f"psnr_{k}"] = sum(vs) / len(vs)
            if "psnr_init" not in cache:
                all0 = [v for vs in per0.values() for v in vs]
                cache["psnr_init"] = sum(all0) / len(all0)
            metrics["psnr_init"] = cache["psnr_init"]
        if real_val:
            scores, scores0 = [], []
            for i, it in enumerate(real_val):
                out = restore(net, it["input"], tr)
                scores.append(float(niqe(out[0].cpu())))
                if "niqe_init" not in cache:
                    scores0.append(float(niqe(restore(frozen.student0, it["input"], tr)[0].cpu())))
                if i < n_samples:
                    images[f"real_{i}_input_init_adapted"] = torch.cat([it["input"].to(tr.device), restore(frozen.student0, it["input"], tr)[0], out[0]], dim=-1).cpu()
            fin = [s for s in scores if np.isfinite(s)]
            metrics["niqe"] = float(np.mean(fin)) if fin else float("nan")
            if "niqe_init" not in cache:
                fin0 = [s for s in scores0 if np.isfinite(s)]
                cache["niqe_init"] = float(np.mean(fin0)) if fin0 else float("nan")
            metrics["niqe_init"] = cache["niqe_init"]
        return ValResult(metrics, images)

    return val_fn


# ---------------------------------------------------------------------------- training


@dataclass
class AdaptResult:
    """What :func:`train_adapt` leaves behind."""

    run_dir: Path
    export: Path | None
    step: int
    metrics: dict[str, float]
    rollbacks: int
    student: nn.Module | None = None


def _syn_loss(out: torch.Tensor, x: torch.Tensor, y: torch.Tensor, kinds: Sequence[str], fz: Frozen, cfg: AdaptLossConfig) -> torch.Tensor:
    """Stage 1's supervised terms on the replayed synthetic pairs: output distillation to the
    kind's teacher (samples whose kind has one) + ground-truth L1. Feature transfer and the
    multi-grained contrast of stage 1 are left out of the replay: they cost three extra
    network passes per step and the output terms are what keeps the mapping in place."""
    from ..losses.distill import gt_loss, output_distill

    loss = cfg.syn_gt * gt_loss(out, y)
    if cfg.syn_distill > 0 and fz.teachers:
        targets, _ = pseudo_targets(x, kinds, fz.teachers, fz.student0)
        mask = torch.tensor([k in fz.teachers for k in kinds], device=out.device)
        if bool(mask.any()):
            loss = loss + cfg.syn_distill * output_distill(out[mask], targets[mask])
    return loss


def train_adapt(
    cfg: AdaptConfig,
    train_set: Dataset | None = None,
    val_items: Sequence[Mapping[str, Any]] | None = None,
    real_val: Sequence[Mapping[str, Any]] | None = None,
    stop_after: int | None = None,
) -> AdaptResult:
    """Adapt (or resume adapting) a student to real photos; export its EMA at ``run.steps``.

    By default data come from ``cfg.data``; tests pass ``train_set`` (items as
    :class:`AdaptItems` yields) and validation items. ``stop_after`` ends early as if killed after that step.
    """
    if cfg.data.crop % 16 and train_set is None:
        raise ConfigError("data.crop must be a multiple of 16 (the networks' size multiple)")
    tr = Trainer(cfg.run, cfg, global_batch=cfg.data.batch_size)
    try:
        desc: Any = None
        if train_set is None:
            train_set, built_val, built_real, desc = build_adapt_data(cfg)
            val_items = built_val if val_items is None else val_items
            real_val = built_real if real_val is None else real_val
        net, fz = load_frozen(cfg, tr.device)
        S = tr.add("student", net, cfg.optim, cfg.schedule, ema=True)
        D = tr.add("disc", nets.build(cfg.gan.disc.arch, **cfg.gan.disc.args), cfg.optim_d)
        dim = fz.embed.dim
        if dim < 0:
            with torch.no_grad():
                dim = int(fz.embed(torch.zeros(1, 3, 32, 32, device=tr.device)).shape[1])
        groups = ["clean"] + [k for k in PRIMARY_KINDS] + [k for k in cfg.data.kinds if k not in PRIMARY_KINDS] + ["unknown"]
        cc = cfg.cluster
        bank = PrototypeBank(groups, dim, cc.prototypes, cc.memory, cc.method, cc.momentum, seed=cfg.run.seed)
        tr.add("bank", bank)  # frozen component: checkpointed and resumed with the run
        bank = tr.components["bank"].module  # type: ignore[assignment]
        guard = StabilityGuard(tr, cfg.guard, extra=["bank"]).install() if cfg.guard.enabled else None
        L, G = cfg.loss, cfg.gan

        def step(t: Trainer, b: dict[str, Any]) -> dict[str, Any]:
            s = t.step  # 0-based index of this step
            if guard is not None:
                guard.maybe_snapshot()
            real, clean, kinds = b["real"], b["clean"], list(b["real_kind"])
            logs: dict[str, Any] = {}
            # -- prototype bank: embed clean and real degraded photos with the frozen g
            with torch.no_grad():
                bank.push("clean", fz.embed(clean))
                er = fz.embed(real)
                for grp in set(kinds):
                    idx = [i for i, k in enumerate(kinds) if k == grp]
                    bank.push(grp if grp in bank.groups else "unknown", er[idx])
                if s % cc.refresh_every == 0:
                    bank.refresh()
            # -- discriminator: clean photos are "real", restored real photos "fake"
            n_d = adv.d_steps_at(s, G.d_ratio)
            if n_d:
                with torch.no_grad(), t.autocast():
                    fake = S(real).float().clamp(0, 1)
                for j in range(n_d):
                    use_r1 = G.r1_gamma > 0 and (s * max(n_d, 1) + j) % G.r1_every == 0
                    c_in = clean.detach().requires_grad_(use_r1)
                    with t.autocast():
                        lr_, lf_ = D(c_in), D(fake)
                    ld = adv.d_loss(lr_, lf_, G.loss)
                    if use_r1:
                        # lazy R1 (StyleGAN2): applied every r1_every D steps, scaled to match
                        ld = ld + 0.5 * G.r1_gamma * G.r1_every * adv.r1_penalty(lr_, c_in)
                    if guard is not None and not guard.loss_ok("disc", ld):
                        return {"rollback": 1.0}
                    norm = t.optimize("disc", ld)
                    if guard is not None and not guard.grad_ok("disc", norm):
                        return {"rollback": 1.0}
                logs["d_loss"] = ld.detach()
                logs["d_real"] = lr_.detach().float().mean()
                logs["d_fake"] = lf_.detach().float().mean()
            # -- generator (student)
            with t.autocast():
                out = S(real)
                syn_out = S(b["syn_input"])
            out_c = out.float().clamp(0, 1)
            total = out.new_zeros((), dtype=torch.float32)
            if L.adv > 0 and s >= G.d_warmup:
                with t.autocast():
                    l_adv = adv.g_loss(D(out_c), G.loss)
                total = total + L.adv * l_adv
                logs["g_adv"] = l_adv.detach()
            if L.ext > 0:
                pseudo, _ = pseudo_targets(real, kinds, fz.teachers, fz.student0)
                with t.autocast():
                    l_ext = extended_contrast(fz.phi, out_c, pseudo, real)
                total = total + L.ext * l_ext
                logs["ext"] = l_ext.detach()
            if L.cluster > 0:
                with t.autocast():
                    emb = fz.embed(out_c)
                l_cg = prototype_nce(emb, bank.positives(), bank.negatives(), cc.tau)
                total = total + L.cluster * l_cg
                logs["cgcl"] = l_cg.detach()
            if L.syn > 0:
                l_syn = _syn_loss(syn_out.float(), b["syn_input"], b["syn_target"], list(b["syn_kind"]), fz, L)
                total = total + L.syn * l_syn
                logs["syn"] = l_syn.detach()
            total = fault_hook(total, s)
            if guard is not None and not guard.loss_ok("student", total):
                return {"rollback": 1.0}
            norm = t.optimize("student", total)
            if guard is not None and not guard.grad_ok("student", norm):
                return {"rollback": 1.0}
            logs["g_loss"] = total.detach()
            if norm is not None:
                logs["g_grad_norm"] = norm
            return logs

        val_fn = make_val_fn(val_items or [], real_val or [], fz, cfg.run.val_samples) if (val_items or real_val) else None
        tr.fit(train_set, step, val_fn, workers=cfg.data.workers, stop_after=stop_after)
        export = None
        if tr.step >= cfg.run.steps and cfg.run.export:
            data = dict(desc or {}, inputs=fz.files, rollbacks=guard.events if guard else [])
            export = tr.export("student", fz.arch, fz.arch_args, fz.kinds, data=data)
        comp = tr.components["student"]
        return AdaptResult(tr.run_dir, export, tr.step, dict(tr.last_metrics), guard.rollbacks if guard else 0, comp.ema.module if comp.ema else comp.module)
    finally:
        tr.close()


def fault_hook(total: torch.Tensor, step: int) -> torch.Tensor:
    """Identity; a seam for tests to inject a fault (e.g. a NaN loss at a chosen step)."""
    return total
