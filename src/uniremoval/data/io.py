"""Image files for datasets, on top of :mod:`uniremoval.image_io` (the one decoder and folder
scanner restore and evaluation use too, so a photo trains and restores as the same pixels).

Library images are float32 numpy HxWx3 in [0, 1]; datasets hand out torch CHW float tensors.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO, Callable

import numpy as np
import torch
from PIL import Image

from .. import image_io
from ..image_io import READABLE_EXTENSIONS, ImageReadError, is_image_name, scan_images

#: File extensions treated as images (lower case): the same set restore reads.
IMAGE_EXTS: frozenset[str] = READABLE_EXTENSIONS


class UnreadableImage(ImageReadError):
    """An image file that cannot be decoded; the message names the file and the reason."""


def is_image(path: Path) -> bool:
    """True when `path` has an image extension (the content is not checked)."""
    return is_image_name(path)


def list_images(folder: Path, recursive: bool = True) -> list[Path]:
    """Image files under `folder`, sorted; hidden files and folders are skipped, and so are
    entries that cannot be used (link loops, broken links: see `image_io.scan_images`)."""
    return scan_images(folder, recursive)[0]


def read_image(path: Path | str) -> np.ndarray:
    """Read an image as float32 HxWx3 in [0, 1]; raises `UnreadableImage` with the reason.

    Decoded by `image_io.read_image` (EXIF orientation applied; 16-bit and floating-point
    TIFF/PNG keep their precision); alpha is dropped (the colour channels are used as they
    are), grey is expanded to RGB.
    """
    path = Path(path)
    try:
        arr = image_io.read_image(path).pixels
    except ImageReadError as e:
        reason = str(e).removeprefix(f"{path}: ")
        raise UnreadableImage(f"{path}: cannot read image ({reason})") from e
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise UnreadableImage(f"{path}: empty image")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return np.ascontiguousarray(arr)


def image_size(path: Path | str) -> tuple[int, int]:
    """(height, width) after EXIF orientation, from the header only; raises `UnreadableImage`."""
    try:
        return image_io.image_size(path)
    except ImageReadError as e:
        reason = str(e).removeprefix(f"{path}: ")
        raise UnreadableImage(f"{path}: {reason}") from e


def check_image(path: Path | str, full: bool = True) -> str | None:
    """None when `path` decodes (fully, or header only when `full` is False), else the reason."""
    try:
        if full:
            read_image(path)
        else:
            image_size(path)
    except UnreadableImage as e:
        return str(e).split(": ", 1)[-1]
    return None


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """HxWx3 float array -> 3xHxW float32 tensor (a copy, so it owns its memory)."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32))


def write_png(path: Path | str, image: np.ndarray) -> None:
    """Write float [0, 1] (or uint8) HxWx3 `image` as 8-bit PNG, atomically (temp + rename)."""
    path = Path(path)
    arr = image if image.dtype == np.uint8 else (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    write_atomic(path, lambda f: Image.fromarray(arr).save(f, format="PNG"))


def write_atomic(path: Path, writer: Callable[[IO], object], mode: str = "wb") -> None:
    """Call `writer(fileobj)` on a temp file next to `path`, then rename it over `path`, so a
    crash never leaves a half-written file under the final name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            writer(f)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
