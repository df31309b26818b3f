"""Stage 2's generator loss: its config and its table of terms (see :mod:`.terms`)::

    L_G = adv * L_adv + ext * L_ext + cluster * L_cgcl + syn * L_syn

- ``adv``: the discriminator's verdict on restored real photos (LSGAN or hinge), from
  ``gan.d_warmup`` on;
- ``ext``: extended instance contrast, anchor S(r), positive the frozen pseudo-target (the
  kind's teacher, else the initial student), negative r (:mod:`uniremoval.losses.extended`);
- ``cluster``: InfoNCE of S(r)'s embedding over the prototype bank (:mod:`uniremoval.losses.cluster`);
- ``syn``: stage 1's supervised terms on the replayed synthetic pairs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn

from ..losses import adversarial as adv
from ..losses.cluster import EncoderEmbedder, PrototypeBank, prototype_nce
from ..losses.distill import gt_loss, output_distill
from ..losses.extended import extended_contrast, pseudo_targets
from ..train.trainer import Trainer
from .terms import Term


@dataclass
class AdaptLossConfig:
    """Weights of the generator's loss terms (docs/method.md starting points; 0: off)."""

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


@dataclass
class AdaptStep:
    """What the generator's terms of one stage-2 step see."""

    t: Trainer
    #: 0-based index of this step.
    step: int
    lo: AdaptLossConfig
    gan_loss: str
    d_warmup: int
    tau: float
    fz: Frozen
    disc: nn.Module
    bank: PrototypeBank
    #: Real photos, their kinds, and the student's restorations (float32, clamped).
    real: torch.Tensor
    kinds: Sequence[str]
    out_c: torch.Tensor
    #: The replayed synthetic pairs, their kinds and the student's (float32) outputs.
    syn_input: torch.Tensor
    syn_target: torch.Tensor
    syn_kinds: Sequence[str]
    syn_out: torch.Tensor
    #: Whole-photo thumbnails of the real photos and the synthetic pairs (context students).
    real_context: torch.Tensor | None = None
    syn_context: torch.Tensor | None = None


def adv_term(c: AdaptStep) -> torch.Tensor | None:
    """Adversarial loss of the generator; None during the discriminator's warm-up."""
    if c.step < c.d_warmup:
        return None
    with c.t.autocast():
        return adv.g_loss(c.disc(c.out_c), c.gan_loss)


def ext_term(c: AdaptStep) -> torch.Tensor:
    """Extended instance contrast against the frozen pseudo-targets."""
    pseudo, _ = pseudo_targets(c.real, c.kinds, c.fz.teachers, c.fz.student0, c.real_context)
    with c.t.autocast():
        return extended_contrast(c.fz.phi, c.out_c, pseudo, c.real)


def cluster_term(c: AdaptStep) -> torch.Tensor:
    """Cluster-grained contrast over the prototype bank."""
    with c.t.autocast():
        emb = c.fz.embed(c.out_c)
    return prototype_nce(emb, c.bank.positives(), c.bank.negatives(), c.tau)


def syn_term(c: AdaptStep) -> torch.Tensor:
    """Stage 1's supervised terms on the replayed synthetic pairs: output distillation to the
    kind's teacher (samples whose kind has one) + ground-truth L1. Feature transfer and the
    multi-grained contrast of stage 1 are left out of the replay: they cost three extra
    network passes per step and the output terms are what keeps the mapping in place."""
    out, x, y, kinds, fz, lo = c.syn_out, c.syn_input, c.syn_target, c.syn_kinds, c.fz, c.lo
    loss = lo.syn_gt * gt_loss(out, y)
    if lo.syn_distill > 0 and fz.teachers:
        targets, _ = pseudo_targets(x, kinds, fz.teachers, fz.student0, c.syn_context)
        mask = torch.tensor([k in fz.teachers for k in kinds], device=out.device)
        if bool(mask.any()):
            loss = loss + lo.syn_distill * output_distill(out[mask], targets[mask])
    return loss


#: Stage 2's generator terms, in the order they are summed; the name is the key in the logs.
TERMS: tuple[Term[AdaptStep], ...] = (
    Term("g_adv", "adv", adv_term, lambda lo: frozenset({"disc"})),
    Term("ext", "ext", ext_term, lambda lo: frozenset({"pseudo_targets", "phi"})),
    Term("cgcl", "cluster", cluster_term, lambda lo: frozenset({"bank"})),
    Term("syn", "syn", syn_term, lambda lo: frozenset({"synthetic"})),
)
