"""Reference restorers that need no training, runnable wherever a model is (``--model identity``,
``--model dcp``): the floor every method must beat.

- ``identity``: returns the input (the "input" row of the ablation table).
- ``dcp``: single-image dehazing with the dark channel prior, K. He, J. Sun, X. Tang, "Single
  Image Haze Removal Using Dark Channel Prior", CVPR 2009 / IEEE TPAMI 33(12), 2011, with the
  published parameters, and the soft-matting step replaced by the guided filter as the
  authors do in "Guided Image Filtering" (ECCV 2010 / TPAMI 35(6), 2013, section 4.4):

  ============================ =============================================================
  patch (min filter)           15 x 15 (TPAMI section 6: "patch size 15 x 15")
  omega (haze kept)            0.95
  t0 (transmission floor)      0.1
  airlight                     of the brightest 0.1 % dark-channel pixels, the one with the
                               highest input intensity (mean of R, G, B) gives A (per channel)
  refinement                   guided filter, guide = grey input, r = 60, eps = 1e-3
                               (the guided-filter paper's dehazing setting for ~600x400 images)
  ============================ =============================================================

  Our choices where the papers leave room: borders of the min filter and of the box filter
  replicate / shrink the window to the image (no padding values invented); the guide is the
  mean of R, G, B; the output is clipped to [0, 1]. Parameters are in pixels, as published, so
  the prior behaves as in the papers at their image sizes (~0.25-1 MP). Grey images use their
  single channel.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np


def min_filter(img: np.ndarray, size: int) -> np.ndarray:
    """Separable square minimum filter of a 2-D array (replicated borders)."""
    r = size // 2
    p = np.pad(img, r, mode="edge")
    rows = np.lib.stride_tricks.sliding_window_view(p, size, axis=0).min(axis=-1)
    return np.lib.stride_tricks.sliding_window_view(rows, size, axis=1).min(axis=-1)


def dark_channel(img: np.ndarray, size: int = 15) -> np.ndarray:
    """Dark channel: minimum over colour channels, then over a ``size`` x ``size`` patch."""
    return min_filter(img.min(axis=2), size)


def box_mean(img: np.ndarray, r: int) -> np.ndarray:
    """Mean over the (2r+1)^2 window clipped to the image, via integral images (O(1)/pixel)."""
    h, w = img.shape[:2]

    def along(a: np.ndarray, axis: int, n: int) -> np.ndarray:
        c = np.cumsum(a, axis=axis, dtype=np.float64)
        c = np.concatenate([np.zeros_like(np.take(c, [0], axis=axis)), c], axis=axis)
        i = np.arange(n)
        hi, lo = np.minimum(i + r + 1, n), np.maximum(i - r, 0)
        return np.take(c, hi, axis=axis) - np.take(c, lo, axis=axis)

    s = along(along(img, 0, h), 1, w)
    ones = along(along(np.ones((h, w)), 0, h), 1, w)
    return s / (ones if img.ndim == 2 else ones[..., None])


def guided_filter(guide: np.ndarray, src: np.ndarray, r: int, eps: float) -> np.ndarray:
    """Grey-guide guided filter (He, Sun, Tang 2010, Algorithm 1)."""
    mean_i, mean_p = box_mean(guide, r), box_mean(src, r)
    cov_ip = box_mean(guide * src, r) - mean_i * mean_p
    var_i = box_mean(guide * guide, r) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return box_mean(a, r) * guide + box_mean(b, r)


@dataclass(frozen=True)
class DCPParams:
    """Parameters of the dark-channel-prior dehazer (defaults = published values)."""

    patch: int = 15
    omega: float = 0.95
    t0: float = 0.1
    top_fraction: float = 0.001
    gf_radius: int = 60
    gf_eps: float = 1e-3


def estimate_airlight(img: np.ndarray, dark: np.ndarray, top_fraction: float = 0.001) -> np.ndarray:
    """Atmospheric light: among the brightest ``top_fraction`` of dark-channel pixels, the
    input colour of the one with the highest intensity."""
    flat_dark = dark.ravel()
    n = max(1, int(round(flat_dark.size * top_fraction)))
    top = np.argpartition(flat_dark, -n)[-n:]
    pix = img.reshape(-1, img.shape[2])[top]
    return pix[np.argmax(pix.mean(axis=1))].astype(np.float64)


def dehaze_dcp(pixels: np.ndarray, params: DCPParams = DCPParams()) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Dehaze float (H, W, 1|3) pixels in [0, 1]; returns (radiance, {"transmission", "airlight"})."""
    img = np.asarray(pixels, dtype=np.float64)
    if img.ndim != 3 or img.shape[2] not in (1, 3):
        raise ValueError(f"pixels must be (H, W, 1) or (H, W, 3), got {img.shape}")
    dark = dark_channel(img, params.patch)
    a = np.maximum(estimate_airlight(img, dark, params.top_fraction), 1e-3)  # black sky: avoid /0
    t = 1.0 - params.omega * dark_channel(img / a, params.patch)
    t = guided_filter(img.mean(axis=2), t, params.gf_radius, params.gf_eps)
    t_clamped = np.maximum(t, params.t0)[..., None]
    out = (img - a) / t_clamped + a
    return np.clip(out, 0.0, 1.0).astype(np.float32), {"transmission": t, "airlight": a}


@dataclass
class Baseline:
    """A named restorer with the same ``restore_pixels`` call as :class:`~uniremoval.Restorer`."""

    name: str
    description: str
    fn: Callable[[np.ndarray], np.ndarray]
    params: dict = field(default_factory=dict)

    def restore_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """Restore float32 (H, W, 1|3) pixels in [0, 1]."""
        return self.fn(pixels)


def _identity(p: np.ndarray) -> np.ndarray:
    return np.array(p, dtype=np.float32, copy=True)


BASELINES: dict[str, Callable[[], Baseline]] = {
    "identity": lambda: Baseline("identity", "the input unchanged", _identity),
    "dcp": lambda: Baseline(
        "dcp",
        "dark channel prior dehazing (He et al. 2009/2011) with guided-filter refinement",
        lambda p: dehaze_dcp(p)[0],
        DCPParams().__dict__.copy(),
    ),
}


def get_baseline(name: str) -> Baseline:
    """The baseline called ``name`` (KeyError listing the known names otherwise)."""
    try:
        return BASELINES[name]()
    except KeyError:
        raise KeyError(f"unknown baseline {name!r}; known: {', '.join(BASELINES)}") from None
