"""Natural-scene-statistics building blocks shared by NIQE, BRISQUE and PIQE.

Everything here reproduces the reference MATLAB releases of the LIVE lab (NIQE, BRISQUE) and
MATLAB's ``piqe`` operation by operation, in numpy (no scipy, no torch), so the no-reference
metrics need nothing beyond the package's own dependencies:

- ``to_gray255``: MATLAB ``rgb2gray`` of the 8-bit image (the references read 8-bit files);
- ``gaussian_1d`` / ``filter2d``: ``fspecial('gaussian', 7, 7/6)`` applied with ``imfilter``
  (``'replicate'`` borders) or ``filter2`` (zero borders), as a separable filter;
- ``mscn``: mean-subtracted contrast-normalised coefficients ``(I - mu) / (sigma + 1)``;
- ``aggd_fit`` / ``ggd_fit``: the moment-matching estimators ``estimateaggdparam`` /
  ``estimateggdparam``, searching the same grid ``gam = 0.2:0.001:10``;
- ``imresize_half``: MATLAB ``imresize(I, 0.5)`` (bicubic, a = -0.5, antialiasing on,
  symmetric borders, output size ``ceil(n / 2)``).
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np

#: MATLAB rgb2gray weights (the first row of inv(ntsc2rgb)), not the rounded 0.299/0.587/0.114.
MATLAB_GRAY = (0.298936021293775, 0.587043074451121, 0.114020904255103)


def as_hwc_float(image: Any) -> np.ndarray:
    """An image as a float64 HxWxC array in [0, 1].

    Accepts HxW / HxWxC numpy arrays (float in [0, 1], uint8 or uint16) and CHW torch tensors
    (float in [0, 1]), which is every form the project's code hands around.
    """
    if hasattr(image, "detach"):  # torch tensor, CHW (or HW)
        t = image.detach().to("cpu").double()
        if t.dim() == 3:
            t = t.permute(1, 2, 0)
        arr = t.numpy()
    else:
        arr = np.asarray(image)
        if arr.dtype == np.uint8:
            arr = arr / 255.0
        elif arr.dtype == np.uint16:
            arr = arr / 65535.0
        arr = arr.astype(np.float64, copy=False)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an HxW, HxWx1 or HxWx3 image, got shape {arr.shape}")
    if arr.shape[2] == 4:  # alpha is not part of what the metrics judge
        arr = arr[:, :, :3]
    if not np.all(np.isfinite(arr)):
        raise ValueError("image has NaN or infinite values")
    return arr


def to_gray255(image: Any, convert: str = "gray") -> np.ndarray:
    """8-bit luminance of an image as float64 HxW with integer values in [0, 255].

    The reference implementations read 8-bit files, so the image is first quantised the way
    it would be saved (``round(clip(x, 0, 1) * 255)``), then converted like MATLAB does on
    uint8 data (result rounded back to uint8). ``convert``: ``"gray"`` = ``rgb2gray`` (the
    NIQE/BRISQUE MATLAB releases), ``"y"`` = BT.601 studio-range Y of ``rgb2ycbcr`` (what
    BasicSR's NIQE uses).
    """
    arr = as_hwc_float(image)
    rgb8 = np.round(np.clip(arr, 0.0, 1.0) * 255.0)
    if rgb8.shape[2] == 1:
        return rgb8[:, :, 0]
    if convert == "gray":
        w = MATLAB_GRAY
        return np.round(rgb8[..., 0] * w[0] + rgb8[..., 1] * w[1] + rgb8[..., 2] * w[2])
    if convert == "y":
        y = (65.481 * rgb8[..., 0] + 128.553 * rgb8[..., 1] + 24.966 * rgb8[..., 2]) / 255.0 + 16.0
        return np.round(y)
    raise ValueError(f"convert must be 'gray' or 'y', got {convert!r}")


def gaussian_1d(size: int = 7, sigma: float = 7.0 / 6.0) -> np.ndarray:
    """Normalised 1-D Gaussian; its outer product is ``fspecial('gaussian', size, sigma)``."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


def filter2d(img: np.ndarray, k1: np.ndarray, border: str) -> np.ndarray:
    """Separable 'same'-size filtering of a 2-D array by ``outer(k1, k1)``.

    ``border``: ``"replicate"`` (MATLAB ``imfilter(..., 'replicate')``, NIQE and PIQE) or
    ``"zero"`` (MATLAB ``filter2(..., 'same')``, BRISQUE). The kernel is symmetric, so
    correlation and convolution agree. Shifted-slice sums keep it vectorised and exact.
    """
    r = len(k1) // 2
    mode = {"replicate": "edge", "zero": "constant"}[border]
    h, w = img.shape
    p = np.pad(img, r, mode=mode)
    rows = np.zeros((h, w + 2 * r), dtype=np.float64)
    for i, c in enumerate(k1):
        rows += c * p[i : i + h, :]
    out = np.zeros((h, w), dtype=np.float64)
    for j, c in enumerate(k1):
        out += c * rows[:, j : j + w]
    return out


#: |I - mu| below this (on the 0-255 scale) is floating-point rounding noise, not signal.
ROUNDING_NOISE = 1e-9


def mscn(img: np.ndarray, border: str, k1: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """MSCN coefficients ``(I - mu) / (sigma + 1)`` and the local deviation ``sigma``.

    The ``+ 1`` (on the 0-255 scale) is the references' stabiliser for flat regions.

    Where the image is flat (or a linear ramp, which a symmetric kernel averages exactly),
    exact arithmetic gives ``I - mu = 0``, but floating point leaves +-1e-14 whose *sign*
    depends on the order of additions. The AGGD fits split values by sign, so that noise can
    move NIQE/BRISQUE of images with flat areas by several percent, differently in MATLAB,
    scipy and OpenCV. We return the exact-arithmetic value: |I - mu| < ``ROUNDING_NOISE`` is 0.
    (Real differences are far larger: the smallest kernel weight times one grey level is
    ~1.6e-4.) See docs/evaluation.md, "validation".
    """
    k = gaussian_1d() if k1 is None else k1
    mu = filter2d(img, k, border)
    sigma = np.sqrt(np.abs(filter2d(img * img, k, border) - mu * mu))
    diff = img - mu
    diff[np.abs(diff) < ROUNDING_NOISE] = 0.0
    return diff / (sigma + 1.0), sigma


# -- parameter estimation ---------------------------------------------------------------

@lru_cache(maxsize=1)
def _grid() -> dict[str, np.ndarray]:
    """The references' search grid ``gam = 0.2:0.001:10`` and the gamma values it needs."""
    gam = 0.2 + 0.001 * np.arange(9801, dtype=np.float64)
    gfun = np.frompyfunc(math.gamma, 1, 1)
    g1 = gfun(1.0 / gam).astype(np.float64)
    g2 = gfun(2.0 / gam).astype(np.float64)
    g3 = gfun(3.0 / gam).astype(np.float64)
    return {
        "gam": gam,
        "g1": g1,
        "g2": g2,
        "g3": g3,
        "r_aggd": g2 * g2 / (g1 * g3),  # estimateaggdparam's r_gam
        "r_ggd": g1 * g3 / (g2 * g2),  # estimateggdparam's r_gam
    }


def _nearest(r: np.ndarray, target: np.ndarray, squared: bool) -> np.ndarray:
    """Index of the first grid value minimising |r - target| (MATLAB ``min``), per row.

    Chunked so that many vectors (NIQE patches of a large photo) stay within small memory.
    A NaN target gives index 0, as MATLAB's ``min`` over an all-NaN vector does.
    """
    out = np.empty(target.shape[0], dtype=np.int64)
    for s in range(0, target.shape[0], 256):
        d = r[None, :] - target[s : s + 256, None]
        d = d * d if squared else np.abs(d)
        out[s : s + 256] = np.argmin(d, axis=1)
    return out


def aggd_fit(x: np.ndarray) -> dict[str, np.ndarray]:
    """Asymmetric generalised Gaussian fit of each row of ``x`` (n x m), as ``estimateaggdparam``.

    Returns ``alpha`` (shape), ``left_std``/``right_std`` (root mean square of the negative /
    positive values; BRISQUE uses these) and ``beta_l``/``beta_r`` (the scale parameters
    ``std * sqrt(G(1/a) / G(3/a))``; NIQE uses these) plus ``eta_ratio`` = ``G(2/a) / G(1/a)``.
    """
    x = np.atleast_2d(x)
    grid = _grid()
    neg, pos = x < 0, x > 0
    x2 = x * x
    with np.errstate(invalid="ignore", divide="ignore"):
        left = np.sqrt((x2 * neg).sum(1) / neg.sum(1))
        right = np.sqrt((x2 * pos).sum(1) / pos.sum(1))
        gh = left / right
        rhat = np.abs(x).mean(1) ** 2 / x2.mean(1)
        rhatnorm = rhat * (gh**3 + 1) * (gh + 1) / (gh**2 + 1) ** 2
    idx = _nearest(grid["r_aggd"], rhatnorm, squared=True)
    g1, g2, g3 = grid["g1"][idx], grid["g2"][idx], grid["g3"][idx]
    scale = np.sqrt(g1 / g3)
    return {
        "alpha": grid["gam"][idx],
        "left_std": left,
        "right_std": right,
        "beta_l": left * scale,
        "beta_r": right * scale,
        "eta_ratio": g2 / g1,
        "scale": scale,
    }


def ggd_fit(x: np.ndarray) -> tuple[float, float]:
    """Generalised Gaussian fit of a vector, as ``estimateggdparam``: (shape alpha, sigma)."""
    x = np.ravel(x)
    grid = _grid()
    sigma_sq = float(np.mean(x * x))
    e = float(np.mean(np.abs(x)))
    rho = sigma_sq / e**2 if e > 0 else float("nan")
    idx = _nearest(grid["r_ggd"], np.array([rho]), squared=False)[0]
    return float(grid["gam"][idx]), math.sqrt(sigma_sq)


# -- MATLAB imresize ------------------------------------------------------------------

def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))


@lru_cache(maxsize=32)
def _resize_matrix(n_in: int, scale: float) -> np.ndarray:
    """Dense (n_out x n_in) weights of MATLAB's ``imresize`` along one axis (bicubic, antialias).

    Mirrors ``contributions()`` in MATLAB's imresize.m: kernel widened by 1/scale when
    shrinking, weights normalised per output pixel, out-of-range taps folded back
    symmetrically (``aux = [1:n, n:-1:1]``).
    """
    n_out = int(math.ceil(n_in * scale))
    width = 4.0 / scale if scale < 1 else 4.0
    u = np.arange(1, n_out + 1, dtype=np.float64) / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - width / 2.0)
    p = int(math.ceil(width)) + 2
    idx = left[:, None] + np.arange(p)[None, :]
    d = u[:, None] - idx
    wts = scale * _cubic(d * scale) if scale < 1 else _cubic(d)
    wts = wts / wts.sum(1, keepdims=True)
    aux = np.concatenate([np.arange(n_in), np.arange(n_in - 1, -1, -1)])
    cols = aux[np.mod(idx.astype(np.int64) - 1, 2 * n_in)]
    m = np.zeros((n_out, n_in), dtype=np.float64)
    np.add.at(m, (np.repeat(np.arange(n_out), p), cols.ravel()), wts.ravel())
    return m


def imresize_half(img: np.ndarray) -> np.ndarray:
    """MATLAB ``imresize(img, 0.5)`` of a 2-D double array (no clipping, no rounding).

    MATLAB resizes along the rows first (equal scales keep dimension order), then columns.
    """
    mh = _resize_matrix(img.shape[0], 0.5)
    mw = _resize_matrix(img.shape[1], 0.5)
    return (mh @ img) @ mw.T
