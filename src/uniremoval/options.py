"""Options shared by the command line, the HTTP server and the Python API: the tile size,
the working scale, the device, and the per-device tiling defaults.

One parser and one resolver, so ``uniremoval restore``, ``uniremoval serve`` and
``POST /v1/restore`` accept the same values with the same bounds and pick the same device.
This module sits at the bottom of the layers: it imports nothing from uniremoval, and torch
only inside :func:`resolve_device`, so CLI help can quote the defaults without the ~2 s it
takes to import torch.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    import torch

#: Smallest tile side in pixels. Tiles much under 384 px already cost quality (see
#: ``uniremoval.infer``); under 16 px a 12 MP photo becomes ~50 000 forward passes or more,
#: which on a server is a denial of service. 16 is the floor the HTTP API always had.
MIN_TILE = 16

#: Tile once an image has more pixels than this (per device type); see ``uniremoval.infer``
#: for the measurements behind these numbers.
DEFAULT_PIXEL_BUDGET = {"cpu": 512 * 512, "cuda": 16_000_000, "mps": 4_000_000}
#: Tile side used by ``tile="auto"`` (per device type).
DEFAULT_TILE = {"cpu": 512, "cuda": 1024, "mps": 768}
#: Tiles per forward pass (per device type): batching helps accelerators, not CPUs.
DEFAULT_TILE_BATCH = {"cpu": 1, "cuda": 4, "mps": 2}
#: Minimum tile overlap (per device type); each axis widens it as far as its tile count allows.
DEFAULT_OVERLAP = {"cpu": 32, "cuda": 64, "mps": 64}

#: Words for "never tile", besides 0.
_NEVER = ("0", "none", "never")


def per_device(table: Mapping[str, int]) -> str:
    """A per-device default table as help text: ``{"cpu": 32, "cuda": 64}`` -> ``"CPU 32, CUDA 64"``."""
    return ", ".join(f"{kind.upper()} {value}" for kind, value in table.items())


def _tile_error(value: object) -> ValueError:
    shown = str(value).strip()[:40]
    return ValueError(f"tile {shown!r}: use auto, 0 (never tile) or a size of at least {MIN_TILE} pixels")


def parse_tile(value: str | int | None, maximum: int | None = None) -> int | str | None:
    """Parse a tile option as the CLI, the server and the HTTP API all take it.

    Args:
        value: ``"auto"`` (tile large images with the device's default size), ``0``,
            ``"0"``, ``"none"`` or ``"never"`` (never tile), or a tile side in pixels
            (at least :data:`MIN_TILE`), as an int or a string; case and surrounding
            spaces do not matter. ``None`` means "not given" and is returned unchanged.
        maximum: the largest accepted size, if any (the server caps what requests ask for).

    Returns:
        ``"auto"``, ``0`` (never tile; :class:`~uniremoval.infer.Engine` reads 0 and None
        alike), a size in pixels, or ``None`` when ``value`` was None.

    Raises:
        ValueError: with a one-line message naming the value and what is accepted.
    """
    if value is None:
        return None
    if isinstance(value, bool):  # bool is an int; True is no tile size
        raise _tile_error(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "auto":
            return "auto"
        if text in _NEVER:
            return 0
        try:
            size = int(text)
        except ValueError:
            raise _tile_error(value) from None
    else:
        size = int(value)
    if size == 0:
        return 0
    if size < MIN_TILE:
        raise _tile_error(value)
    if maximum is not None and size > maximum:
        raise ValueError(f"tile {size}: at most {maximum} pixels")
    return size


#: The working scale ``restore``, the server and the Python API use unless told otherwise.
DEFAULT_SCALE: int | str = 1
#: Largest working-resolution factor accepted (1/32 of a 24 MP photo is 188 px).
MAX_SCALE = 32


def parse_scale(value: str | int | None) -> int | str:
    """Parse a working-scale option (CLI, server, API): ``"auto"``, ``"pyramid"``, or a factor d in
    1..:data:`MAX_SCALE` (restore at 1/d of the resolution; 1 = full), as an int or a string.
    ``None`` means the default, :data:`DEFAULT_SCALE`.

    Raises:
        ValueError: with a one-line message naming the value and what is accepted.
    """
    if value is None:
        return DEFAULT_SCALE
    text = value.strip().lower() if isinstance(value, str) else value
    if text in ("auto", "pyramid"):
        return str(text)
    try:
        if isinstance(text, bool) or (isinstance(text, float) and not text.is_integer()):
            raise ValueError
        d = int(text)
    except (TypeError, ValueError):
        d = 0
    if not 1 <= d <= MAX_SCALE:
        raise ValueError(f"scale {value!r}: use auto, pyramid or a whole factor from 1 (full resolution) to {MAX_SCALE}")
    return d


def resolve_device(name: "str | torch.device" = "auto", rank: int | None = None) -> "torch.device":
    """The torch device to run on; one rule for the CLI, the server and the Python API.

    ``auto`` picks CUDA when it is available, then Apple's MPS, then the CPU. With ``rank``
    (this process's local rank under torchrun) ``auto`` picks ``cuda:{rank % device count}``,
    so the processes of one machine share its GPUs evenly; without it, plain ``cuda`` (the
    current device). Any other name (``cpu``, ``cuda``, ``cuda:1``, ``mps``) is taken as
    given once it is checked to exist here.

    Raises:
        ValueError: an unknown device name, or CUDA/MPS asked for where it is not available.
    """
    import torch

    if isinstance(name, torch.device):
        return name
    text = name.strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda" if rank is None else f"cuda:{rank % torch.cuda.device_count()}")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError):
        raise ValueError(f"device {name!r}: use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} requested but CUDA is not available (use --device cpu or auto)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps" and not _mps_available():
        raise ValueError(f"device {name!r} requested but Apple MPS is not available (use --device cpu or auto)")
    return dev


def _mps_available() -> bool:
    import torch

    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())
