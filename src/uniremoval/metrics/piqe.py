"""PIQE: Perception-based Image Quality Evaluator (Venkatanath N, Praneeth D, Chandrasekhar
Bh M, Channappayya, Medasani; NCC 2015). Opinion-unaware, no training data: 0 (best) to 100.

Algorithm, as MATLAB's ``piqe`` (which the paper's authors' description and the public ports
follow), per non-overlapping 16x16 block of the MSCN map:
1. Luminance (``rgb2gray``), padded symmetrically to a multiple of 16, scaled so its maximum
   is 255 and rounded; MSCN with a 7x7 Gaussian (sigma 7/6), replicate borders.
2. A block is *active* (salient) when the (sample) variance of its MSCN values exceeds 0.1.
3. Noticeable distortion: some 6-pixel segment of one of the block's four edges has (sample)
   standard deviation below 0.1. Score contribution ``1 - variance``.
4. Noise: with ``sigma`` = block std and ``beta`` = |sigma - r| / max(sigma, r), where r =
   std(two centre columns) / std(the other columns), noise when ``sigma > 2 beta``.
   Contribution ``variance``. (The reference deletes centre column 8 and then column 9 of the
   *remaining* block, i.e. original columns 8 and 10 (1-based); reproduced here.)
5. Score = 100 (sum of contributions + 1) / (number of active blocks + 1).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .nss import MATLAB_GRAY, as_hwc_float, mscn

BLOCK = 16
ACTIVITY_THRESHOLD = 0.1
IMPAIRED_THRESHOLD = 0.1
SEGMENT = 6


@dataclass(frozen=True)
class PIQEResult:
    """The score and the block masks (HxW booleans, the input's size)."""

    score: float
    activity_mask: np.ndarray
    artifacts_mask: np.ndarray
    noise_mask: np.ndarray


def _gray(image: Any) -> np.ndarray:
    arr = as_hwc_float(image)
    rgb8 = np.round(np.clip(arr, 0.0, 1.0) * 255.0)  # the 8-bit file the reference would read
    if rgb8.shape[2] == 1:
        return rgb8[:, :, 0]
    w = MATLAB_GRAY
    return np.round(rgb8[..., 0] * w[0] + rgb8[..., 1] * w[1] + rgb8[..., 2] * w[2])


def _std(x: np.ndarray, axis: Any) -> np.ndarray:
    return np.std(x, axis=axis, ddof=1)


def piqe_details(image: Any) -> PIQEResult:
    """PIQE score and masks of an image (HxW / HxWx3 array in [0, 1] or uint8, or CHW tensor)."""
    g = _gray(image)
    h, w = g.shape
    ph, pw = (-h) % BLOCK, (-w) % BLOCK
    if ph or pw:
        g = np.pad(g, ((0, ph), (0, pw)), mode="symmetric")
    peak = g.max()
    g = np.round(255.0 * g / peak) if peak > 0 else g  # a black image stays 0: no active block
    norm, _ = mscn(g, "replicate")
    nh, nw = g.shape[0] // BLOCK, g.shape[1] // BLOCK
    blocks = norm.reshape(nh, BLOCK, nw, BLOCK).swapaxes(1, 2).reshape(nh * nw, BLOCK, BLOCK)

    var = np.var(blocks.reshape(nh * nw, -1), axis=1, ddof=1)
    active = var > ACTIVITY_THRESHOLD

    # noticeable distortion: sliding 6-pixel segments along the four edges
    edges = np.stack([blocks[:, 0, :], blocks[:, :, BLOCK - 1], blocks[:, BLOCK - 1, :], blocks[:, :, 0]], axis=1)
    segs = np.lib.stride_tricks.sliding_window_view(edges, SEGMENT, axis=2)  # (n, 4, 11, 6)
    impaired = (_std(segs, axis=3) < IMPAIRED_THRESHOLD).any(axis=(1, 2))

    # noise: centre-surround deviation ratio
    c1 = (BLOCK - 1 + 1) // 2  # MATLAB's centre1 (1-based) with blockSize-1 = 15 -> 8
    centre = np.concatenate([blocks[:, :, c1 - 1], blocks[:, :, c1]], axis=1)
    keep = [j for j in range(BLOCK) if j not in (c1 - 1, c1 + 1)]  # sequential deletion quirk
    surround = blocks[:, :, keep].reshape(nh * nw, -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.nan_to_num(_std(centre, axis=1) / _std(surround, axis=1), nan=0.0, posinf=np.inf)
        sigma = np.sqrt(var)
        beta = np.abs(sigma - ratio) / np.maximum(sigma, ratio)
    noisy = sigma > 2 * beta

    contrib = active * impaired * (1.0 - var) + active * noisy * var
    score = float((contrib.sum() + 1.0) / (active.sum() + 1.0) * 100.0)

    def mask(b: np.ndarray) -> np.ndarray:
        m = np.repeat(np.repeat(b.reshape(nh, nw), BLOCK, axis=0), BLOCK, axis=1)
        return m[:h, :w]

    return PIQEResult(score, mask(active), mask(active & impaired), mask(active & noisy))


def piqe(image: Any) -> float:
    """PIQE score (0 best, 100 worst; uniform images give 100)."""
    return piqe_details(image).score
