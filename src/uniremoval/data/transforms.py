"""Crops and flips applied identically to an (input, target) pair; randomness from a Generator."""
from __future__ import annotations

import numpy as np


def pad_to(image: np.ndarray, h: int, w: int) -> np.ndarray:
    """Reflect-pad `image` (HxWxC) at the bottom/right to at least h x w."""
    ph, pw = max(h - image.shape[0], 0), max(w - image.shape[1], 0)
    if ph == 0 and pw == 0:
        return image
    mode = "reflect" if ph < image.shape[0] and pw < image.shape[1] else "symmetric"
    return np.pad(image, ((0, ph), (0, pw), (0, 0)), mode=mode)


def random_crop_box(rng: np.random.Generator, h: int, w: int, size: int) -> tuple[int, int]:
    """Top-left (y, x) of a size x size crop inside h x w (0 where the image is smaller)."""
    y = int(rng.integers(0, h - size + 1)) if h > size else 0
    x = int(rng.integers(0, w - size + 1)) if w > size else 0
    return y, x


def crop_pair(
    rng: np.random.Generator, a: np.ndarray, b: np.ndarray, size: int | None, hflip: bool, vflip: bool = False
) -> tuple[np.ndarray, np.ndarray, dict]:
    """The same random crop (and flips, each with probability 1/2) of `a` and `b`."""
    info: dict = {}
    if size is not None:
        a, b = pad_to(a, size, size), pad_to(b, size, size)
        y, x = random_crop_box(rng, a.shape[0], a.shape[1], size)
        a, b = a[y : y + size, x : x + size], b[y : y + size, x : x + size]
        info["crop"] = [y, x, size]
    if hflip and rng.random() < 0.5:
        a, b = a[:, ::-1], b[:, ::-1]
        info["hflip"] = True
    if vflip and rng.random() < 0.5:
        a, b = a[::-1], b[::-1]
        info["vflip"] = True
    return np.ascontiguousarray(a), np.ascontiguousarray(b), info
