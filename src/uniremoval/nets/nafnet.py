"""NAFNet-style U-Net (Chen et al., ECCV 2022), written from the paper with plain ops.

Used for teachers and student. Differences from the reference code, on purpose:
- LayerNorm2d is ``F.layer_norm`` on a channels-last view, not a custom autograd function, so
  the network exports to ONNX and runs under autocast;
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

from .descriptor import NetDescriptor, describer
from . import register


class LayerNorm2d(nn.Module):
    """Layer norm over the channel dimension of an NCHW tensor."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.compiler.is_exporting():
            # Plain arithmetic for export: layer_norm on a permuted view makes torch.export
            # specialise the batch size (its contiguity depends on it), so no dynamic batch.
            mu = x.mean(1, keepdim=True)
            xc = x - mu
            y = xc * torch.rsqrt(xc.pow(2).mean(1, keepdim=True) + self.eps)
            return self.weight.view(1, -1, 1, 1) * y + self.bias.view(1, -1, 1, 1)
        # One fused kernel over the channel axis of an NHWC view (free for the channels-last
        # tensors the engine uses) instead of nine elementwise passes: ~10 % of CPU
        # inference time. Same function (biased variance, eps inside the root).
        y = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), self.weight, self.bias, self.eps)
        return y.permute(0, 3, 1, 2)


class SimpleGate(nn.Module):
    """Split channels in two halves and multiply them: NAFNet's replacement for GELU."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return a * b


def _upsample_linear(x: torch.Tensor, factor: int, dim: int) -> torch.Tensor:
    """Linear upsampling by an integer factor along ``dim`` (2 or 3), edges clamped: the same
    numbers as ``F.interpolate(mode="bilinear", align_corners=False)`` per axis. Written with
    slices because the exported ``upsample_bilinear2d`` guards the batch size (ONNX export
    with a dynamic batch fails)."""
    pad = (0, 0, 1, 1) if dim == 2 else (1, 1, 0, 0)
    p = F.pad(x, pad, mode="replicate")
    n = p.shape[dim]
    prev, cur, nxt = p.narrow(dim, 0, n - 2), p.narrow(dim, 1, n - 2), p.narrow(dim, 2, n - 2)
    phases = []
    for i in range(factor):
        t = (i + 0.5) / factor - 0.5  # where output sample i of a cell falls, in input cells
        phases.append(cur + t * (nxt - cur) if t >= 0 else cur + t * (cur - prev))
    out = torch.stack(phases, dim + 1)  # (..., n_in, factor, ...) -> interleave
    shape = list(x.shape)
    shape[dim] = shape[dim] * factor
    return out.reshape(shape)


class LocalAvgPool(nn.Module):
    """Mean over the whole map in training; in eval mode, the mean over a ``window`` x
    ``window`` neighbourhood of each pixel (TLC), computed with an integral image so its cost
    does not grow with the window. Near borders the nearest full window's mean is used.

    With ``grid`` > 1 the window means are computed on a grid ``grid`` times coarser (the map
    is first averaged over ``grid`` x ``grid`` cells, the window rounded to an odd number of
    whole cells) and
    upsampled bilinearly. The window mean changes slowly with position, so this barely moves
    the output (45-71 dB from the exact means on 8 real photos with grid 8, while 384 px tiles
    alone are 37-65 dB from one pass)
    while it removes the full-resolution integral image, the costliest part of CPU
    inference (~20 % of it). Map sides must be multiples of ``grid`` (NAFNet guarantees it).
    """

    def __init__(self, window: int | None = None, grid: int = 1) -> None:
        super().__init__()
        self.window = window
        self.grid = max(1, int(grid))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pooled(x)

    def pooled(self, x: torch.Tensor, then: nn.Module | None = None) -> torch.Tensor:
        """The window means of ``x``, with ``then`` (a per-pixel affine map such as a 1x1
        convolution) applied to them. ``then`` runs on the coarse grid before upsampling:
        both are linear and the bilinear weights sum to one, so the result is the same as
        applying it at full resolution, without a full-resolution convolution."""
        k = self.window
        if self.training or k is None:
            mean = x.mean((2, 3), keepdim=True)
            return mean if then is None else then(mean)
        g = self.grid
        # Float32: the running sums stay precise (and PyTorch and onnxruntime, which sum in
        # different orders, agree). The cell averages come first, so a bf16 map is not
        # copied to float32 at full resolution.
        xf = F.avg_pool2d(x, g).float() if g > 1 else x.float()
        if g > 1:
            # An odd number of cells centres each window on its cell, where the bilinear
            # upsampling puts the value (an even count is off by half a cell).
            k = max(1, round(k / g)) | 1
        h, w = xf.shape[-2:]
        # No branch on the size: a window as large as the map gives the global mean through
        # the same arithmetic, and an exported (ONNX) graph stays correct for every size.
        kh, kw = torch.sym_min(k, h), torch.sym_min(k, w)
        # Centred: the running sums then stay small, so the window means keep their precision.
        centre = xf.mean((2, 3), keepdim=True)
        s = F.pad((xf - centre).cumsum(2).cumsum(3), (1, 0, 1, 0))
        win = s[..., kh:, kw:] - s[..., :-kh, kw:] - s[..., kh:, :-kw] + s[..., :-kh, :-kw]
        mean = win / (kh * kw) + centre
        pad = ((kw - 1) // 2, kw // 2, (kh - 1) // 2, kh // 2)
        mean = F.pad(mean, pad, mode="replicate")
        mean = mean.to(x.dtype)
        if then is not None:
            mean = then(mean).to(x.dtype)
        if g > 1:
            mean = _upsample(mean, g, x)
        return mean


def _upsample(x: torch.Tensor, factor: int, like: torch.Tensor) -> torch.Tensor:
    """Bilinear upsampling by an integer factor (edges clamped), in ``like``'s memory format.

    Eager and compiled runs use ``F.interpolate``, one pass with a channels-last kernel on
    the CPU (the slice version below costs three full-resolution passes and returns NCHW,
    which made the following multiply with a channels-last map slow); export uses the slice
    version, whose graph keeps a dynamic batch.
    """
    if torch.compiler.is_exporting():
        return _upsample_linear(_upsample_linear(x, factor, 2), factor, 3)
    if like.is_contiguous(memory_format=torch.channels_last) and not like.is_contiguous():
        x = x.contiguous(memory_format=torch.channels_last)
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)


def _scaled_conv1x1(x: torch.Tensor, conv: nn.Conv2d, scale: torch.Tensor) -> torch.Tensor:
    """``conv(x) * scale`` for a 1x1 convolution and a per-channel ``scale`` of shape
    (1, C, 1, 1), computed as one convolution with scaled weights."""
    s = scale.reshape(-1)
    bias = None if conv.bias is None else conv.bias * s
    return F.conv2d(x, conv.weight * s.view(-1, 1, 1, 1), bias)


class NAFBlock(nn.Module):
    """Nonlinear-activation-free block: depthwise conv + gate + channel attention + FFN."""

    def __init__(self, c: int, dw_expand: int = 2, ffn_expand: int = 2, window: int | None = None, grid: int = 1) -> None:
        super().__init__()
        dw = c * dw_expand
        self.conv1 = nn.Conv2d(c, dw, 1)
        self.conv2 = nn.Conv2d(dw, dw, 3, padding=1, groups=dw)
        self.conv3 = nn.Conv2d(dw // 2, c, 1)
        # Index 0 holds no weights, so checkpoints of the global-pool version load unchanged.
        # Called as ``sca[0].pooled(x, then=sca[1])`` so the 1x1 conv runs on pooled values.
        self.sca = nn.Sequential(LocalAvgPool(window, grid), nn.Conv2d(dw // 2, dw // 2, 1))
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
        return self.after_norm(inp, self.norm1(inp))

    def after_norm(self, inp: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The block from its first normalisation on: ``z`` is ``norm1(inp)``, or a
        conditioned version of it (FiLM, :mod:`uniremoval.nets.globalctx`)."""
        x = self.conv2(self.conv1(z))
        x = self.sg(x)
        x = x * self.sca[0].pooled(x, then=self.sca[1])
        if torch.compiler.is_compiling():
            # Inductor fuses the scale into the neighbouring kernels, and its frozen graphs
            # pre-pack only constant weights (scaled weights made a 512 px tile 158 -> 293 ms).
            y = inp + self.conv3(x) * self.beta
            x = self.conv5(self.sg(self.conv4(self.norm2(y))))
            return y + x * self.gamma
        # Eager: the residual scales are folded into the 1x1 convolutions' weights (tiny)
        # instead of multiplying full-resolution maps: same function, two fewer passes.
        y = inp + _scaled_conv1x1(x, self.conv3, self.beta)
        x = self.sg(self.conv4(self.norm2(y)))
        return y + _scaled_conv1x1(x, self.conv5, self.gamma)


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
        inference_grid: full-resolution step of the grid the TLC window means are computed
            on (:class:`LocalAvgPool`); halved at every level down, at most the size multiple.
            1 computes them exactly at every pixel (slower on the CPU, same within ~50 dB).
    """

    def __init__(
        self,
        in_channels: int = 3,
        width: int = 32,
        enc_blocks: Sequence[int] = (1, 1, 1, 2),
        middle_blocks: int = 2,
        dec_blocks: Sequence[int] | None = None,
        inference_window: int | None = 192,
        inference_grid: int = 8,
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

        grid0 = min(max(1, inference_grid), 2 ** len(enc_blocks))

        def grid(level: int) -> int:
            return max(1, grid0 >> level)

        self.feature_channels: list[int] = []
        for level, n in enumerate(enc_blocks):
            self.encoders.append(nn.Sequential(*[NAFBlock(c, window=win(level), grid=grid(level)) for _ in range(n)]))
            self.feature_channels.append(c)
            self.downs.append(nn.Conv2d(c, 2 * c, 2, stride=2))
            c *= 2
        self.middle = nn.Sequential(*[NAFBlock(c, window=win(len(enc_blocks)), grid=grid(len(enc_blocks))) for _ in range(middle_blocks)])
        self.feature_channels.append(c)
        for level, n in reversed(list(enumerate(dec_blocks))):
            self.ups.append(nn.Sequential(nn.Conv2d(c, 2 * c, 1, bias=False), nn.PixelShuffle(2)))
            c //= 2
            self.decoders.append(nn.Sequential(*[NAFBlock(c, window=win(level), grid=grid(level)) for _ in range(n)]))
        self.size_multiple = 2 ** len(enc_blocks)

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The feature levels of ``x`` without running the decoder: one map per encoder level
        plus the bottleneck, finest first (``feature_channels`` channels)."""
        h = self.intro(x)
        feats: list[torch.Tensor] = []
        for enc, down in zip(self.encoders, self.downs):
            h = enc(h)
            feats.append(h)
            h = down(h)
        feats.append(self.middle(h))
        return feats

    def forward(
        self, x: torch.Tensor, return_features: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """Restore ``x`` (N, C, H, W with H, W multiples of ``size_multiple``).

        With ``return_features`` also returns one feature map per encoder level plus the
        bottleneck, finest first (what :meth:`encode` returns).
        """
        feats = self.encode(x)
        h = feats[-1]
        for dec, up, skip in zip(self.decoders, self.ups, reversed(feats[:-1])):
            h = dec(up(h) + skip)
        out = self.ending(h) + x
        return (out, feats) if return_features else out


@describer(NAFNet)
def _describe(net: NAFNet) -> NetDescriptor:
    # Channel attention pools over the whole input or a 192 px TLC window: no bounded
    # receptive field, so tiling is an approximation. Fresh blocks are identities (zero
    # residual scales), so deeper NAFNets grow from shallower ones.
    return NetDescriptor(
        arch="nafnet",
        size_multiple=net.size_multiple,
        feature_channels=tuple(net.feature_channels),
        encoder_features=True,
        receptive_radius=None,
        grow_block=NAFBlock,
    )


def nafnet_small(**kw: object) -> NAFNet:
    """Small preset: fast on CPU (about 1.7 M parameters)."""
    return NAFNet(width=16, enc_blocks=(1, 1, 1, 2), middle_blocks=2, **kw)  # type: ignore[arg-type]


def nafnet_small_deep(**kw: object) -> NAFNet:
    """nafnet-small with more blocks at the two coarsest levels (about 2.9 M parameters).

    A block costs the same arithmetic at every level (channels double as pixels quarter), but
    the coarse ones run on small maps, so on the CPU this is ~8% slower than nafnet-small at
    inference and ~20% in training, for more depth and a wider receptive field (haze is a
    global degradation). Its extra blocks can start as identities on top of a trained
    nafnet-small (``model.grow``).
    """
    return NAFNet(width=16, enc_blocks=(1, 1, 2, 4), middle_blocks=4, **kw)  # type: ignore[arg-type]


def nafnet_base(**kw: object) -> NAFNet:
    """Base preset: the quality default for GPUs."""
    return NAFNet(width=32, enc_blocks=(1, 1, 2, 4), middle_blocks=4, **kw)  # type: ignore[arg-type]


register("nafnet-small")(nafnet_small)
register("nafnet-small-deep")(nafnet_small_deep)
register("nafnet-base")(nafnet_base)
