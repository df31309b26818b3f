"""NAF U-Nets that see the whole photo: global context (FiLM), optional half-resolution top
level, smooth corrections at a working resolution and a light full-resolution refinement.

::

    photo ──thumbnail (192 px, once per photo)──> ContextEncoder ──> cond (N, 64)
                                                                       │ FiLM (every block)
    x ─[PixelUnshuffle r]─ intro ─ enc0 ─ enc1 ─ ... ─ middle ─ ... ─ dec1 ─ dec0 ─ ending ─[PixelShuffle r]─> res
                                                          dec at 1/fix_scale ─> GlobalFix(x, ·, cond) ─> base
    out = Refine(x, base + res)

Two registered families, both :class:`CtxUNet`:

- ``nafnet-ctx``: release 6's layout (``nafnet-small-deep``, r = 1, no GlobalFix, no Refine)
  plus context. Its parameter names are NAFNet's, so a NAFNet loads into it unchanged and,
  the FiLM layers being zero, computes the same output (:func:`uniremoval.nets.grow` checks it).
- ``uniremoval-net``: r = 2 (the top level runs at half resolution on 12 channels), an affine
  (or haze) GlobalFix at 1/8 resolution with guided upsampling, and an 8-channel Refine:
  3.3x fewer FLOPs per pixel than nafnet-small-deep (20.5 vs 66.8 k) with the same blocks per level, one
  level coarser. :func:`warm_start` starts it from a NAFNet of the same width.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .descriptor import NetDescriptor, describer
from .globalctx import DEFAULT_CONTEXT_SIZE, FIX_MODES, ContextEncoder, FiLMBlock, GlobalFix, Refine, thumbnail
from .nafnet import NAFBlock
from . import register

#: Modules whose freshly built weights leave the function unchanged (zero-initialised).
ZERO_INIT_MODULES: tuple[str, ...] = ("context", "film", "fix", "refine")


def _run(blocks: nn.Sequential, h: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
    for blk in blocks:
        h = blk(h, cond)
    return h


class CtxUNet(nn.Module):
    """A NAF U-Net conditioned on a thumbnail of the whole photo (module docstring).

    Args:
        in_channels, width, enc_blocks, middle_blocks, dec_blocks, inference_window,
            inference_grid: as :class:`~uniremoval.nets.nafnet.NAFNet` (window and grid in
            full-resolution pixels).
        unshuffle: 1 (top level at full resolution, as NAFNet) or 2 (PixelUnshuffle(2) in,
            PixelShuffle(2) out: every level at half the resolution).
        context_size: thumbnail side the network expects (:func:`thumbnail`).
        context_dim, context_width: descriptor length and the context encoder's first width;
            ``context_dim`` 0 builds the network without context (the ablation: no encoder,
            no FiLM, descriptor ``context_size`` None).
        fix: ``none`` | ``affine`` | ``haze`` (:class:`GlobalFix`), at 1/``fix_scale``.
        guided: upsample the fix with the fast guided filter (else bilinear).
        refine: width of the full-resolution refinement (0: none).
    """

    def __init__(
        self,
        in_channels: int = 3,
        width: int = 16,
        enc_blocks: Sequence[int] = (1, 1, 2, 4),
        middle_blocks: int = 4,
        dec_blocks: Sequence[int] | None = None,
        inference_window: int | None = 192,
        inference_grid: int = 8,
        unshuffle: int = 1,
        context_size: int = DEFAULT_CONTEXT_SIZE,
        context_dim: int = 64,
        context_width: int = 16,
        fix: str = "none",
        fix_scale: int = 8,
        guided: bool = True,
        refine: int = 0,
    ) -> None:
        super().__init__()
        enc = list(enc_blocks)
        dec = list(dec_blocks) if dec_blocks is not None else [1] * len(enc)
        if len(dec) != len(enc):
            raise ValueError("dec_blocks must have one entry per encoder level")
        if unshuffle not in (1, 2):
            raise ValueError("unshuffle must be 1 or 2")
        if fix not in FIX_MODES:
            raise ValueError(f"unknown fix {fix!r}; use one of {', '.join(FIX_MODES)}")
        r, n = unshuffle, len(enc)
        self.r = r
        self.context_size = int(context_size) if context_dim else None
        self.size_multiple = r * 2**n
        self.context = ContextEncoder(context_dim, context_width) if context_dim else None
        self.intro = nn.Conv2d(in_channels * r * r, width, 3, padding=1)
        self.ending = nn.Conv2d(width, in_channels * r * r, 3, padding=1)
        self.encoders, self.downs, self.ups, self.decoders = nn.ModuleList(), nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        grid0 = min(max(1, inference_grid // r), 2**n)

        def block(c: int, level: int) -> FiLMBlock:
            # Windows in full-resolution pixels, as NAFNet's (level l is r * 2**l px a pixel).
            win = None if inference_window is None else max(1, inference_window // (r << level))
            return FiLMBlock(c, context_dim, window=win, grid=max(1, grid0 >> level))

        c = width
        self.feature_channels: list[int] = []
        for level, k in enumerate(enc):
            self.encoders.append(nn.Sequential(*[block(c, level) for _ in range(k)]))
            self.feature_channels.append(c)
            self.downs.append(nn.Conv2d(c, 2 * c, 2, stride=2))
            c *= 2
        self.middle = nn.Sequential(*[block(c, n) for _ in range(middle_blocks)])
        self.feature_channels.append(c)
        scales = {}
        for level, k in reversed(list(enumerate(dec))):
            self.ups.append(nn.Sequential(nn.Conv2d(c, 2 * c, 1, bias=False), nn.PixelShuffle(2)))
            c //= 2
            self.decoders.append(nn.Sequential(*[block(c, level) for _ in range(k)]))
            scales[r << level] = (len(self.decoders) - 1, c)
        self.fix: GlobalFix | None = None
        self.fix_at = -1
        if fix != "none":
            if fix_scale not in scales:
                raise ValueError(f"fix_scale {fix_scale} is not a decoder level's scale (have {sorted(scales)})")
            self.fix_at, ch = scales[fix_scale]
            self.fix = GlobalFix(fix, ch, context_dim, fix_scale, guided=guided)
        self.refine = Refine(refine) if refine else None

    def describe_context(self, x: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor | None:
        """The descriptor (Nc, context_dim) of ``context``, or of ``x``'s own thumbnail (None
        for a network without context)."""
        if self.context is None or self.context_size is None:
            return None
        return self.context(thumbnail(x, self.context_size) if context is None else context)

    def _encode(self, x: torch.Tensor, cond: torch.Tensor | None) -> list[torch.Tensor]:
        h = self.intro(F.pixel_unshuffle(x, self.r) if self.r > 1 else x)
        feats: list[torch.Tensor] = []
        for enc, down in zip(self.encoders, self.downs):
            h = _run(enc, h, cond)
            feats.append(h)
            h = down(h)
        feats.append(_run(self.middle, h, cond))
        return feats

    def encode(self, x: torch.Tensor, context: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Feature levels (finest first, bottleneck last; ``feature_channels``), no decoder."""
        return self._encode(x, self.describe_context(x, context))

    def forward(
        self, x: torch.Tensor, context: torch.Tensor | None = None, return_features: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """Restore ``x`` (N, 3, H, W, sides multiples of ``size_multiple``) given ``context``,
        the :func:`thumbnail` of the whole photo (batch N or 1; None: ``x``'s own)."""
        cond = self.describe_context(x, context)
        feats = self._encode(x, cond)
        h, tap = feats[-1], feats[-1]
        for i, (dec, up, skip) in enumerate(zip(self.decoders, self.ups, reversed(feats[:-1]))):
            h = _run(dec, up(h) + skip, cond)
            if i == self.fix_at:
                tap = h
        res = self.ending(h)
        if self.r > 1:
            res = F.pixel_shuffle(res, self.r)
        base = x if self.fix is None else self.fix(x, tap, cond)
        out = base + res
        if self.refine is not None:
            out = self.refine(x, out)
        return (out, feats) if return_features else out


@describer(CtxUNet)
def _describe(net: CtxUNet) -> NetDescriptor:
    # As NAFNet: TLC pooling, so no bounded receptive field; fresh blocks are identities, and
    # so are fresh context/FiLM/fix/refine modules (grow accepts them as new).
    return NetDescriptor(
        arch="nafnet-ctx",
        size_multiple=net.size_multiple,
        feature_channels=tuple(net.feature_channels),
        encoder_features=True,
        receptive_radius=None,
        grow_block=NAFBlock,
        context_size=net.context_size,
        # Half-resolution top level: a quarter of the activations per pixel. Measured (12 MP,
        # 2 AVX2 cores, engine only): 512 px tiles 4.9 s, 768 px 4.2 s, 1024 px 4.1 s.
        tile_scale=1.5 if net.r > 1 else 1.0,
        zero_init_modules=ZERO_INIT_MODULES,
    )


register("nafnet-ctx")(CtxUNet)


def uniremoval_net(**kw: object) -> CtxUNet:
    """The fast context student: nafnet-small-deep's blocks one level coarser (half-resolution
    top level), affine colour fix at 1/8 resolution with guided upsampling, 8-channel refine.

    12 MP fp32 end to end on 2 Xeon cores capped to AVX2: 4.9 s (nafnet-small-deep 12.0 s);
    ``refine=0`` 4.4 s. 3.3 M parameters (context encoder 0.14 M, FiLM 0.25 M)."""
    args: dict[str, object] = {"width": 16, "enc_blocks": (1, 1, 2, 4), "middle_blocks": 4, "unshuffle": 2,
                               "fix": "affine", "fix_scale": 8, "refine": 8}
    args.update(kw)
    return CtxUNet(**args)  # type: ignore[arg-type]


register("uniremoval-net")(uniremoval_net)


@torch.no_grad()
def warm_start(src: nn.Module, dst: CtxUNet) -> list[str]:
    """Load a NAFNet's (or CtxUNet's) weights into ``dst`` wherever name and shape agree;
    returns the names of ``dst``'s weights left as built.

    With ``dst.r == 2`` and the same width, ``intro``/``ending`` are converted too: the new
    intro reads the 2x2 pixels of each cell with a quarter of the old weight each (the old
    intro on the 2x2-averaged image) and the new ending writes the old residual to all four
    pixels of its cell. Every block transfers by shape, at twice the scale: with zero
    fix/refine the result is then the source network run at half resolution (exactly, where
    pooling is global, as in training) plus the input's full-resolution detail.
    """
    state = src.state_dict()
    target = dst.state_dict()
    r = dst.r
    if r > 1 and "intro.weight" in state:
        w = state["intro.weight"]  # (C, 3, k, k) -> (C, 3*r*r, k, k); unshuffle orders c*r*r + i*r + j
        state = dict(state)
        state["intro.weight"] = w.repeat_interleave(r * r, 1) / (r * r)
        state["ending.weight"] = state["ending.weight"].repeat_interleave(r * r, 0)
        state["ending.bias"] = state["ending.bias"].repeat_interleave(r * r, 0)
    load = {k: v for k, v in state.items() if k in target and target[k].shape == v.shape}
    dst.load_state_dict(load, strict=False)
    return sorted(k for k in target if k not in load)
