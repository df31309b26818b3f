"""Decoding encoded bytes into an :class:`Image`: the one decoder restore, datasets and
evaluation share, so training and restoring see the same pixels for the same file.

EXIF orientation is applied here and only here. Pillow covers every format's 8-bit path and
metadata; it decodes 16-bit RGB PNG and TIFF only as 8 bit, so 16-bit PNGs go through pypng
and 16-bit and floating-point TIFFs through tifffile (see :mod:`.tiff`).
"""
from __future__ import annotations

import io
import os
import warnings
from dataclasses import replace

import numpy as np
from PIL import Image as PILImage
from PIL import ImageOps, UnidentifiedImageError

from .base import DEFAULT_MAX_PIXELS, Image, ImageReadError, check_pixel_cap
from .tiff import TIFF_MAGICS, decode_float_tiff, exif_without_tiff_layout, read_tiff16, tiff_header_size, tiff_is_16bit


def decode_image(data: bytes, name: str = "<bytes>", max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image:
    """Decode an encoded photo held in memory (see :func:`uniremoval.image_io.read_image`)."""
    if not data:
        raise ImageReadError(f"{name}: empty file (0 bytes)")
    if data[:4] in TIFF_MAGICS:
        # Pillow does not open RGB floating-point TIFFs and misreads grey ones (mode F).
        floating = decode_float_tiff(data, name, max_pixels)
        if floating is not None:
            pixels, alpha, icc, orientation, notes = floating
            return apply_orientation(Image(pixels, alpha, 16, None, icc, notes), orientation)
    im = _open(data, name)
    w, h = im.size
    check_pixel_cap(name, w, h, max_pixels)
    fmt = im.format or ""
    notes: list[str] = []
    n_frames = getattr(im, "n_frames", 1)
    if n_frames > 1:
        notes.append(f"animated {fmt} with {n_frames} frames: only the first frame is restored")
    icc = im.info.get("icc_profile") or None
    orientation = _orientation(im)
    exif = _exif_bytes(im, fmt)
    try:
        if fmt == "PNG" and _png_bit_depth(data) == 16:
            pixels, alpha = _read_png16(data)
            return apply_orientation(Image(pixels, alpha, 16, exif, icc, notes), orientation)
        if fmt == "TIFF" and tiff_is_16bit(im):
            pixels, alpha = read_tiff16(data)
            return apply_orientation(Image(pixels, alpha, 16, exif, icc, notes), orientation)
        im.seek(0)
        im.load()
    except ImageReadError as e:
        raise ImageReadError(f"{name}: {e}") from None
    except Exception as e:  # truncated data, broken chunks, bad compression
        raise ImageReadError(f"{name}: cannot decode ({fmt or 'unknown format'}): {e}") from None
    try:
        upright = ImageOps.exif_transpose(im)
    except Exception:  # a broken EXIF block must not cost the user the photo
        upright = im
    return _from_pil(upright, exif, icc, notes, name)


def _open(data: bytes, name: str) -> PILImage.Image:
    try:
        with warnings.catch_warnings():
            # Our own pixel cap replaces Pillow's bomb warning/error with a clear message.
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            old_cap = PILImage.MAX_IMAGE_PIXELS
            PILImage.MAX_IMAGE_PIXELS = None
            try:
                return PILImage.open(io.BytesIO(data))
            finally:
                PILImage.MAX_IMAGE_PIXELS = old_cap
    except UnidentifiedImageError:
        raise ImageReadError(f"{name}: not an image Pillow recognises (corrupt or wrong type)") from None
    except Exception as e:  # Pillow raises many types for broken headers
        raise ImageReadError(f"{name}: cannot decode: {e}") from None


def _orientation(im: PILImage.Image) -> int:
    try:
        value = im.getexif().get(0x0112, 1)
        return int(value) if value in range(1, 9) else 1
    except Exception:
        return 1


def _exif_bytes(im: PILImage.Image, fmt: str) -> bytes | None:
    """The EXIF block with orientation set to 1 (the pixels are made upright on read).

    Works on a copy: Pillow caches the Exif object, and exif_transpose still needs the
    original orientation. For a TIFF, Pillow's "EXIF" is the whole first IFD, so the tags
    that describe the TIFF's own layout are dropped (see :func:`.tiff.exif_without_tiff_layout`).
    """
    try:
        raw = im.getexif().tobytes()
        exif = PILImage.Exif()
        exif.load(raw)
    except Exception:
        return None
    if fmt == "TIFF":
        exif_without_tiff_layout(exif)
    if not exif:
        return None
    if 0x0112 in exif:
        exif[0x0112] = 1
    try:
        return exif.tobytes()
    except Exception:
        return None


def orient_array(a: np.ndarray | None, orientation: int) -> np.ndarray | None:
    """Rotate/flip an (H, W, ...) array by an EXIF orientation value (1..8)."""
    if a is None:
        return None
    ops = {
        2: lambda x: x[:, ::-1],
        3: lambda x: x[::-1, ::-1],
        4: lambda x: x[::-1],
        5: lambda x: np.swapaxes(x, 0, 1),
        6: lambda x: np.swapaxes(x, 0, 1)[:, ::-1],
        7: lambda x: np.swapaxes(x, 0, 1)[::-1, ::-1],
        8: lambda x: np.swapaxes(x, 0, 1)[::-1],
    }
    return np.ascontiguousarray(ops[orientation](a)) if orientation in ops else a


def apply_orientation(img: Image, orientation: int) -> Image:
    """Make the numpy pixels (and alpha) of a non-Pillow decode upright."""
    return replace(img, pixels=orient_array(img.pixels, orientation), alpha=orient_array(img.alpha, orientation))


def _from_pil(im: PILImage.Image, exif: bytes | None, icc: bytes | None, notes: list[str], name: str) -> Image:
    mode = im.mode
    if mode == "P" or mode == "PA":
        im = im.convert("RGBA" if ("transparency" in im.info or mode == "PA") else "RGB")
        mode = im.mode
        notes.append("palette image: written as full colour")
    if mode == "1":
        im, mode = im.convert("L"), "L"
    if mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        # A CMYK profile does not describe the RGB pixels we produce, so it is dropped.
        notes.append(f"{mode} image: converted to RGB" + (" (its ICC profile is not kept)" if icc else ""))
        icc = None
        im, mode = im.convert("RGB"), "RGB"
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        arr = np.asarray(im).astype(np.float32) / 65535.0
        return Image(arr[..., None], None, 16, exif, icc, notes)
    if mode in ("I", "F"):
        arr = np.asarray(im).astype(np.float64)
        scale = 65535.0 if arr.max(initial=0) > 255 else 255.0
        px = np.clip(arr / scale, 0, 1).astype(np.float32)[..., None]
        return Image(px, None, 16 if scale > 255 else 8, exif, icc, notes)
    if mode == "LA":
        arr = np.asarray(im)
        return Image(arr[..., :1].astype(np.float32) / 255.0, arr[..., 1].copy(), 8, exif, icc, notes)
    if mode == "RGBA":
        arr = np.asarray(im)
        return Image(arr[..., :3].astype(np.float32) / 255.0, arr[..., 3].copy(), 8, exif, icc, notes)
    if mode == "L":
        return Image(np.asarray(im).astype(np.float32)[..., None] / 255.0, None, 8, exif, icc, notes)
    if mode != "RGB":
        try:
            im = im.convert("RGB")
        except Exception as e:
            raise ImageReadError(f"{name}: unsupported image mode {mode}: {e}") from None
    return Image(np.asarray(im).astype(np.float32) / 255.0, None, 8, exif, icc, notes)


def _png_bit_depth(data: bytes) -> int:
    # IHDR is always the first chunk: 8-byte signature, 4 length, 4 type, then w, h, depth.
    return data[24] if len(data) > 25 else 8


def _read_png16(data: bytes) -> tuple[np.ndarray, np.ndarray | None]:
    import png  # pypng

    w, h, rows, info = png.Reader(bytes=data).asDirect()
    planes = info["planes"]
    arr = np.vstack([np.asarray(r, dtype=np.uint16) for r in rows]).reshape(h, w, planes)
    colour = planes - (1 if info["alpha"] else 0)
    alpha = arr[..., colour].copy() if info["alpha"] else None
    pixels = arr[..., :colour].astype(np.float32) / 65535.0
    return pixels, alpha


def image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(height, width) after EXIF orientation, from the header only (pixels are not decoded).

    Raises:
        ImageReadError: the file cannot be opened or is not an image.
    """
    try:
        with PILImage.open(path) as im:
            w, h = im.size
            orientation = _orientation(im)
    except Exception as e:  # Pillow raises many types for broken headers
        size = tiff_header_size(path)  # floating-point RGB TIFFs are beyond Pillow
        if size is None:
            raise ImageReadError(f"{path}: cannot read image header ({type(e).__name__}: {e})") from None
        (h, w), orientation = size
    return (w, h) if orientation in (5, 6, 7, 8) else (h, w)
