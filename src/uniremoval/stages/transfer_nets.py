"""Stage 1's networks: frozen teachers and the trained component (student + projectors)."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn

from .. import nets
from ..losses.distill import FeatureTransfer


class FrozenTeacher(nn.Module):
    """A teacher that never trains: no gradients, and eval mode whatever ``train()`` says."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        net.requires_grad_(False)
        super().train(False)
        desc = nets.descriptor(net)
        self.has_features = desc.has_features
        self.feature_channels: list[int] = list(desc.feature_channels)
        self.size_multiple = nets.size_multiple(net)
        self.takes_context = desc.context_size is not None

    def train(self, mode: bool = True) -> "FrozenTeacher":
        return super().train(False)

    @torch.no_grad()
    def forward(self, x: torch.Tensor, return_features: bool = False, context: torch.Tensor | None = None) -> Any:
        kw: dict[str, Any] = {"context": context} if self.takes_context and context is not None else {}
        if return_features and self.has_features:
            return self.net(x, return_features=True, **kw)
        return self.net(x, **kw)


class TransferModel(nn.Module):
    """The trained component: the student plus (optionally) the feature projectors.

    One module so one optimiser, one EMA and one data-parallel wrapper cover both; every
    trainable piece runs inside :meth:`forward` (what DDP needs to synchronise gradients).
    """

    def __init__(self, student: nn.Module, transfer: FeatureTransfer | None) -> None:
        super().__init__()
        self.student = student
        self.transfer = transfer
        desc = nets.descriptor(student)
        # A photo prior's context is its output on the crop's whole photo (``PriorContext``).
        self.takes_context = desc.context_size is not None or desc.photo_prior

    def forward(
        self,
        x: torch.Tensor,
        groups: Sequence[tuple[str, slice]] = (),
        teacher_feats: Mapping[str, Sequence[torch.Tensor]] | None = None,
        context: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, tuple[list[torch.Tensor], ...]]]:
        """Student output, and per kind group ``(z_s, z_t, recon, f_t)`` when features are given.
        ``context`` (each crop's whole-photo thumbnail, or its photo prior's output) goes to a
        student that reads one."""
        kw: dict[str, Any] = {"context": context} if context is not None and self.takes_context else {}
        if self.transfer is None or not teacher_feats:
            return self.student(x, **kw), {}
        out, feats = self.student(x, return_features=True, **kw)
        proj: dict[str, tuple[list[torch.Tensor], ...]] = {}
        for kind, sl in groups:
            if kind in teacher_feats:
                proj[kind] = self.transfer.project(kind, [f[sl] for f in feats], teacher_feats[kind])
        return out, proj


def load_teachers(paths: Mapping[str, str]) -> dict[str, FrozenTeacher]:
    """Load every teacher model file (any registered architecture), frozen."""
    from ..modelfile import load_model

    return {k: FrozenTeacher(load_model(p).net) for k, p in paths.items()}
