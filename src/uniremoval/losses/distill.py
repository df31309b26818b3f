"""Stage 1's transfer terms (METHOD.md, terms 1-3): output distillation, ground truth, and
collaborative feature transfer through projectors into a common space.

Collaborative feature transfer (Chen et al., CVPR 2022): per feature level ``l`` a student
projector ``P_s^l`` and per-teacher projectors ``P_k^l`` (conv3x3-ReLU-conv3x3) map features
to a common space of ``C_s^l / 2`` channels (``C_s`` = the student's channels), and::

    L_feat = sum_l |P_s^l(F_S^l) - P_k^l(F_Tk^l)|_1  +  0.05 * sum_l |Q_k^l(P_k^l(F_Tk^l)) - F_Tk^l|_1

with inverse projectors ``Q_k^l``: the reconstruction term stops the teacher projectors from
collapsing the common space (both sides could otherwise map to a constant).

Teachers of another width or depth work: channels are absorbed by the projectors; when a
teacher has a different number of levels, the deepest ``min(L_s, L_t)`` levels are paired;
when a level's spatial size differs, the teacher's feature is resized (area/bilinear) to the
student's before projection.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..nets.projector import ProjectorSet

#: Weight of the inverse-projector reconstruction term (METHOD.md).
RECON_WEIGHT = 0.05


def l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference in float32."""
    return (a.float() - b.float()).abs().mean()


def output_distill(student_out: torch.Tensor, teacher_out: torch.Tensor) -> torch.Tensor:
    """L_out = |S(x) - T_k(x)|_1 (the teacher output is a constant)."""
    return l1(student_out, teacher_out.detach())


def gt_loss(student_out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L_gt = |S(x) - y|_1."""
    return l1(student_out, target)


def match_levels(student: Sequence[torch.Tensor], teacher: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Pair the deepest ``min(L_s, L_t)`` levels of two feature lists (finest first)."""
    m = min(len(student), len(teacher))
    return list(student[len(student) - m :]), list(teacher[len(teacher) - m :])


def _resize_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if x.shape[-2] >= size[0] and x.shape[-1] >= size[1]:
        return F.adaptive_avg_pool2d(x, size)
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class FeatureTransfer(nn.Module):
    """The student's projectors and every teacher's projectors + inverse projectors.

    Args:
        student_channels: the student's ``feature_channels`` (finest first).
        teacher_channels: per kind, that teacher's ``feature_channels``.

    All projectors map into the student's common space (``C_s // 2`` per level).
    """

    def __init__(self, student_channels: Sequence[int], teacher_channels: Mapping[str, Sequence[int]]) -> None:
        super().__init__()
        self.student_channels = list(student_channels)
        self.common = [max(1, c // 2) for c in self.student_channels]
        self.student = ProjectorSet(self.student_channels, self.common)
        self.teachers = nn.ModuleDict()
        self.levels: dict[str, int] = {}
        for kind, ch in teacher_channels.items():
            m = min(len(ch), len(self.student_channels))
            self.levels[kind] = m
            self.teachers[kind] = ProjectorSet(list(ch)[len(ch) - m :], self.common[len(self.common) - m :], inverse=True)

    def project(
        self, kind: str, student_feats: Sequence[torch.Tensor], teacher_feats: Sequence[torch.Tensor]
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        """Project one kind group's features.

        Returns ``(z_s, z_t, recon, f_t)``: student and teacher features in the common space,
        the teacher features mapped back by the inverse projectors, and the (level-matched,
        detached) teacher features they should reconstruct.
        """
        s, t = match_levels(student_feats, teacher_feats)
        t = [_resize_to(f.detach().float(), tuple(sf.shape[-2:])) for f, sf in zip(t, s)]  # type: ignore[arg-type]
        proj = self.teachers[kind]
        z_s = self._student_tail(s)
        z_t = proj(t)
        return z_s, z_t, proj.invert(z_t), t

    def _student_tail(self, s: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        # The student's deepest len(s) projectors (all of them unless a teacher has fewer levels).
        ps = self.student.proj[len(self.student.proj) - len(s) :]
        return [p(f) for p, f in zip(ps, s)]


def feature_transfer_loss(
    z_s: Sequence[torch.Tensor],
    z_t: Sequence[torch.Tensor],
    recon: Sequence[torch.Tensor] | None = None,
    teacher_feats: Sequence[torch.Tensor] | None = None,
    recon_weight: float = RECON_WEIGHT,
) -> torch.Tensor:
    """``sum_l |z_s^l - z_t^l|_1 + recon_weight * sum_l |recon^l - F_T^l|_1``.

    Gradients reach the student's projectors/student through ``z_s`` and the teacher
    projectors through ``z_t`` (the pull is collaborative: both sides move toward each
    other), and the inverse projectors through ``recon``; the teacher features are constants.
    """
    if len(z_s) != len(z_t):
        raise ValueError("student and teacher projections need the same number of levels")
    total = sum((l1(a, b) for a, b in zip(z_s, z_t)), torch.zeros((), device=z_s[0].device))
    if recon is not None and recon_weight:
        if teacher_feats is None or len(recon) != len(teacher_feats):
            raise ValueError("reconstruction needs the teacher features, one per level")
        total = total + recon_weight * sum((l1(r, f.detach()) for r, f in zip(recon, teacher_feats)), torch.zeros((), device=z_s[0].device))
    return total
