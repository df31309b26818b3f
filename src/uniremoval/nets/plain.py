"""A plain residual CNN with no downsampling and no global pooling.

Its receptive field is local and known (``depth`` 3x3 convolutions: radius ``depth``), which
makes it the reference network for checking that tiled inference equals untiled inference,
and a fast baseline.
"""
from __future__ import annotations

import torch
from torch import nn

from .descriptor import NetDescriptor, describer
from . import register


@register("plain")
class PlainCNN(nn.Module):
    """``depth`` conv3x3 layers with ReLU between them, predicting a residual."""

    size_multiple = 1

    def __init__(self, in_channels: int = 3, width: int = 32, depth: int = 5) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError("depth must be at least 2")
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]
        layers.append(nn.Conv2d(width, in_channels, 3, padding=1))
        self.body = nn.Sequential(*layers)
        self.receptive_radius = depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


@describer(PlainCNN)
def _describe(net: PlainCNN) -> NetDescriptor:
    return NetDescriptor(arch="plain", size_multiple=1, receptive_radius=net.receptive_radius)
