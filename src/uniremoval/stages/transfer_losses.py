"""Stage 1's loss: its config and its table of terms (see :mod:`.terms`)::

    L = gt * L_gt + fft * L_fft + out * L_out + feat * L_feat + img * L_img + fcl * L_fcl

- ``gt``   |S(x) - y|_1 and ``out`` |S(x) - T_k(x)|_1 (:mod:`uniremoval.losses.distill`);
- ``fft``  |F(S(x)) - F(y)|_1 on the orthonormal spectrum (:mod:`uniremoval.losses.frequency`;
  off by default; its own group, so the ablation rows leave it as the config sets it);
- ``feat`` collaborative feature transfer through projectors into the student's common space,
  plus ``recon_weight`` x the inverse projectors' reconstruction;
- ``img``  image-grain ratio contrast on frozen features phi (the group's teacher encoder, a
  user-supplied VGG-19, or off) with soft (own input) and/or hard (every input in the batch)
  negatives;
- ``fcl``  feature-grain InfoNCE in the common space (:mod:`uniremoval.losses.contrast`).

What a term needs (the stage builds only what the active terms need):

- ``teacher_outputs``: every kind group through its frozen teacher;
- ``features``: teachers' and student's features, projected into the common space;
- ``teacher_phi`` / ``vgg_phi``: the image grain's frozen feature network.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Mapping, Sequence

import torch
from torch import nn

from ..losses.contrast import batch_negatives, feature_contrast, pool_normalize, ratio_contrast
from ..losses.distill import FeatureTransfer, feature_transfer_loss, gt_loss, output_distill
from ..losses.frequency import fft_l1
from ..train.config import ConfigError
from ..train.trainer import Trainer
from .terms import Term, check_weights, needs
from .transfer_nets import FrozenTeacher

#: Needs that mean the stage loads the teachers.
TEACHER_NEEDS = frozenset({"teacher_outputs", "features", "teacher_phi"})


@dataclass
class TransferLossConfig:
    """Weights of the stage-1 terms (0 switches a term off) and their options."""

    out_weight: float = 1.0
    gt_weight: float = 1.0
    #: Frequency reconstruction beside the pixel L1 (MIMO-UNet's term); 0 = off.
    fft_weight: float = 0.0
    feat_weight: float = 1.0
    #: Inverse-projector reconstruction inside the feature term (docs/method.md: 0.05).
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
    #: Per-kind weight of the per-group terms (gt, fft, out, feat, img), e.g. {haze: 2.0}; kinds not
    #: named weigh 1. The batch-wide feature-grain InfoNCE is not split by kind and stays as is.
    #: A kind that lags its teacher gets more of the student's capacity without more data.
    kind_weights: dict[str, float] = field(default_factory=dict)

    def validate(self, where: str) -> None:
        check_weights(TERMS, self, where)
        if self.recon_weight < 0:
            raise ConfigError(f"{where}.recon_weight: must be >= 0")
        for kind, w in self.kind_weights.items():
            if not isinstance(w, (int, float)) or isinstance(w, bool) or w < 0:
                raise ConfigError(f"{where}.kind_weights.{kind}: must be a number >= 0")
        if self.tau <= 0:
            raise ConfigError(f"{where}.tau: must be > 0")
        if "vgg_phi" in needs(TERMS, self) and not self.vgg_path:
            raise ConfigError(f"{where}.vgg_path: img_phi=vgg needs a VGG-19 weights file (nothing is downloaded)")


@dataclass
class TransferStep:
    """What the terms of one stage-1 step see."""

    t: Trainer
    lo: TransferLossConfig
    #: (kind, slice of the batch) per kind group.
    groups: Sequence[tuple[str, slice]]
    x: torch.Tensor
    y: torch.Tensor
    out: torch.Tensor
    #: Teacher output per kind (when a term needs them).
    t_out: Mapping[str, torch.Tensor]
    #: Per kind ``(z_s, z_t, recon, f_t)`` from :class:`~.transfer_nets.TransferModel` (may be empty).
    proj: Mapping[str, tuple[list[torch.Tensor], ...]]
    #: The image grain's phi per kind (may be empty).
    phis: Mapping[str, nn.Module]
    frozen: Mapping[str, FrozenTeacher]


def _kind_mean(per_kind: Mapping[str, torch.Tensor], weights: Mapping[str, float]) -> torch.Tensor:
    """Mean over kinds of each kind's loss times its weight (1 when not named)."""
    return torch.stack([float(weights.get(k, 1.0)) * v for k, v in per_kind.items()]).mean()


def gt_term(s: TransferStep) -> torch.Tensor:
    """Ground-truth L1, a mean per kind group (then over kinds), so kind_mix adds data, not loss share."""
    return _kind_mean({k: gt_loss(s.out[sl], s.y[sl]) for k, sl in s.groups}, s.lo.kind_weights)


def fft_term(s: TransferStep) -> torch.Tensor:
    """Spectrum L1 against the ground truth, a mean per kind group as :func:`gt_term`."""
    return _kind_mean({k: fft_l1(s.out[sl], s.y[sl]) for k, sl in s.groups}, s.lo.kind_weights)


def out_term(s: TransferStep) -> torch.Tensor | None:
    """Output distillation to each group's teacher (groups of untaught kinds have none)."""
    per_kind = {k: output_distill(s.out[sl], s.t_out[k]) for k, sl in s.groups if k in s.t_out}
    return _kind_mean(per_kind, s.lo.kind_weights) if per_kind else None


def feat_term(s: TransferStep) -> torch.Tensor | None:
    """Collaborative feature transfer (+ reconstruction); None without projected features."""
    if not s.proj:
        return None
    return _kind_mean({k: feature_transfer_loss(zs, zt, rec, ft, s.lo.recon_weight) for k, (zs, zt, rec, ft) in s.proj.items()}, s.lo.kind_weights)


def img_term(s: TransferStep) -> torch.Tensor | None:
    """Image-grain ratio contrast, per kind group with that group's phi, averaged over groups
    (weighted by ``kind_weights``); None without any phi."""
    if not s.phis:
        return None
    lo, per_group = s.lo, {}
    for k, sl in s.groups:
        phi = s.phis.get(k)
        if phi is None:
            continue
        with s.t.autocast():
            anchor = phi(s.out[sl])  # gradients flow to the student's output, not into phi
            with torch.no_grad():
                pos = []
                if lo.img_positive in ("teacher", "both"):
                    pos.append(phi(s.t_out[k]))
                if lo.img_positive in ("target", "both"):
                    pos.append(phi(s.y[sl]))
                negs = []
                if lo.img_negatives in ("soft", "both"):
                    negs.append(phi(s.x[sl]))  # the sample's own degraded input
                if lo.img_negatives in ("hard", "both"):
                    negs.append(batch_negatives(phi(s.x)))  # every degraded input of the batch
        terms = [ratio_contrast(anchor, p, n) for p in pos for n in negs]
        per_group[k] = torch.stack(terms).mean()
    return _kind_mean(per_group, lo.kind_weights) if per_group else torch.zeros((), device=s.out.device)


def fcl_term(s: TransferStep) -> torch.Tensor | None:
    """Feature-grain InfoNCE over the whole batch (all groups), one level at a time; None
    without projected features."""
    if not s.proj:
        return None
    proj, kinds = s.proj, list(s.proj)
    levels = {len(proj[k][0]) for k in kinds}
    if len(levels) != 1 or len({tuple(z.shape[1:]) for k in kinds for z in proj[k][0][:1]}) != 1:
        # Teachers with different depths: contrast within each group only.
        return torch.stack([feature_contrast(proj[k][0], proj[k][1], tau=s.lo.tau) for k in kinds]).mean()
    n_lv = levels.pop()
    z_s = [torch.cat([proj[k][0][lv] for k in kinds]) for lv in range(n_lv)]
    z_t = [torch.cat([proj[k][1][lv] for k in kinds]) for lv in range(n_lv)]
    extra = None
    if s.lo.fcl_other_teachers and len(kinds) > 1:
        extra = _other_teacher_negatives(s, kinds, n_lv)
    return feature_contrast(z_s, z_t, extra, tau=s.lo.tau)


@torch.no_grad()
def _other_teacher_negatives(s: TransferStep, kinds: Sequence[str], n_lv: int) -> list[torch.Tensor]:
    """Per level (N, K-1, D): the other teachers' projected, pooled features of each sample."""
    transfer: FeatureTransfer = s.t.components["model"].module.transfer  # type: ignore[assignment]
    per_level: list[list[torch.Tensor]] = [[] for _ in range(n_lv)]
    for k, sl in s.groups:
        if k not in kinds:
            continue
        others = []
        for j in kinds:
            if j == k:
                continue
            with s.t.autocast():
                _, fj = s.frozen[j](s.x[sl], return_features=True)
                # Teacher j's projectors at its own resolution: the vectors are pooled anyway.
                zj = transfer.teachers[j](list(fj)[len(fj) - transfer.levels[j] :])
            others.append([pool_normalize(z) for z in zj])
        for lv in range(n_lv):
            per_level[lv].append(torch.stack([o[lv] for o in others], dim=1))
    return [torch.cat(v) for v in per_level]


def _img_needs(lo: TransferLossConfig) -> frozenset[str]:
    phi = {"teachers": {"teacher_phi"}, "vgg": {"vgg_phi"}, "none": set()}[lo.img_phi]
    return frozenset(phi | ({"teacher_outputs"} if lo.img_positive != "target" else set()))


#: Stage 1's terms, in the order they are summed. Groups: "supervised" (ground truth),
#: "frequency" (ground truth in the spectrum; not a row of the method's ablation, so its rows
#: leave it as configured), "transfer" (from the teachers), "contrast" (multi-grained
#: contrast); the ablation rows switch whole groups off.
TERMS: tuple[Term[TransferStep], ...] = (
    Term("gt", "gt_weight", gt_term, group="supervised"),
    Term("fft", "fft_weight", fft_term, group="frequency"),
    Term("out", "out_weight", out_term, lambda lo: frozenset({"teacher_outputs"}), "transfer"),
    Term("feat", "feat_weight", feat_term, lambda lo: frozenset({"features"}), "transfer"),
    Term("img", "img_weight", img_term, _img_needs, "contrast"),
    Term("fcl", "fcl_weight", fcl_term, lambda lo: frozenset({"features"}), "contrast"),
)
