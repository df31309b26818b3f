"""The work of one restore request, run in a worker thread: decode, restore, encode."""
from __future__ import annotations

import ctypes
import sys
import threading
import time
from dataclasses import dataclass

from ..image_io import ImageReadError, ImageTooLargeError, decode_image, encode_image
from ..restorer import Restorer
from .errors import ApiError, Cancelled
from .request import RestoreOptions, restorer_with_tiling
from .settings import ServeSettings


@dataclass
class Result:
    """An encoded restored image and what the user should know about it."""

    data: bytes
    fmt: str
    width: int
    height: int
    notes: list[str]
    ms: float


def _trim_heap() -> None:
    """Give freed heap pages back to the OS (glibc keeps them otherwise), so the server's
    RSS returns to its baseline after large images instead of staying at its peak."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass


def decode_error(e: ImageReadError, sniffed: str, settings: ServeSettings) -> ApiError:
    """The API's answer to a decoder error: 413 for too many pixels, else 400 ``bad_image``."""
    msg = str(e).removeprefix("upload: ")
    if isinstance(e, ImageTooLargeError):
        return ApiError(413, "too_many_pixels", f"{msg.split(' that guards')[0]} of this server ({settings.max_pixels} pixels)")
    return ApiError(400, "bad_image", f"{sniffed} image could not be decoded: {msg}")


def restore_bytes(
    restorer: Restorer, data: bytes, sniffed: str, opts: RestoreOptions, settings: ServeSettings, cancel: threading.Event
) -> Result:
    """Decode, restore and encode one upload (runs in a worker thread).

    Raises:
        ApiError: 413 for too many pixels, 400 for an image that does not decode or bad
            tile options (normally caught before the request queued, see
            :func:`~uniremoval.serve.probe.check_upload`).
        Cancelled: the request timed out (checked after every tile).
    """
    t0 = time.perf_counter()
    try:
        try:
            img = decode_image(data, name="upload", max_pixels=settings.max_pixels)
        except ImageReadError as e:
            raise decode_error(e, sniffed, settings) from None
        if cancel.is_set():
            raise Cancelled()
        worker = restorer_with_tiling(restorer, opts.tile, opts.tile_overlap, opts.scale)
        try:
            worker.engine.plan(img.height, img.width)
        except ValueError as e:
            raise ApiError(400, "bad_option", str(e)) from None

        def progress(done: int, total: int) -> None:
            if cancel.is_set():
                raise Cancelled()

        out = worker.restore_image(img, progress)
        if cancel.is_set():
            raise Cancelled()
        fmt = opts.fmt or ("PNG" if sniffed == "GIF" else sniffed)
        encoded, notes = encode_image(out, fmt, opts.jpeg_quality)
        if sniffed == "GIF" and opts.fmt is None:
            notes.append("GIF input: written as PNG")
        return Result(encoded, fmt, img.width, img.height, img.notes + notes, (time.perf_counter() - t0) * 1000)
    finally:
        img = out = None  # type: ignore[assignment]  # drop the big arrays before trimming
        _trim_heap()
