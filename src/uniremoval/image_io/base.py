"""What the image layer hands out: the :class:`Image` record, the extension sets and errors."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

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
#: Extensions (lower case) treated as images wherever a folder is read: restore, datasets,
#: evaluation. GIF: first frame only; PPM: read, written as PNG by restore.
READABLE_EXTENSIONS: frozenset[str] = frozenset(FORMATS) | {".gif", ".ppm"}


class ImageReadError(Exception):
    """A file could not be read as a photo; the message names the file and the reason."""


class ImageTooLargeError(ImageReadError):
    """The image has more pixels than the decompression-bomb cap allows."""


def check_pixel_cap(name: str, w: int, h: int, max_pixels: int | None) -> None:
    """Raise :class:`ImageTooLargeError` when ``w * h`` is over ``max_pixels`` (None: no cap)."""
    if max_pixels is not None and w * h > max_pixels:
        raise ImageTooLargeError(
            f"{name}: {w}x{h} = {w * h / 1e6:.1f} MP exceeds the {max_pixels / 1e6:.0f} MP limit "
            f"that guards against decompression bombs (raise it with --max-pixels)"
        )


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
        """Rows of pixels."""
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        """Columns of pixels."""
        return int(self.pixels.shape[1])

    @property
    def is_gray(self) -> bool:
        """True for a single-channel photo."""
        return self.pixels.shape[2] == 1

    def with_pixels(self, pixels: np.ndarray) -> "Image":
        """Same metadata and alpha, new pixels (same size)."""
        if pixels.shape != self.pixels.shape:
            raise ValueError(f"pixel shape {pixels.shape} differs from {self.pixels.shape}")
        return replace(self, pixels=pixels)
