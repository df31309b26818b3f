"""Reading and writing photos without losing what a photographer cares about: the one
image-file layer of uniremoval (restore, serve, datasets and evaluation all use it).

A decoded photo is an :class:`Image`: float32 pixels in [0, 1] (H, W, C with C = 1 or 3),
plus alpha kept aside untouched, the bit depth it came with, and the EXIF/ICC metadata to
write back. EXIF orientation is applied on read (the pixels are upright and the written EXIF
says orientation 1), so no viewer rotates the result twice.

Parts: :mod:`.base` (the record, extension sets, errors), :mod:`.decode` and :mod:`.tiff`
(reading), :mod:`.encode` (writing), :mod:`.scan` (finding images in a folder).
"""
from __future__ import annotations

import os
from pathlib import Path

from .base import (
    DEFAULT_MAX_PIXELS,
    FORMATS,
    READABLE_EXTENSIONS,
    Image,
    ImageReadError,
    ImageTooLargeError,
    ImageWriteError,
)
from .decode import decode_image, image_size
from .encode import atomic_write_bytes, encode_image, output_format, write_image
from .scan import is_image_name, link_problem, scan_images


def read_image(path: str | os.PathLike[str], max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image:
    """Read a photo, apply its EXIF orientation and return it as an :class:`Image`.

    Raises:
        ImageReadError: with a one-line reason for empty, truncated, corrupt, non-image,
            unreadable or too-large (over ``max_pixels``) files.
    """
    # Defined in the package itself (not a submodule) so that ``open`` is looked up here:
    # tests running as root patch ``uniremoval.image_io.open`` to simulate EACCES.
    p = Path(path)
    try:
        if p.is_dir():
            raise ImageReadError(f"{p}: is a folder, not an image")
        size = p.stat().st_size
        if size == 0:
            raise ImageReadError(f"{p}: empty file (0 bytes)")
        with open(p, "rb") as fh:
            data = fh.read()
    except ImageReadError:
        raise
    except OSError as e:
        raise ImageReadError(f"{p}: cannot read: {e.strerror or e}") from None
    return decode_image(data, name=str(p), max_pixels=max_pixels)


__all__ = [
    "DEFAULT_MAX_PIXELS", "FORMATS", "READABLE_EXTENSIONS", "Image", "ImageReadError", "ImageTooLargeError",
    "ImageWriteError", "atomic_write_bytes", "decode_image", "encode_image", "is_image_name",
    "image_size", "link_problem", "output_format", "read_image", "scan_images", "write_image",
]
