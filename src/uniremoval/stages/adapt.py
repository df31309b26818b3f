"""Stage 2: unsupervised adaptation of the student to real photos (docs/method.md, "Stage 2").

The student (initialised from a model file, normally the stage-1 student) is fine-tuned on
unpaired real degraded photos with an adversarial loss (a PatchGAN discriminator D with
spectral norm judges restored real photos against unpaired clean photos; LSGAN or hinge; D/G
step ratio; optional lazy R1), extended instance contrast, cluster-grained contrast over a
prototype bank refreshed every N steps, and synthetic replay of stage 1's supervised terms, so
the student does not forget what it learnt. The generator's terms are one table
(:mod:`.adapt_losses`)::

    L_G = adv * L_adv + ext * L_ext + cluster * L_cgcl + syn * L_syn

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

import torch
from torch import nn
from torch.utils.data import Dataset

from .. import nets
from ..degrade import PRIMARY_KINDS
from ..losses import adversarial as adv
from ..losses.cluster import EncoderEmbedder, PrototypeBank
from ..train.config import ConfigError, ModelConfig, OptimConfig, RunConfig, ScheduleConfig, load_config
from ..train.guard import GuardConfig, StabilityGuard
from ..train.trainer import Trainer
from .adapt_data import AdaptDataConfig, AdaptItems, build_adapt_data, make_val_fn
from .adapt_losses import TERMS, AdaptLossConfig, AdaptStep, Frozen
from .common import parse_teachers, training_prior
from .terms import weighted_sum

__all__ = [
    "AdaptDataConfig", "AdaptItems", "AdaptLossConfig", "AdaptConfig", "GanConfig", "ClusterConfig", "Frozen", "AdaptResult",
    "parse_teachers", "load_adapt_config", "build_adapt_data", "load_frozen", "make_val_fn", "train_adapt", "fault_hook",
]


# ---------------------------------------------------------------------------- config


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


def load_adapt_config(path: str | Path | None, overrides: Sequence[str] = (), fixed: Mapping[str, Any] | None = None) -> AdaptConfig:
    """Read a stage-2 config (YAML); ``fixed`` (typed values) is merged over the file, then
    the ``--set`` overrides."""
    return load_config(AdaptConfig, path, list(overrides), fixed=fixed)


# ---------------------------------------------------------------------------- networks


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


def _push_bank(bank: PrototypeBank, fz: Frozen, clean: torch.Tensor, real: torch.Tensor, kinds: Sequence[str], refresh: bool) -> None:
    """Embed clean and real degraded photos with the frozen g into the prototype bank."""
    with torch.no_grad():
        bank.push("clean", fz.embed(clean))
        er = fz.embed(real)
        for grp in set(kinds):
            idx = [i for i, k in enumerate(kinds) if k == grp]
            bank.push(grp if grp in bank.groups else "unknown", er[idx])
        if refresh:
            bank.refresh()


def _disc_steps(
    t: Trainer, S: nn.Module, D: nn.Module, real: torch.Tensor, clean: torch.Tensor, s: int, G: GanConfig, guard: StabilityGuard | None, real_context: torch.Tensor | None = None
) -> dict[str, Any] | None:
    """The discriminator's updates of step ``s`` (clean photos are "real", restored real
    photos "fake"); their logs, or None when the guard rolled back. ``real_context``: the real
    photos' whole-photo thumbnails, for a student that reads them."""
    logs: dict[str, Any] = {}
    n_d = adv.d_steps_at(s, G.d_ratio)
    if not n_d:
        return logs
    with torch.no_grad(), t.autocast():
        fake = S(real, **({"context": real_context} if real_context is not None else {})).float().clamp(0, 1)
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
            return None
        norm = t.optimize("disc", ld)
        if guard is not None and not guard.grad_ok("disc", norm):
            return None
    logs["d_loss"] = ld.detach()
    logs["d_real"] = lr_.detach().float().mean()
    logs["d_fake"] = lf_.detach().float().mean()
    return logs


def _make_step(cfg: AdaptConfig, S: nn.Module, D: nn.Module, bank: PrototypeBank, fz: Frozen, guard: StabilityGuard | None):  # type: ignore[no-untyped-def]
    """One stage-2 step: bank update, discriminator steps, then the generator's table of terms."""

    def step(t: Trainer, b: dict[str, Any]) -> dict[str, Any]:
        s = t.step  # 0-based index of this step
        if guard is not None:
            guard.maybe_snapshot()
        real, clean, kinds = b["real"], b["clean"], list(b["real_kind"])
        _push_bank(bank, fz, clean, real, kinds, s % cfg.cluster.refresh_every == 0)
        rc, sc = b.get("real_context"), b.get("syn_context")  # a context student's thumbnails
        logs = _disc_steps(t, S, D, real, clean, s, cfg.gan, guard, rc)
        if logs is None:
            return {"rollback": 1.0}
        with t.autocast():
            out = S(real, **({"context": rc} if rc is not None else {}))
            syn_out = S(b["syn_input"], **({"context": sc} if sc is not None else {}))
        out_c = out.float().clamp(0, 1)
        ctx = AdaptStep(
            t, s, cfg.loss, cfg.gan.loss, cfg.gan.d_warmup, cfg.cluster.tau, fz, D, bank, real, kinds, out_c,
            b["syn_input"], b["syn_target"], list(b["syn_kind"]), syn_out.float(), rc, sc,
        )
        total, terms = weighted_sum(TERMS, cfg.loss, ctx, out.new_zeros((), dtype=torch.float32))
        logs.update({n: v.detach() for n, v in terms.items()})
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

    return step


def _add_bank(tr: Trainer, cfg: AdaptConfig, fz: Frozen) -> PrototypeBank:
    """The prototype bank, a frozen component: checkpointed and resumed with the run."""
    dim = fz.embed.dim
    if dim < 0:
        with torch.no_grad():
            dim = int(fz.embed(torch.zeros(1, 3, 32, 32, device=tr.device)).shape[1])
    groups = ["clean"] + [k for k in PRIMARY_KINDS] + [k for k in cfg.data.kinds if k not in PRIMARY_KINDS] + ["unknown"]
    cc = cfg.cluster
    tr.add("bank", PrototypeBank(groups, dim, cc.prototypes, cc.memory, cc.method, cc.momentum, seed=cfg.run.seed))
    return tr.components["bank"].module  # type: ignore[return-value]


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
    tr = Trainer(cfg.run, cfg, global_batch=cfg.data.triplets_per_step)
    try:
        desc: Any = None
        net, fz = load_frozen(cfg, tr.device)
        if train_set is None:
            train_set, built_val, built_real, desc = build_adapt_data(cfg.data, cfg.run.seed, nets.descriptor(net).context_size, training_prior(net))
            val_items = built_val if val_items is None else val_items
            real_val = built_real if real_val is None else real_val
        S = tr.add("student", net, cfg.optim, cfg.schedule, ema=True)
        D = tr.add("disc", nets.build(cfg.gan.disc.arch, **cfg.gan.disc.args), cfg.optim_d)
        bank = _add_bank(tr, cfg, fz)
        guard = StabilityGuard(tr, cfg.guard, extra=["bank"]).install() if cfg.guard.enabled else None
        val_fn = make_val_fn(val_items or [], real_val or [], fz, cfg.run.val_samples) if (val_items or real_val) else None
        tr.fit(train_set, _make_step(cfg, S, D, bank, fz, guard), val_fn, workers=cfg.data.workers, stop_after=stop_after)
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
