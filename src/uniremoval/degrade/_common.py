"""Shared helpers for the synthesis kinds: range sampling, smooth random fields, checks.

Images in `uniremoval.degrade` are float32 numpy arrays, HxWx3, values in [0, 1].
"""
from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np
from scipy import ndimage

Range = tuple[float, float]


def as_float_image(image: np.ndarray) -> np.ndarray:
    """Return `image` as float32 HxWx3 in [0, 1] (uint8 is scaled; grey is repeated)."""
    arr = np.asarray(image)
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 255.0
    elif arr.dtype == np.uint16:
        arr = arr.astype(np.float32) / 65535.0
    else:
        arr = arr.astype(np.float32, copy=False)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 image, got shape {arr.shape}")
    return arr


def pick(rng: np.random.Generator, bounds: Sequence[float], strength: float | None = None) -> float:
    """Draw uniformly from `bounds` = (lo, hi), or take the `strength` quantile when given.

    `strength` lets previews and tests place a parameter at a known point of its range
    without a separate code path.
    """
    lo, hi = float(bounds[0]), float(bounds[1])
    # Always consume one draw, so the other parameters of a call do not depend on whether a
    # strength was given: a preview row at several strengths differs in strength only.
    u = float(rng.random())
    if strength is not None:
        u = min(max(float(strength), 0.0), 1.0)
        return lo + u * (hi - lo)
    # A range may be listed high -> low so that strength 1 means "worst"; draw the same.
    return min(lo, hi) + u * abs(hi - lo)


def pick_int(rng: np.random.Generator, bounds: Sequence[float], strength: float | None = None) -> int:
    """Integer version of `pick` (inclusive bounds)."""
    lo, hi = int(bounds[0]), int(bounds[1])
    u = float(rng.random())  # always one draw, as in `pick`
    if strength is not None:
        u = min(max(float(strength), 0.0), 1.0)
        return int(round(lo + u * (hi - lo)))
    return min(lo, hi) + min(int(u * (abs(hi - lo) + 1)), abs(hi - lo))


def choose(rng: np.random.Generator, weights: dict[str, float]) -> str:
    """Pick a key of `weights` with probability proportional to its value."""
    names = list(weights)
    p = np.asarray([max(float(weights[n]), 0.0) for n in names], dtype=np.float64)
    if p.sum() <= 0:
        raise ValueError(f"all weights are zero: {weights}")
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def smooth_field(rng: np.random.Generator, h: int, w: int, cells: float = 6.0) -> np.ndarray:
    """A smooth random field in [0, 1] of shape (h, w), with about `cells` blobs across.

    Made at low resolution and upsampled so the cost barely depends on the image size.
    """
    gh = max(int(round(cells * h / max(h, w))) + 3, 4)
    gw = max(int(round(cells * w / max(h, w))) + 3, 4)
    low = ndimage.gaussian_filter(rng.standard_normal((gh, gw)), sigma=0.8, mode="wrap")
    field = ndimage.zoom(low, (h / gh, w / gw), order=3, mode="nearest", grid_mode=True)
    field = _fit(field, h, w)
    return normalise(field)


def _fit(arr: np.ndarray, h: int, w: int) -> np.ndarray:
    # ndimage.zoom can be one pixel off after rounding; pad or crop to the exact size.
    if arr.shape[0] < h or arr.shape[1] < w:
        arr = np.pad(arr, ((0, max(h - arr.shape[0], 0)), (0, max(w - arr.shape[1], 0))), mode="edge")
    return arr[:h, :w]


def normalise(arr: np.ndarray) -> np.ndarray:
    """Scale `arr` linearly to [0, 1] (a constant array becomes zeros)."""
    lo, hi = float(arr.min()), float(arr.max())
    if hi - lo < 1e-12:
        return np.zeros_like(arr, dtype=np.float32)
    return ((arr - lo) / (hi - lo)).astype(np.float32)


def summarise_kernel(kernel: np.ndarray) -> dict[str, object]:
    """A short JSON-able description of a blur kernel (storing it whole bloats the records)."""
    k = np.asarray(kernel, dtype=np.float32)
    ys, xs = np.nonzero(k > k.max() * 1e-3)
    ky, kx = np.indices(k.shape)
    return {
        "kernel_size": [int(k.shape[0]), int(k.shape[1])],
        "kernel_support": [int(ys.max() - ys.min() + 1), int(xs.max() - xs.min() + 1)] if ys.size else [0, 0],
        "kernel_centroid": [round(float((k * ky).sum()), 3), round(float((k * kx).sum()), 3)],
        "kernel_sha1": hashlib.sha1(np.ascontiguousarray(k).tobytes()).hexdigest()[:12],
    }


def r(x: float, nd: int = 4) -> float:
    """Round a float for the parameter record (JSON stays short and readable)."""
    return round(float(x), nd)


def pick_log(rng: np.random.Generator, bounds: Sequence[float], strength: float | None = None) -> float:
    """Log-uniform version of `pick` (one draw; `strength` interpolates in log space).

    Sizes (streak length, kernel size) that span two orders of magnitude across photo
    resolutions are drawn on a log scale, so small and large sizes are equally common.
    """
    lo, hi = float(bounds[0]), float(bounds[1])
    if lo <= 0 or hi <= 0:
        raise ValueError(f"log-uniform bounds must be positive, got {bounds}")
    return float(np.exp(pick(rng, (np.log(lo), np.log(hi)), strength)))


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 sRGB decoding (values in [0, 1]; above 1 continues the power law)."""
    x = np.asarray(x, dtype=np.float32)
    return np.where(x <= 0.04045, x / 12.92, ((np.maximum(x, 0.04045) + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """Inverse of `srgb_to_linear` (input clipped at 0)."""
    x = np.maximum(np.asarray(x, dtype=np.float32), 0.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.maximum(x, 0.0031308) ** (1 / 2.4) - 0.055).astype(np.float32)


def resize(image: np.ndarray, h: int, w: int) -> np.ndarray:
    """Resize a float HxWxC (or HxW) image to (h, w) with Lanczos (Pillow, per channel, float).

    Used to synthesise at a large size and come back down, and to upsample evaluation
    pairs; one filter everywhere so the clean and degraded images stay comparable.
    """
    from PIL import Image

    arr = np.asarray(image, dtype=np.float32)
    if arr.shape[:2] == (h, w):
        return arr.copy()
    planes = arr[:, :, None] if arr.ndim == 2 else arr
    out = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(planes[:, :, c]), mode="F").resize((w, h), Image.LANCZOS))
                    for c in range(planes.shape[2])], axis=2)
    return out[:, :, 0] if arr.ndim == 2 else out
