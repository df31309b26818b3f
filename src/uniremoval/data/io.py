"""Small, local image reading for datasets (Pillow; EXIF orientation applied; RGB).

Library images are float32 numpy HxWx3 in [0, 1]; datasets hand out torch CHW float tensors.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from PIL import Image, ImageOps

#: File extensions treated as images (lower case).
IMAGE_EXTS: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm"})


class UnreadableImage(Exception):
    """An image file that cannot be decoded; the message names the file and the reason."""


def is_image(path: Path) -> bool:
    """True when `path` has an image extension (the content is not checked)."""
    return path.suffix.lower() in IMAGE_EXTS


def list_images(folder: Path, recursive: bool = True) -> list[Path]:
    """Image files under `folder`, sorted; hidden files and folders are skipped."""
    folder = Path(folder)
    it: Iterable[Path] = folder.rglob("*") if recursive else folder.iterdir()
    out = [
        p for p in it
        if p.is_file() and is_image(p) and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    ]
    return sorted(out)


def read_image(path: Path | str) -> np.ndarray:
    """Read an image as float32 HxWx3 in [0, 1]; raises `UnreadableImage` with the reason.

    16-bit PNG/TIFF keep their precision; alpha is dropped (composited on nothing: the colour
    channels are used as they are), grey is expanded to RGB.
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im, dtype=np.float32) / 65535.0
                arr = np.repeat(arr[:, :, None], 3, axis=2)
            else:
                arr = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    except Exception as e:  # Pillow raises many types for corrupt files; report them all alike
        raise UnreadableImage(f"{path}: cannot read image ({type(e).__name__}: {e})") from e
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise UnreadableImage(f"{path}: empty image")
    return np.ascontiguousarray(arr)


def image_size(path: Path | str) -> tuple[int, int]:
    """(height, width) after EXIF orientation, from the header only; raises `UnreadableImage`."""
    try:
        with Image.open(path) as im:
            w, h = im.size
            orientation = im.getexif().get(0x0112, 1)
    except Exception as e:
        raise UnreadableImage(f"{path}: cannot read image ({type(e).__name__}: {e})") from e
    return (w, h) if orientation in (5, 6, 7, 8) else (h, w)


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


def write_atomic(path: Path, writer, mode: str = "wb") -> None:
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
