"""Per-request options of ``POST /v1/restore`` (form fields or query parameters), validated
with the same parser as the command line's (:mod:`uniremoval.options`)."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Mapping

from ..image_io import FORMATS
from ..options import parse_scale, parse_tile
from ..restorer import Restorer
from .errors import ApiError
from .settings import ServeSettings

#: Largest accepted ``tile_overlap`` in pixels.
MAX_TILE_OVERLAP = 1024


@dataclass(frozen=True)
class RestoreOptions:
    """Per-request options, the same as the CLI's (device and precision are the server's).

    ``tile``: None = the server's setting, ``"auto"``, 0 (never tile) or a size in pixels.
    ``scale``: None = the server's setting, ``"auto"``, ``"pyramid"`` or a working-resolution factor.
    """

    fmt: str | None = None
    jpeg_quality: int = 95
    tile: int | str | None = None
    tile_overlap: int | None = None
    scale: int | str | None = None


def parse_options(fields: Mapping[str, str], settings: ServeSettings) -> RestoreOptions:
    """Validate option fields (form fields or query parameters); 400 on a bad value."""
    fmt: str | None = None
    raw_fmt = fields.get("format") or fields.get("ext")
    if raw_fmt:
        key = "." + raw_fmt.strip().lower().lstrip(".")
        if key not in FORMATS:
            choices = ", ".join(sorted(k.lstrip(".") for k in FORMATS))
            raise ApiError(400, "bad_option", f"format {raw_fmt!r}: use one of {choices}")
        fmt = FORMATS[key]
    quality = settings.default_jpeg_quality
    if fields.get("jpeg_quality"):
        quality = _int_option(fields, "jpeg_quality", 1, 100)
    raw_tile = (fields.get("tile") or "").strip()
    try:
        # An empty field is "not given" (the server's setting), not "never tile".
        tile = parse_tile(raw_tile, maximum=settings.max_tile) if raw_tile else None
    except ValueError as e:
        raise ApiError(400, "bad_option", str(e)) from None
    overlap = _int_option(fields, "tile_overlap", 0, MAX_TILE_OVERLAP) if fields.get("tile_overlap") else None
    raw_scale = (fields.get("scale") or "").strip()
    try:
        scale = parse_scale(raw_scale) if raw_scale else None
    except ValueError as e:
        raise ApiError(400, "bad_option", str(e)) from None
    return RestoreOptions(fmt, quality, tile, overlap, scale)


def _int_option(fields: Mapping[str, str], name: str, lo: int, hi: int) -> int:
    raw = fields[name].strip()
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "bad_option", f"{name} {raw[:40]!r}: not an integer") from None
    if not lo <= value <= hi:
        raise ApiError(400, "bad_option", f"{name} {value}: must be in {lo}..{hi}")
    return value


def restorer_with_tiling(restorer: Restorer, tile: int | str | None, overlap: int | None, scale: int | str | None = None) -> Restorer:
    """A restorer sharing ``restorer``'s network (no reload, no copy of weights) with its
    own tiling and working-scale settings, so concurrent requests with different options
    cannot race."""
    engine = restorer.engine.with_tiling(tile, overlap, scale)
    if engine is restorer.engine:
        return restorer
    clone = copy.copy(restorer)
    clone.engine = engine
    return clone
