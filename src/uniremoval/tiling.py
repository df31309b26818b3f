"""Tile planning for the inference engine: where tiles start, how large they are, how
they overlap and how they are blended (see :mod:`uniremoval.infer` for the scheme)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def tile_starts(total: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``total`` with at least ``overlap``."""
    if total <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, total - tile, stride))
    starts.append(total - tile)
    return starts


def blend_window(tile: int, overlap: int, inner_start: bool, inner_end: bool) -> torch.Tensor:
    """1-D blend weights of a tile: zero over the outer quarter of an inner overlap, a
    raised-cosine ramp over its middle half, one elsewhere and at image borders."""
    w = torch.ones(tile, dtype=torch.float64)
    if overlap > 0:
        q = overlap // 4
        ramp_len = max(overlap - 2 * q, 1)
        i = torch.arange(overlap, dtype=torch.float64)
        t = ((i - q + 0.5) / ramp_len).clamp(0, 1)
        ramp = 0.5 - 0.5 * torch.cos(math.pi * t)
        if inner_start:
            w[:overlap] = torch.minimum(w[:overlap], ramp)
        if inner_end:
            w[tile - overlap :] = torch.minimum(w[tile - overlap :], ramp.flip(0))
    return w.float()


@dataclass
class TilePlan:
    """How an image is cut: padded size, tile size, overlaps and tile start offsets per axis."""

    height: int
    width: int
    padded_height: int
    padded_width: int
    tile_h: int
    tile_w: int
    overlap_h: int
    overlap_w: int
    ys: list[int]
    xs: list[int]

    @property
    def overlap(self) -> int:
        """The smaller of the two axes' overlaps."""
        return min(self.overlap_h, self.overlap_w)

    @property
    def n_tiles(self) -> int:
        return len(self.ys) * len(self.xs)

    @property
    def tiled(self) -> bool:
        return self.n_tiles > 1


def _round_up(v: int, m: int) -> int:
    return -(-v // m) * m


def _axis_overlap(total: int, tile: int, overlap: int, multiple: int) -> int:
    """The overlap to use along one axis: at least ``overlap``, widened as far as the same
    number of tiles allows (on the ``multiple`` grid). More overlap costs nothing once the tile
    count is fixed and moves the seams further from the tiles' edges."""
    n = len(tile_starts(total, tile, overlap))
    if n < 2:
        return overlap
    stride = _round_up(-(-(total - tile) // (n - 1)), multiple)
    return max(overlap, min(tile - stride, tile - multiple))


def _fit_tile(total: int, tile: int, overlap: int, multiple: int) -> int:
    """The smallest tile (on the ``multiple`` grid, at most ``tile``) that covers ``total``
    with the same number of tiles as ``tile`` needs, each overlap at least ``overlap``.

    A fixed tile wastes work: 4000 px at 384 px tiles with 32 px overlap needs 12 tiles, whose
    last one mostly repeats its neighbour; 12 tiles of 368 px cover it too (-8 % pixels).
    """
    if total <= tile:
        return total
    n = len(tile_starts(total, tile, overlap))
    return min(tile, _round_up(-(-(total - overlap) // n) + overlap, multiple))


def plan_tiles(height: int, width: int, multiple: int, tile: int | None, overlap: int, fit: bool = False) -> TilePlan:
    """Plan tiles for an image; ``tile=None`` means one pass over the padded image.
    ``overlap`` is the minimum; each axis widens it when that needs no more tiles. With
    ``fit`` each axis shrinks its tiles to the smallest size that keeps the tile count
    (:func:`_fit_tile`), so tiles may be rectangular and differ from photo to photo."""
    ph, pw = _round_up(height, multiple), _round_up(width, multiple)
    if tile is None:
        return TilePlan(height, width, ph, pw, ph, pw, 0, 0, [0], [0])
    t = max(_round_up(tile, multiple), multiple)
    ov = _round_up(max(overlap, 0), multiple) if overlap > 0 else 0
    if ov >= t:
        raise ValueError(f"tile overlap {overlap} must be smaller than the tile size {t}")
    th, tw = min(t, ph), min(t, pw)
    if fit and ov > 0:
        th, tw = _fit_tile(ph, th, ov, multiple), _fit_tile(pw, tw, ov, multiple)
    oh, ow = (_axis_overlap(ph, th, ov, multiple), _axis_overlap(pw, tw, ov, multiple)) if ov > 0 else (0, 0)
    return TilePlan(height, width, ph, pw, th, tw, oh, ow, tile_starts(ph, th, oh), tile_starts(pw, tw, ow))
