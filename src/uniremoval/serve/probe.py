"""Checks an upload passes before it may wait for a worker: a malformed upload is answered
at once instead of queueing behind real work.

What is checked before the queue: the options, that there is an image at all, its type (by
content), its size in pixels, that it is complete, and that the tile options suit its size.
The full decode still happens in the worker; for PNG and JPEG the check here is a fraction
of its cost (PNG: every chunk's checksum up to the end; JPEG: the whole stream decoded at
1/8 scale). Other formats are decoded here exactly as the worker will, and thrown away.
"""
from __future__ import annotations

import io
import warnings
from typing import Mapping

from PIL import Image as PILImage

from ..image_io import ImageReadError, decode_image
from ..restorer import Restorer
from .admission import Gate
from .errors import ApiError, too_many_pixels
from .request import RestoreOptions, parse_options, restorer_with_tiling
from .settings import ServeSettings
from .upload import Upload, sniff_image_type
from .work import decode_error

#: EXIF orientations that swap width and height.
_TRANSPOSED = (5, 6, 7, 8)


def probe_image(data: bytes, sniffed: str, settings: ServeSettings) -> tuple[int, int]:
    """Height and width (upright) of an encoded image, once it is known to be complete and
    within ``settings.max_pixels``. Runs in a thread: it reads the whole image.

    Raises:
        ApiError: 413 ``too_many_pixels``; 400 ``bad_image`` for a truncated or corrupt image.
    """
    if sniffed not in ("PNG", "JPEG"):
        try:
            img = decode_image(data, name="upload", max_pixels=settings.max_pixels)
        except ImageReadError as e:
            raise decode_error(e, sniffed, settings) from None
        return img.height, img.width
    try:
        with warnings.catch_warnings():
            # Our pixel cap below replaces Pillow's bomb warning.
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            im = PILImage.open(io.BytesIO(data))
    except PILImage.DecompressionBombError:
        raise ApiError(413, "too_many_pixels", f"the image has more pixels than this server's limit ({settings.max_pixels} pixels)") from None
    except Exception as e:  # Pillow raises many types for broken headers
        raise ApiError(400, "bad_image", f"{sniffed} image could not be decoded: {e}") from None
    width, height = im.size
    if width * height > settings.max_pixels:
        raise too_many_pixels(width, height, settings.max_pixels)
    if _orientation(im) in _TRANSPOSED:
        width, height = height, width
    try:
        if sniffed == "PNG":
            # verify() must come straight after open(); reading the EXIF above counts as use.
            with PILImage.open(io.BytesIO(data)) as fresh:
                fresh.verify()
        else:
            im.draft(None, (max(1, width // 8), max(1, height // 8)))
            im.load()
    except Exception as e:  # truncated data, broken chunks, bad compression
        raise ApiError(400, "bad_image", f"{sniffed} image could not be decoded: {e}") from None
    finally:
        im.close()
    return height, width


def _orientation(im: PILImage.Image) -> int:
    try:
        value = im.getexif().get(0x0112, 1)
        return int(value) if value in range(1, 9) else 1
    except Exception:  # a broken EXIF block is the decoder's business, not a reason to refuse
        return 1


async def check_upload(
    upload: Upload, query: Mapping[str, str], restorer: Restorer, settings: ServeSettings, gate: Gate, deadline: float
) -> tuple[RestoreOptions, str]:
    """Everything that can be refused before the request waits for a worker; returns the
    parsed options and the image type judged by content. The image check runs in one of
    ``gate``'s check threads, never in a worker slot.

    Raises:
        ApiError: 400 (bad option, empty upload, broken image), 413 (too many pixels) or
            415 (not an image we take); 504 past ``deadline``.
    """
    fields = dict(query)
    fields.update(upload.fields)
    opts = parse_options(fields, settings)
    if not upload.data:
        raise ApiError(400, "empty_upload", "the uploaded file is empty (0 bytes)")
    sniffed = sniff_image_type(upload.data[:32])
    if sniffed is None:
        raise ApiError(415, "unsupported_media_type", "not a supported image (PNG, JPEG, WebP, TIFF, BMP or GIF), judged by its content")
    height, width = await gate.check(probe_image, upload.data, sniffed, settings, deadline=deadline)
    try:
        # The tile plan depends only on the options and the size: a bad pair fails here.
        restorer_with_tiling(restorer, opts.tile, opts.tile_overlap, opts.scale).engine.plan(height, width)
    except ValueError as e:
        raise ApiError(400, "bad_option", str(e)) from None
    return opts, sniffed
