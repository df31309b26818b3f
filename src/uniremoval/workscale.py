"""Restore at a working resolution: a large photo is area-downscaled by a factor ``d``, restored
there, and the restoration's change is carried back to full resolution by the fast guided filter
(He & Sun 2015) with the full-resolution photo as its guide.

Why: the networks restore a degradation well only at the pixel size they were trained on. On
the scale evaluation (benchmarks/scale_eval.py: the own pairs with degraded and clean image
both upsampled x2 and x4), release 6 restored at full resolution falls from 25.6 dB (rain x1)
to 21.7 (x2) and 20.3 (x4), and blur from 23.9 to 18.7 at x4; restored at 1/x and carried up,
x4 gives 25.9 and 24.0, within 0.3 dB of x1 for every kind (docs/inference.md has the table).
The guided filter fits the change locally as ``a * photo + b`` (per channel, in windows of
``radius`` working-resolution pixels), so the photo's own full-resolution detail stays where
it is: what is carried up is how each neighbourhood is corrected.

``auto`` picks ``d`` from the photo's size: the power of two that brings its long side nearest
to :data:`WORK_SIDE` (512 px, the size of the whole-scene photos the networks are trained on:
BSDS500 and Set14, 481-512 px), never a short side under :data:`MIN_WORK_SIDE`. A photo up to
724 px is restored at full resolution; 12 MP (4000 x 3000) at 1/8.

``pyramid`` does not guess the degradation's size from the photo's: the body restores the photo
at 1/2^k, 1/2^(k-1), ..., 1/2 (each change carried up, each level restoring the previous one's
result) and finally at full resolution, the coarsest level the last with a short side of at
least :data:`MIN_WORK_SIDE`. A long streak is removed at the level where it has the size the
network was trained on, and the full-resolution pass keeps the photo's own detail, which a
working resolution alone loses (benchmarks/results/workscale). About 4/3 of one pass's work.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from .nets import pad_to_multiple
from .nets.globalctx import guided_coefficients
from .options import MAX_SCALE

#: ``progress(done, total)`` after each batch of tiles, as :class:`uniremoval.infer.Engine` takes it.
Progress = Optional[Callable[[int, int], None]]

#: Long side (px) a photo is brought near by ``scale="auto"`` (the training photos' size).
WORK_SIDE = 512
#: ``auto`` never shrinks a photo's short side below this (a panorama keeps enough rows).
MIN_WORK_SIDE = 128
#: Largest factor ``auto`` picks (a 24 MP photo, 6000 px: 1/16 would be 375 px; 1/8 is 750).
MAX_AUTO_FACTOR = 8
#: The guided filter's window radius (working-resolution pixels) and regulariser: the values
#: the networks' own GlobalFix uses.
RADIUS, EPS = 2, 1e-3


def auto_factor(height: int, width: int, side: int = WORK_SIDE) -> int:
    """The working-resolution factor ``scale="auto"`` uses for a photo of this size (1: full
    resolution): the power of two nearest (in log scale) to long side / ``side``."""
    ratio = max(height, width) / side
    if ratio <= 1:
        return 1
    d = 2 ** round(math.log2(ratio))
    while d > 1 and (min(height, width) / d < MIN_WORK_SIDE or d > MAX_AUTO_FACTOR):
        d //= 2
    return int(d)


def pyramid_factors(height: int, width: int, min_side: int = MIN_WORK_SIDE) -> list[int]:
    """The coarse levels ``scale="pyramid"`` restores before full resolution, coarsest first:
    [2^k, ..., 4, 2] with 2^k the largest power of two that leaves the short side at least
    ``min_side`` (empty below 2 * ``min_side``), at most the largest working factor accepted."""
    factors: list[int] = []
    d = 2
    while min(height, width) / d >= min_side and d <= MAX_SCALE:
        factors.insert(0, d)
        d *= 2
    return factors


def restore_pyramid(x: torch.Tensor, restore: Callable[[torch.Tensor, Progress], torch.Tensor], factors: list[int],
                    progress: Progress = None) -> torch.Tensor:
    """Coarse to fine: for each factor d of ``factors`` (coarsest first) restore ``x``
    downscaled by d and carry the change up (:func:`carry_up`) into ``x``; then restore the
    result at full resolution. ``restore(x, progress)`` maps a (3, h, w) tensor to its
    restoration; ``progress`` is passed to the full-resolution pass only (it holds the tiles)."""
    for d in factors:
        x = restore_at_factor(x, restore, d)
    return restore(x, progress)


def restore_at_factor(x: torch.Tensor, restore: Callable[[torch.Tensor, Progress], torch.Tensor], factor: int,
                      progress: Progress = None) -> torch.Tensor:
    """``x`` restored at 1/``factor`` of its size, the change carried up to full resolution."""
    lo = downscale(x, factor)
    return carry_up(x, lo, restore(lo, progress), factor)


def work_factor(scale: int | str, height: int, width: int) -> int:
    """The single working-resolution factor of ``scale`` (see :func:`restore_at_scale`) for a
    photo of this size; 1 for full resolution and for ``"pyramid"``."""
    if scale == "pyramid":
        return 1
    return auto_factor(height, width) if scale == "auto" else int(scale)


def restore_at_scale(x: torch.Tensor, restore: Callable[[torch.Tensor, Progress], torch.Tensor], scale: int | str,
                     progress: Progress = None) -> torch.Tensor:
    """Restore the (3, H, W) photo ``x`` at the working scale ``scale`` (as
    :func:`uniremoval.options.parse_scale` returns it): at full resolution, at 1/d with the
    change carried up, or coarse to fine (``"pyramid"``). ``restore(x, progress)`` runs the
    network over a (3, h, w) tensor at its own size."""
    if scale == "pyramid":
        return restore_pyramid(x, restore, pyramid_factors(x.shape[1], x.shape[2]), progress)
    d = work_factor(scale, x.shape[1], x.shape[2])
    return restore_at_factor(x, restore, d, progress) if d > 1 else restore(x, progress)


def downscale(x: torch.Tensor, factor: int) -> torch.Tensor:
    """(3, H, W) -> (3, ceil(H/f), ceil(W/f)): the area mean of ``factor`` x ``factor`` cells,
    the photo mirrored at the bottom and right to a multiple of ``factor`` first (as the
    engine pads for the network: :func:`uniremoval.nets.pad_to_multiple`)."""
    return F.avg_pool2d(pad_to_multiple(x, factor)[0][None].float(), factor)[0]


def carry_up(x: torch.Tensor, x_lo: torch.Tensor, y_lo: torch.Tensor, factor: int,
             radius: int = RADIUS, eps: float = EPS, strip: int = 256) -> torch.Tensor:
    """Full-resolution output from a working-resolution restoration.

    ``x`` (3, H, W) the photo, ``x_lo`` = :func:`downscale` (x, factor), ``y_lo`` its
    restoration (same size). Returns ``x + a_up * x + b_up`` clipped to [0, 1], where (a, b) fit
    ``y_lo - x_lo`` locally on ``x_lo`` and are upsampled bilinearly: the same numbers as
    :func:`uniremoval.nets.globalctx.guided_upsample`, computed ``strip`` rows at a time so a
    24 MP photo never holds full-resolution coefficient maps.
    """
    if x_lo.shape != y_lo.shape:
        raise ValueError(f"restored {tuple(y_lo.shape)} and downscaled {tuple(x_lo.shape)} sizes differ")
    x = x.float()
    a, b = guided_coefficients((y_lo.float() - x_lo.float())[None], x_lo[None], radius, eps)
    ab = torch.cat([a, b], 1)  # (1, 6, h, w)
    h_lo = ab.shape[-2]
    height, width = x.shape[-2:]
    out = torch.empty_like(x)
    step = max(1, strip // factor)
    for l0 in range(0, h_lo, step):
        r0 = l0 * factor
        if r0 >= height:
            break
        l1 = min(h_lo, l0 + step)
        # One working row on each side: bilinear output rows of [l0, l1) read rows l0-1..l1,
        # so the strip's rows equal the whole map's (edges clamp exactly as the whole map's).
        s0, s1 = max(0, l0 - 1), min(h_lo, l1 + 1)
        up = F.interpolate(ab[:, :, s0:s1], scale_factor=factor, mode="bilinear", align_corners=False)[0]
        r1 = min(height, l1 * factor)
        off = (l0 - s0) * factor
        up = up[:, off : off + (r1 - r0), :width]
        xs = x[:, r0:r1]
        out[:, r0:r1] = (xs + up[:3] * xs + up[3:]).clamp_(0, 1)
    return out
