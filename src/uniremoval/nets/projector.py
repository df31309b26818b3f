"""Feature projectors for stage 1's collaborative feature transfer (METHOD.md, term 3).

Per level l a projector P^l (conv3x3-ReLU-conv3x3) maps a network's feature map to a common
space of C/2 channels, where C is the *student's* channel count at that level, so teachers of
other widths (a user's own network) line up with the student. An inverse projector Q^l maps the
common space back to the teacher's channels; the reconstruction term |Q(P(F)) - F| keeps the
teacher's information in the common space.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from . import register


def _conv_relu_conv(c_in: int, c_out: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, hidden, 3, padding=1), nn.ReLU(inplace=False), nn.Conv2d(hidden, c_out, 3, padding=1))


@register("projector")
class Projector(nn.Module):
    """conv3x3-ReLU-conv3x3 from ``in_channels`` to ``out_channels`` (default ``in_channels // 2``)."""

    def __init__(self, in_channels: int, out_channels: int | None = None) -> None:
        super().__init__()
        out_channels = out_channels or max(1, in_channels // 2)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.body = _conv_relu_conv(in_channels, out_channels, max(in_channels, out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


@register("inverse-projector")
class InverseProjector(nn.Module):
    """conv3x3-ReLU-conv3x3 from the common space (``in_channels``) back to ``out_channels``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.body = _conv_relu_conv(in_channels, out_channels, max(in_channels, out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


@register("projector-set")
class ProjectorSet(nn.Module):
    """One projector per feature level (and optionally the inverse projectors).

    Args:
        channels: this network's feature channels per level (``net.feature_channels``).
        common: common-space channels per level; default ``channels[l] // 2`` (use the
            student's ``feature_channels // 2`` for teachers so all land in the same space).
        inverse: also build inverse projectors back to ``channels``.
    """

    def __init__(self, channels: Sequence[int], common: Sequence[int] | None = None, inverse: bool = False) -> None:
        super().__init__()
        channels = list(channels)
        common = list(common) if common is not None else [max(1, c // 2) for c in channels]
        if len(common) != len(channels):
            raise ValueError("common must have one entry per level")
        self.channels, self.common = channels, common
        self.proj = nn.ModuleList(Projector(c, k) for c, k in zip(channels, common))
        self.inv = nn.ModuleList(InverseProjector(k, c) for c, k in zip(channels, common)) if inverse else None

    def forward(self, feats: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Project each level's features into the common space."""
        if len(feats) != len(self.proj):
            raise ValueError(f"expected {len(self.proj)} feature levels, got {len(feats)}")
        return [p(f) for p, f in zip(self.proj, feats)]

    def invert(self, common: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Map common-space features back to this network's channels."""
        if self.inv is None:
            raise RuntimeError("built without inverse projectors")
        return [q(z) for q, z in zip(self.inv, common)]
