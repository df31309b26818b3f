"""Third-party rain-streak layers: photographs of streaks on black, composited as light.

The layers of Garg & Nayar (2006, "Photorealistic rendering of rain streaks", SIGGRAPH) are
rendered with their physically based streak model (drop oscillation, lighting, camera
exposure) and stored as images of streaks on a black background. A random layer from a
folder is cropped, scaled, rotated and tinted, then added to the photo as light with the
screen blend, like our own streaks. Having a second, independent generator in training keeps
the model from learning the look of one generator (the failure that motivated this module).

Layers are read as grey (streaks are colourless; the tint is applied here) and cached per
process as uint8, so a DataLoader worker decodes each file once.
"""
from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import ndimage

from ._common import r, resize

STREAK_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


@lru_cache(maxsize=8)
def layer_files(folder: str) -> tuple[Path, ...]:
    """The streak-layer images in `folder` (sorted, so an index is reproducible)."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"streak folder {folder!r} does not exist")
    files = tuple(sorted(p for p in root.iterdir() if p.suffix.lower() in STREAK_EXTS and not p.name.startswith(".")))
    if not files:
        raise FileNotFoundError(f"streak folder {folder!r} holds no images")
    return files


@lru_cache(maxsize=96)
def _load_layer(path: str) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("L"), dtype=np.uint8)


def load_layer(path: Path | str) -> np.ndarray:
    """A streak layer as float32 HxW in [0, 1] (cached per process)."""
    return _load_layer(str(path)).astype(np.float32) / 255.0


def place_layer(
    layer: np.ndarray, h: int, w: int, rng: np.random.Generator, scale: float, angle: float
) -> np.ndarray:
    """Cut an (h, w) streak map out of `layer`: magnified by `scale`, rotated by `angle`
    degrees (about the centre), from a random position; the layer is tiled (wrap) when the
    piece needed is larger than it."""
    # Side of the source piece that, rotated and scaled, covers the output.
    rad = math.radians(angle)
    need_h = (h * abs(math.cos(rad)) + w * abs(math.sin(rad))) / scale
    need_w = (w * abs(math.cos(rad)) + h * abs(math.sin(rad))) / scale
    ph, pw = int(math.ceil(need_h)) + 4, int(math.ceil(need_w)) + 4
    lh, lw = layer.shape
    y0, x0 = int(rng.integers(lh)), int(rng.integers(lw))
    rows = (np.arange(ph) + y0) % lh
    cols = (np.arange(pw) + x0) % lw
    piece = layer[np.ix_(rows, cols)]
    if abs(angle) > 0.5:
        piece = ndimage.rotate(piece, angle, reshape=True, order=1, mode="constant", cval=0.0)
    th, tw = max(int(round(piece.shape[0] * scale)), 1), max(int(round(piece.shape[1] * scale)), 1)
    big = np.clip(resize(piece, th, tw), 0.0, 1.0)
    cy, cx = (big.shape[0] - h) // 2, (big.shape[1] - w) // 2
    if cy < 0 or cx < 0:  # rounding left it a pixel short: pad with black (no streaks)
        big = np.pad(big, ((max(-cy, 0), max(-cy, 0) + 1), (max(-cx, 0), max(-cx, 0) + 1)))
        cy, cx = max(cy, 0), max(cx, 0)
    return np.ascontiguousarray(big[cy : cy + h, cx : cx + w], dtype=np.float32)


def garg_streaks(
    h: int,
    w: int,
    rng: np.random.Generator,
    folder: str,
    scale: float,
    angle: float,
    gain: float,
) -> tuple[np.ndarray, dict[str, object]]:
    """A streak map (HxW, [0, 1]) from a random layer of `folder`; returns (map, record)."""
    files = layer_files(str(folder))
    idx = int(rng.integers(len(files)))
    layer = load_layer(files[idx])
    s = np.clip(place_layer(layer, h, w, rng, scale, angle) * gain, 0.0, 1.0)
    return s, {"layer": files[idx].name, "scale": r(scale), "angle": r(angle, 2), "gain": r(gain)}
