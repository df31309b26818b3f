"""NIQE: Natural Image Quality Evaluator (Mittal, Soundararajan, Bovik, IEEE SPL 2013).

A "completely blind" score: the distance between a multivariate Gaussian (MVG) fitted to
natural-scene-statistics features of the image's 96x96 patches and the MVG of a corpus of
pristine photos. Lower is better. The pristine model (``data/niqe_pris_params.npz``) is the
one of the authors' MATLAB release (``modelparameters.mat``, as re-packaged by BasicSR).

Algorithm, as ``computequality.m`` of the release (block 96x96, no overlap):
1. 8-bit luminance (``rgb2gray``), cropped to a whole number of 96x96 blocks.
2. Per scale (2 scales): MSCN with a 7x7 Gaussian (sigma 7/6, replicate borders); per block
   18 features: AGGD fit of the MSCN values (alpha, mean of the two betas) and, for the
   products with the 4 neighbours (circular shifts (0,1), (1,0), (1,1), (1,-1) within the
   block), AGGD (alpha, mean, beta_l, beta_r). Scale 2 = MATLAB ``imresize(I, 0.5)``
   (bicubic, antialiased) of the scale-1 image, blocks 48x48.
3. MVG of the 36-dim block features (``nanmean``, ``nancov`` over complete rows), and
   ``sqrt((mu_p - mu_d)' pinv((S_p + S_d) / 2) (mu_p - mu_d))``.
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from .nss import aggd_fit, imresize_half, mscn, to_gray255

BLOCK = 96
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))  # circshift offsets of computefeature.m


@lru_cache(maxsize=1)
def pristine_model() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pristine MVG ``(mu (36,), cov (36, 36), gaussian_window (7, 7))`` shipped as package data."""
    ref = resources.files("uniremoval") / "metrics" / "data" / "niqe_pris_params.npz"
    with ref.open("rb") as f:
        d = np.load(f)
        return d["mu_pris_param"].ravel().copy(), d["cov_pris_param"].copy(), d["gaussian_window"].copy()


def _block_features(structdis: np.ndarray, block: int) -> np.ndarray:
    """18 features per non-overlapping ``block`` x ``block`` tile of an MSCN map -> (n, 18)."""
    h, w = structdis.shape
    nh, nw = h // block, w // block
    tiles = structdis[: nh * block, : nw * block].reshape(nh, block, nw, block).swapaxes(1, 2)
    tiles = tiles.reshape(nh * nw, block, block)
    n = tiles.shape[0]
    f = aggd_fit(tiles.reshape(n, -1))
    feats = [f["alpha"], (f["beta_l"] + f["beta_r"]) / 2.0]
    for sh in _SHIFTS:
        pair = tiles * np.roll(tiles, sh, axis=(1, 2))
        f = aggd_fit(pair.reshape(n, -1))
        feats += [f["alpha"], (f["beta_r"] - f["beta_l"]) * f["eta_ratio"], f["beta_l"], f["beta_r"]]
    return np.stack(feats, axis=1)


def niqe_features(image: Any, convert: str = "gray", crop_border: int = 0) -> np.ndarray:
    """Per-patch NIQE features, shape (number of 96x96 patches, 36)."""
    img = to_gray255(image, convert)
    if crop_border:
        img = img[crop_border:-crop_border, crop_border:-crop_border]
    h, w = img.shape
    nh, nw = h // BLOCK, w // BLOCK
    if nh < 1 or nw < 1:
        raise ValueError(f"NIQE needs at least {BLOCK}x{BLOCK} pixels, got {h}x{w}")
    img = img[: nh * BLOCK, : nw * BLOCK]
    per_scale = []
    for scale in (1, 2):
        structdis, _ = mscn(img, "replicate")
        per_scale.append(_block_features(structdis, BLOCK // scale))
        if scale == 1:
            img = imresize_half(img)
    return np.concatenate(per_scale, axis=1)


def niqe(image: Any, convert: str = "gray", crop_border: int = 0) -> float:
    """NIQE score of an image (lower is better; sharp natural photos are typically 2-6).

    ``image``: HxW / HxWx3 array (float in [0, 1] or uint8) or CHW tensor; judged as its
    8-bit file would be. ``convert``: ``"gray"`` (MATLAB release) or ``"y"`` (BasicSR).
    Raises ValueError when the image has fewer than two usable 96x96 patches.
    """
    feat = niqe_features(image, convert, crop_border)
    mu_p, cov_p, _ = pristine_model()
    complete = feat[~np.isnan(feat).any(axis=1)]
    if complete.shape[0] < 2:
        raise ValueError(f"NIQE needs at least two textured 96x96 patches, got {complete.shape[0]}")
    mu_d = np.nanmean(feat, axis=0)
    cov_d = np.cov(complete, rowvar=False)
    diff = mu_p - mu_d
    q = diff @ np.linalg.pinv((cov_p + cov_d) / 2.0) @ diff
    return float(np.sqrt(q))
