"""Reading and writing photos without losing what a photographer cares about.

A decoded photo is an :class:`Image`: float32 pixels in [0, 1] (H, W, C with C = 1 or 3),
plus alpha kept aside untouched, the bit depth it came with, and the EXIF/ICC metadata to
write back. EXIF orientation is applied on read (the pixels are upright and the written EXIF
says orientation 1), so no viewer rotates the result twice.

Why three libraries: Pillow covers every format's 8-bit path and metadata; it decodes
16-bit RGB PNG and TIFF only as 8 bit, so 16-bit PNGs go through pypng and 16-bit TIFFs
through tifffile, keeping the full precision both ways.
"""
from __future__ import annotations

import io
import os
import struct
import tempfile
import warnings
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from PIL import ImageOps, UnidentifiedImageError

#: Default cap on decoded pixels; raise it with ``--max-pixels`` (CLI) or ``max_pixels``.
DEFAULT_MAX_PIXELS = 120_000_000

#: Output formats by extension; the output format always follows the output extension.
FORMATS: dict[str, str] = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
    ".bmp": "BMP",
}
#: Extensions read when a folder is given (GIF: first frame only).
READABLE_EXTENSIONS = frozenset(FORMATS) | {".gif"}


class ImageReadError(Exception):
    """A file could not be read as a photo; the message names the file and the reason."""


class ImageTooLargeError(ImageReadError):
    """The image has more pixels than the decompression-bomb cap allows."""


class ImageWriteError(Exception):
    """An output could not be written; the message names the file and the reason."""


@dataclass
class Image:
    """A decoded photo.

    Attributes:
        pixels: float32 array (H, W, C), C = 1 (grayscale) or 3 (RGB), values in [0, 1].
        alpha: the alpha channel at the source bit depth (uint8 or uint16), or None.
        bit_depth: 8 or 16, the precision of the source and of a lossless output.
        exif: EXIF block with orientation reset to 1, or None.
        icc: ICC profile bytes of the source colour space, or None.
        notes: things the reader did that a user should know (e.g. "first frame of 12").
    """

    pixels: np.ndarray
    alpha: np.ndarray | None = None
    bit_depth: int = 8
    exif: bytes | None = None
    icc: bytes | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def is_gray(self) -> bool:
        return self.pixels.shape[2] == 1

    def with_pixels(self, pixels: np.ndarray) -> "Image":
        """Same metadata and alpha, new pixels (same size)."""
        if pixels.shape != self.pixels.shape:
            raise ValueError(f"pixel shape {pixels.shape} differs from {self.pixels.shape}")
        return replace(self, pixels=pixels)


# ----------------------------------------------------------------------------- reading


def read_image(path: str | os.PathLike[str], max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image:
    """Read a photo, apply its EXIF orientation and return it as an :class:`Image`.

    Raises:
        ImageReadError: with a one-line reason for empty, truncated, corrupt, non-image,
            unreadable or too-large (over ``max_pixels``) files.
    """
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


def decode_image(data: bytes, name: str = "<bytes>", max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image:
    """Decode an encoded photo held in memory (see :func:`read_image`)."""
    if not data:
        raise ImageReadError(f"{name}: empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            # Our own pixel cap (below) replaces Pillow's bomb warning/error with a clear message.
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            old_cap = PILImage.MAX_IMAGE_PIXELS
            PILImage.MAX_IMAGE_PIXELS = None
            try:
                im = PILImage.open(io.BytesIO(data))
            finally:
                PILImage.MAX_IMAGE_PIXELS = old_cap
    except UnidentifiedImageError:
        raise ImageReadError(f"{name}: not an image Pillow recognises (corrupt or wrong type)") from None
    except Exception as e:  # Pillow raises many types for broken headers
        raise ImageReadError(f"{name}: cannot decode: {e}") from None
    w, h = im.size
    if max_pixels is not None and w * h > max_pixels:
        raise ImageTooLargeError(
            f"{name}: {w}x{h} = {w * h / 1e6:.1f} MP exceeds the {max_pixels / 1e6:.0f} MP limit "
            f"that guards against decompression bombs (raise it with --max-pixels)"
        )
    fmt = im.format or ""
    notes: list[str] = []
    n_frames = getattr(im, "n_frames", 1)
    if n_frames > 1:
        notes.append(f"animated {fmt} with {n_frames} frames: only the first frame is restored")
    icc = im.info.get("icc_profile") or None
    orientation = _orientation(im)
    exif = _exif_bytes(im)
    try:
        if fmt == "PNG" and _png_bit_depth(data) == 16:
            pixels, alpha = _read_png16(data)
            img = Image(pixels, alpha, 16, exif, icc, notes)
            return _apply_orientation(img, orientation)
        if fmt == "TIFF" and _tiff_is_16bit(im):
            pixels, alpha = _read_tiff16(data)
            img = Image(pixels, alpha, 16, exif, icc, notes)
            return _apply_orientation(img, orientation)
        im.seek(0)
        im.load()
    except ImageReadError:
        raise
    except Exception as e:  # truncated data, broken chunks, bad compression
        raise ImageReadError(f"{name}: cannot decode ({fmt or 'unknown format'}): {e}") from None
    try:
        upright = ImageOps.exif_transpose(im)
    except Exception:  # a broken EXIF block must not cost the user the photo
        upright = im
    return _from_pil(upright, exif, icc, notes, name)


def _orientation(im: PILImage.Image) -> int:
    try:
        value = im.getexif().get(0x0112, 1)
        return int(value) if value in range(1, 9) else 1
    except Exception:
        return 1


def _exif_bytes(im: PILImage.Image) -> bytes | None:
    """The EXIF block with orientation set to 1 (the pixels are made upright on read).

    Works on a copy: Pillow caches the Exif object, and exif_transpose still needs the
    original orientation.
    """
    try:
        raw = im.getexif().tobytes()
        exif = PILImage.Exif()
        exif.load(raw)
    except Exception:
        return None
    if not exif:
        return None
    if 0x0112 in exif:
        exif[0x0112] = 1
    try:
        return exif.tobytes()
    except Exception:
        return None


def _apply_orientation(img: Image, orientation: int) -> Image:
    """Rotate/flip the numpy pixels of a 16-bit path by an EXIF orientation value."""

    def fix(a: np.ndarray | None) -> np.ndarray | None:
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

    return replace(img, pixels=fix(img.pixels), alpha=fix(img.alpha))


def _from_pil(im: PILImage.Image, exif: bytes | None, icc: bytes | None, notes: list[str], name: str) -> Image:
    mode = im.mode
    alpha: np.ndarray | None = None
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
        return Image((np.clip(arr / scale, 0, 1)).astype(np.float32)[..., None], None, 16 if scale > 255 else 8, exif, icc, notes)
    if mode == "LA":
        arr = np.asarray(im)
        return Image(arr[..., :1].astype(np.float32) / 255.0, arr[..., 1].copy(), 8, exif, icc, notes)
    if mode == "RGBA":
        arr = np.asarray(im)
        alpha = arr[..., 3].copy()
        return Image(arr[..., :3].astype(np.float32) / 255.0, alpha, 8, exif, icc, notes)
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


def _tiff_is_16bit(im: PILImage.Image) -> bool:
    if im.mode.startswith("I;16"):
        return False  # Pillow reads single-channel 16-bit TIFF losslessly
    bps = im.tag_v2.get(258) if hasattr(im, "tag_v2") else None
    if isinstance(bps, tuple):
        bps = bps[0]
    return bps == 16


def _read_tiff16(data: bytes) -> tuple[np.ndarray, np.ndarray | None]:
    import tifffile

    arr = tifffile.imread(io.BytesIO(data), key=0)
    if arr.dtype != np.uint16:
        raise ImageReadError(f"unsupported TIFF sample type {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim == 3 and arr.shape[0] in (3, 4) and arr.shape[2] not in (3, 4):
        arr = np.moveaxis(arr, 0, -1)  # planar configuration
    alpha = arr[..., 3].copy() if arr.shape[2] in (2, 4) else None
    colour = 1 if arr.shape[2] in (1, 2) else 3
    return arr[..., :colour].astype(np.float32) / 65535.0, alpha


# ----------------------------------------------------------------------------- writing


def output_format(path: str | os.PathLike[str]) -> str:
    """Pillow format name for an output path, from its extension."""
    ext = Path(path).suffix.lower()
    try:
        return FORMATS[ext]
    except KeyError:
        raise ImageWriteError(
            f"{path}: unknown output extension {ext or '(none)'}; use one of {', '.join(sorted(FORMATS))}"
        ) from None


def _quantize(pixels: np.ndarray, bits: int) -> np.ndarray:
    top = 65535.0 if bits == 16 else 255.0
    dtype = np.uint16 if bits == 16 else np.uint8
    # Round half up after clipping: the usual convention (and the one PSNR tables assume).
    # clamp(p * top + 0.5, 0, top) truncated equals floor(clip(p, 0, 1) * top + 0.5), in two
    # in-place passes with torch's threads instead of five numpy passes (12 MP: 0.67 -> ~0.1 s);
    # the transpose to a contiguous array happens on the small integer result.
    import torch  # here, so reading and writing images alone does not load torch

    t = torch.from_numpy(np.asarray(pixels, dtype=np.float32))
    q = t.mul(top).add_(0.5).clamp_(0.0, top)
    return q.to(torch.int32 if bits == 16 else torch.uint8).contiguous().numpy().astype(dtype, copy=False)


def encode_image(img: Image, fmt: str, jpeg_quality: int = 95) -> tuple[bytes, list[str]]:
    """Encode ``img`` in Pillow format ``fmt``; returns the bytes and notes on what was lost."""
    notes: list[str] = []
    alpha = img.alpha
    if alpha is not None and fmt in ("JPEG", "BMP"):
        notes.append(f"{fmt} has no alpha channel: alpha dropped")
        alpha = None
    sixteen = img.bit_depth == 16 and fmt in ("PNG", "TIFF")
    if img.bit_depth == 16 and not sixteen:
        notes.append(f"{fmt} is 8-bit: written in 8 bit")
    if sixteen:
        px = _quantize(img.pixels, 16)
        a16 = alpha if alpha is None or alpha.dtype == np.uint16 else alpha.astype(np.uint16) * 257
        arr = px if a16 is None else np.concatenate([px, a16[..., None]], axis=2)
        if fmt == "PNG":
            return _encode_png16(arr, img.icc, img.exif), notes
        return _encode_tiff16(arr, img.icc), notes + (["EXIF not written to 16-bit TIFF"] if img.exif else [])
    px = _quantize(img.pixels, 8)
    a8 = None if alpha is None else (alpha if alpha.dtype == np.uint8 else (alpha // 257).astype(np.uint8))
    if px.shape[2] == 1:
        arr, mode = (px[..., 0], "L") if a8 is None else (np.dstack([px[..., 0], a8]), "LA")
    else:
        arr, mode = (px, "RGB") if a8 is None else (np.dstack([px, a8]), "RGBA")
    if fmt == "WEBP" and mode == "LA":
        arr, mode = np.dstack([arr[..., 0]] * 3 + [arr[..., 1]]), "RGBA"
    pil = PILImage.fromarray(np.ascontiguousarray(arr))  # mode follows from shape and dtype
    kw: dict[str, object] = {}
    if fmt == "JPEG":
        kw.update(quality=int(jpeg_quality), subsampling=0 if jpeg_quality >= 90 else 2)
    if fmt == "WEBP":
        kw.update(quality=int(jpeg_quality))
    if fmt != "BMP":
        if img.icc:
            kw["icc_profile"] = img.icc
        if img.exif:
            kw["exif"] = img.exif
    elif img.icc or img.exif:
        notes.append("BMP keeps no EXIF/ICC metadata: not written")
    buf = io.BytesIO()
    pil.save(buf, format=fmt, **kw)
    return buf.getvalue(), notes


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def _encode_png16(arr: np.ndarray, icc: bytes | None, exif: bytes | None) -> bytes:
    import png

    h, w, c = arr.shape
    writer = png.Writer(w, h, greyscale=c in (1, 2), alpha=c in (2, 4), bitdepth=16, compression=6)
    buf = io.BytesIO()
    writer.write(buf, arr.reshape(h, w * c))
    data = buf.getvalue()
    extra = b""
    if icc:
        extra += _png_chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(icc))
    if exif:
        extra += _png_chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif)
    if extra:
        # Metadata chunks must precede IDAT; the IHDR chunk ends at byte 33.
        data = data[:33] + extra + data[33:]
    return data


def _encode_tiff16(arr: np.ndarray, icc: bytes | None) -> bytes:
    import tifffile

    buf = io.BytesIO()
    photometric = "minisblack" if arr.shape[2] in (1, 2) else "rgb"
    extrasamples = ["unassalpha"] if arr.shape[2] in (2, 4) else None
    data = arr[..., 0] if arr.shape[2] == 1 else arr
    tifffile.imwrite(
        buf, data, photometric=photometric, compression="zlib", iccprofile=icc, extrasamples=extrasamples
    )
    return buf.getvalue()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and an atomic rename,
    so a crash never leaves a half-written output under the final name."""
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    except OSError as e:
        raise ImageWriteError(f"{p}: cannot write to {p.parent}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, p)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise ImageWriteError(f"{p}: cannot write: {e.strerror or e}") from None


def write_image(img: Image, path: str | os.PathLike[str], jpeg_quality: int = 95) -> list[str]:
    """Write ``img`` atomically in the format of ``path``'s extension; returns notes on what
    the format could not keep (alpha in JPEG, 16 bit in WebP, ...)."""
    fmt = output_format(path)
    data, notes = encode_image(img, fmt, jpeg_quality)
    atomic_write_bytes(path, data)
    return notes
