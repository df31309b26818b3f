"""NAFNet-style U-Net (Chen et al., ECCV 2022), written from the paper with plain ops.

Used for teachers and student. Differences from the reference code, on purpose:
- LayerNorm2d is plain tensor arithmetic, not a custom autograd function, so the network
  exports to ONNX and runs under autocast;
- ``forward(x, return_features=True)`` also returns the encoder and bottleneck features that
  stage 1's feature transfer and contrast need.

- Test-time local converter (TLC, Chu et al., ECCV 2022): the channel attention pools over
  the whole input in training (crops), but in eval mode over a local window of
  ``inference_window`` full-resolution pixels (1.5x the training crop, TLC's choice). The
  network then sees at test time the statistics it was trained with, and its output is local:
  tiles no longer differ in colour from their neighbours (global pooling per tile made seams).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from . import register


class LayerNorm2d(nn.Module):
    """Layer norm over the channel dimension of an NCHW tensor."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu = x.mean(1, keepdim=True)
        var = (x - mu).pow(2).mean(1, keepdim=True)
        y = (x - mu) / torch.sqrt(var + self.eps)
        return self.weight.view(1, -1, 1, 1) * y + self.bias.view(1, -1, 1, 1)


class SimpleGate(nn.Module):
    """Split channels in two halves and multiply them: NAFNet's replacement for GELU."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return a * b


class LocalAvgPool(nn.Module):
    """Mean over the whole map in training; in eval mode, the mean over a ``window`` x
    ``window`` neighbourhood of each pixel (TLC), computed with an integral image so its cost
    does not grow with the window. Near borders the nearest full window's mean is used."""

    def __init__(self, window: int | None = None) -> None:
        super().__init__()
        self.window = window

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        k = self.window
        if self.training or k is None:
            return x.mean((2, 3), keepdim=True)
        # No branch on the size: a window as large as the map gives the global mean through
        # the same arithmetic, and an exported (ONNX) graph stays correct for every size.
        kh, kw = torch.sym_min(k, h), torch.sym_min(k, w)
        # Centred and in float32: the running sums then stay small, so the window means keep
        # their precision (and PyTorch and onnxruntime, which sum in different orders, agree).
        xf = x.float()
        centre = xf.mean((2, 3), keepdim=True)
        s = F.pad((xf - centre).cumsum(2).cumsum(3), (1, 0, 1, 0))
        win = s[..., kh:, kw:] - s[..., :-kh, kw:] - s[..., kh:, :-kw] + s[..., :-kh, :-kw]
        mean = win / (kh * kw) + centre
        pad = ((kw - 1) // 2, kw // 2, (kh - 1) // 2, kh // 2)
        return F.pad(mean, pad, mode="replicate").to(x.dtype)


class NAFBlock(nn.Module):
    """Nonlinear-activation-free block: depthwise conv + gate + channel attention + FFN."""

    def __init__(self, c: int, dw_expand: int = 2, ffn_expand: int = 2, window: int | None = None) -> None:
        super().__init__()
        dw = c * dw_expand
        self.conv1 = nn.Conv2d(c, dw, 1)
        self.conv2 = nn.Conv2d(dw, dw, 3, padding=1, groups=dw)
        self.conv3 = nn.Conv2d(dw // 2, c, 1)
        # Index 0 holds no weights, so checkpoints of the global-pool version load unchanged.
        self.sca = nn.Sequential(LocalAvgPool(window), nn.Conv2d(dw // 2, dw // 2, 1))
        self.sg = SimpleGate()
        ffn = c * ffn_expand
        self.conv4 = nn.Conv2d(c, ffn, 1)
        self.conv5 = nn.Conv2d(ffn // 2, c, 1)
        self.norm1 = LayerNorm2d(c)
        self.norm2 = LayerNorm2d(c)
        # Zero-initialised residual scales: a fresh block is the identity, which keeps deep
        # stacks stable at the start of training (as in the paper).
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        x = self.conv2(self.conv1(self.norm1(inp)))
        x = self.sg(x)
        x = x * self.sca(x)
        y = inp + self.conv3(x) * self.beta
        x = self.conv5(self.sg(self.conv4(self.norm2(y))))
        return y + x * self.gamma


@register("nafnet")
class NAFNet(nn.Module):
    """U-Net of NAF blocks predicting a residual that is added to the input.

    Args:
        in_channels: image channels (3 for RGB).
        width: channels at full resolution; doubled at every level down.
        enc_blocks: blocks per encoder level (its length is the number of levels).
        middle_blocks: blocks at the bottleneck.
        dec_blocks: blocks per decoder level, from the deepest up; defaults to one per level.
        inference_window: TLC window in full-resolution pixels for eval mode (None: global
            pooling as in training); 192 = 1.5x the 128 px training crops of our recipes.
    """

    def __init__(
        self,
        in_channels: int = 3,
        width: int = 32,
        enc_blocks: Sequence[int] = (1, 1, 1, 2),
        middle_blocks: int = 2,
        dec_blocks: Sequence[int] | None = None,
        inference_window: int | None = 192,
    ) -> None:
        super().__init__()
        enc_blocks = list(enc_blocks)
        dec_blocks = list(dec_blocks) if dec_blocks is not None else [1] * len(enc_blocks)
        if len(dec_blocks) != len(enc_blocks):
            raise ValueError("dec_blocks must have one entry per encoder level")
        self.intro = nn.Conv2d(in_channels, width, 3, padding=1)
        self.ending = nn.Conv2d(width, in_channels, 3, padding=1)
        self.encoders = nn.ModuleList()
        self.downs = nn.ModuleList()
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        c = width

        def win(level: int) -> int | None:
            # The same full-resolution extent at every level of the U-Net.
            return None if inference_window is None else max(1, inference_window >> level)

        self.feature_channels: list[int] = []
        for level, n in enumerate(enc_blocks):
            self.encoders.append(nn.Sequential(*[NAFBlock(c, window=win(level)) for _ in range(n)]))
            self.feature_channels.append(c)
            self.downs.append(nn.Conv2d(c, 2 * c, 2, stride=2))
            c *= 2
        self.middle = nn.Sequential(*[NAFBlock(c, window=win(len(enc_blocks))) for _ in range(middle_blocks)])
        self.feature_channels.append(c)
        for level, n in reversed(list(enumerate(dec_blocks))):
            self.ups.append(nn.Sequential(nn.Conv2d(c, 2 * c, 1, bias=False), nn.PixelShuffle(2)))
            c //= 2
            self.decoders.append(nn.Sequential(*[NAFBlock(c, window=win(level)) for _ in range(n)]))
        self.size_multiple = 2 ** len(enc_blocks)

    def forward(
        self, x: torch.Tensor, return_features: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """Restore ``x`` (N, C, H, W with H, W multiples of ``size_multiple``).

        With ``return_features`` also returns one feature map per encoder level plus the
        bottleneck, finest first.
        """
        h = self.intro(x)
        skips: list[torch.Tensor] = []
        for enc, down in zip(self.encoders, self.downs):
            h = enc(h)
            skips.append(h)
            h = down(h)
        h = self.middle(h)
        feats = skips + [h]
        for dec, up, skip in zip(self.decoders, self.ups, reversed(skips)):
            h = dec(up(h) + skip)
        out = self.ending(h) + x
        return (out, feats) if return_features else out


def nafnet_small(**kw: object) -> NAFNet:
    """Small preset: fast on CPU (about 1.7 M parameters)."""
    return NAFNet(width=16, enc_blocks=(1, 1, 1, 2), middle_blocks=2, **kw)  # type: ignore[arg-type]


def nafnet_base(**kw: object) -> NAFNet:
    """Base preset: the quality default for GPUs."""
    return NAFNet(width=32, enc_blocks=(1, 1, 2, 4), middle_blocks=4, **kw)  # type: ignore[arg-type]


register("nafnet-small")(nafnet_small)
register("nafnet-base")(nafnet_base)
