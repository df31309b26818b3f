"""TIFF details Pillow does not cover: 16-bit colour and floating-point samples (read with
tifffile), and telling a TIFF's own layout tags apart from EXIF worth keeping.

Floating-point TIFFs (float16/32/64) are read as follows, and always as a 16-bit image (a
lossless output is 16-bit PNG/TIFF; float output is not written):

- all samples in [0, 1]: used as they are (1.0 = white, the usual convention);
- whole numbers in 0..255 or 0..65535 (integer data saved as float): divided by 255 or 65535;
- anything else (HDR highlights, negative values): clipped to [0, 1], with a note giving the
  range found;
- NaN and -inf become 0, +inf becomes 1, with a note.

Unsupported, with a one-line reason: floating-point TIFFs other than grey or RGB (with or
without one alpha sample), e.g. CMYK or five-sample images.
"""
from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image as PILImage

from .base import ImageReadError, check_pixel_cap

#: First bytes of a TIFF (little/big endian) and a BigTIFF.
TIFF_MAGICS = frozenset({b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"})

#: IFD0 tags of a TIFF kept as EXIF: who made the photo, when, and the EXIF/GPS sub-IFDs.
#: Everything else there (size, strips, compression, orientation once applied, the software
#: that wrote the file, tifffile's shape description) describes the file, not the photo.
_EXIF_TAGS_KEPT = frozenset({0x010F, 0x0110, 0x0132, 0x013B, 0x8298, 0x8769, 0x8825})


def exif_without_tiff_layout(exif: PILImage.Exif) -> None:
    """Delete, in place, the tags of a TIFF's first IFD that are not photo metadata."""
    for tag in [t for t in exif if t not in _EXIF_TAGS_KEPT]:
        del exif[tag]


def tiff_is_16bit(im: PILImage.Image) -> bool:
    """True for a 16-bit integer TIFF that Pillow would reduce to 8 bit."""
    if im.mode.startswith("I;16"):
        return False  # Pillow reads single-channel 16-bit TIFF losslessly
    bps = im.tag_v2.get(258) if hasattr(im, "tag_v2") else None
    if isinstance(bps, tuple):
        bps = bps[0]
    return bps == 16


def _samples_last(arr: np.ndarray, axes: str | None = None) -> np.ndarray:
    """(H, W, samples) from tifffile's array; ``axes`` (e.g. "SYX") when known, else guessed."""
    if arr.ndim == 2:
        return arr[..., None]
    if axes is not None:
        return np.moveaxis(arr, 0, -1) if arr.ndim == 3 and axes.startswith("S") else arr
    if arr.ndim == 3 and arr.shape[0] in (2, 3, 4) and arr.shape[2] not in (2, 3, 4):
        return np.moveaxis(arr, 0, -1)  # planar configuration
    return arr


def read_tiff16(data: bytes) -> tuple[np.ndarray, np.ndarray | None]:
    """Pixels in [0, 1] and uint16 alpha (or None) of a 16-bit integer TIFF."""
    import tifffile

    arr = tifffile.imread(io.BytesIO(data), key=0)
    if arr.dtype != np.uint16:
        raise ImageReadError(f"unsupported TIFF sample type {arr.dtype}")
    arr = _samples_last(arr)
    alpha = arr[..., 3].copy() if arr.shape[2] in (2, 4) else None
    colour = 1 if arr.shape[2] in (1, 2) else 3
    return arr[..., :colour].astype(np.float32) / 65535.0, alpha


def float_to_unit(arr: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Floating-point samples as float32 in [0, 1], and notes on what was changed (see the
    module docstring for the rules)."""
    a = np.asarray(arr, dtype=np.float64)
    notes: list[str] = []
    finite = np.isfinite(a)
    if not finite.all():
        notes.append(f"{int((~finite).sum())} NaN/infinite samples set to 0 (NaN, -inf) or 1 (+inf)")
        a = np.nan_to_num(a, nan=0.0, posinf=1.0, neginf=0.0)
    lo, hi = float(a.min(initial=0.0)), float(a.max(initial=0.0))
    if lo >= 0.0 and hi <= 1.0:
        pass
    elif lo >= 0.0 and hi <= 65535.0 and bool(np.all(a == np.round(a))):
        scale = 255.0 if hi <= 255.0 else 65535.0
        notes.append(f"float TIFF holds whole numbers up to {hi:g}: read as {8 if scale == 255 else 16}-bit values")
        a = a / scale
    else:
        notes.append(f"float TIFF values span [{lo:.4g}, {hi:.4g}]: clipped to [0, 1] (1.0 = white)")
        a = np.clip(a, 0.0, 1.0)
    return a.astype(np.float32), notes


def decode_float_tiff(
    data: bytes, name: str, max_pixels: int | None
) -> tuple[np.ndarray, np.ndarray | None, bytes | None, int, list[str]] | None:
    """(pixels, uint16 alpha, ICC, EXIF orientation, notes) of a floating-point TIFF, or None
    when the TIFF's first image is not floating point (Pillow reads those)."""
    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            page = tif.pages[0]
            if page.dtype is None or np.dtype(page.dtype).kind != "f":
                return None
            check_pixel_cap(name, int(page.imagewidth), int(page.imagelength), max_pixels)
            photometric = int(page.photometric)
            tags = {t.code: t.value for t in page.tags.values()}
            n_pages = len(tif.pages)
            arr = _samples_last(page.asarray(), page.axes)
    except ImageReadError:
        raise
    except Exception as e:  # broken IFDs, unknown compression, truncated strips
        raise ImageReadError(f"{name}: cannot decode (TIFF): {e}") from None
    samples = arr.shape[2]
    # Photometric 1 = grey (black is zero), 2 = RGB.
    if photometric not in (1, 2) or samples not in (1, 2, 3, 4) or (photometric == 2) != (samples >= 3):
        raise ImageReadError(
            f"{name}: floating-point TIFF with {samples} samples per pixel and photometric "
            f"{photometric} is not supported (only grey or RGB, optionally with alpha)"
        )
    unit, notes = float_to_unit(arr)
    colour = 1 if samples in (1, 2) else 3
    alpha = (unit[..., colour] * 65535.0 + 0.5).astype(np.uint16) if samples in (2, 4) else None
    if n_pages > 1:
        notes.insert(0, f"TIFF with {n_pages} pages: only the first is restored")
    if 0x8769 in tags or 0x8825 in tags:
        notes.append("EXIF of a floating-point TIFF is not kept")
    icc = tags.get(0x8773)
    orientation = tags.get(0x0112, 1)
    orientation = int(orientation) if orientation in range(1, 9) else 1
    return np.ascontiguousarray(unit[..., :colour]), alpha, bytes(icc) if icc else None, orientation, notes


def tiff_header_size(path: str | os.PathLike[str]) -> tuple[tuple[int, int], int] | None:
    """((height, width), EXIF orientation) of a TIFF's first image from its header, or None
    when ``path`` is not a readable TIFF."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            orientation = page.tags.get(0x0112)
            value = int(orientation.value) if orientation is not None else 1
            return (int(page.imagelength), int(page.imagewidth)), value
    except Exception:  # not a TIFF, or a broken one: the caller reports Pillow's reason
        return None
