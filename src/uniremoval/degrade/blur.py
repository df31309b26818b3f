"""Blur: camera shake, defocus and Gaussian kernels, applied without border artefacts.

- ``motion``: a random camera-shake trajectory after Boracchi & Foi (2012): a particle with
  inertia, random acceleration, a pull back to the start and rare sudden jerks; its path is
  splatted (bilinear, sub-pixel) into the kernel, so kernels are thin, curved and uneven.
- ``defocus``: a uniform disk (thin-lens circle of confusion), anti-aliased at its rim.
- ``gaussian``: an isotropic or slightly anisotropic Gaussian (atmospheric/optical softness).

Every kernel is non-negative and sums to 1. The image is reflect-padded by the kernel
half-size and convolved with 'valid' output, so there is no dark frame at the borders and
the output has the input's size.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import signal

from ._common import Range, as_float_image, choose, pick, pick_int, r, smooth_field, summarise_kernel
from .camera import CameraParams, camera_pipeline


@dataclass
class BlurParams:
    """Parameter ranges for blur."""

    types: dict[str, float] = field(default_factory=lambda: {"motion": 0.6, "defocus": 0.2, "gaussian": 0.2})
    """Kernel type -> probability."""
    motion_size: tuple[int, int] = (9, 31)
    """Motion kernel side in pixels (inclusive, made odd); the trajectory spans most of it."""
    motion_anxiety: Range = (0.005, 0.1)
    """Camera-shake randomness (Boracchi & Foi 'anxiety'); larger = more erratic paths."""
    defocus_radius: Range = (1.0, 5.0)
    """Disk radius in pixels."""
    gaussian_sigma: Range = (0.6, 3.0)
    """Gaussian sigma in pixels (major axis)."""
    # Off by default (the "r6" ranges); the "r7" preset turns them on.
    p_varying: float = 0.0
    """Probability of spatially varying blur: 2-4 kernels blended with smooth weights (a
    rotating camera, or depth-dependent defocus, blurs each part of the photo differently)."""
    varying_kernels: tuple[int, int] = (2, 4)
    """Number of kernels in spatially varying blur (inclusive)."""
    camera: CameraParams | None = None
    """When set, blur in linear light with boosted highlights, then noise, gamma, JPEG."""


def _normalised(k: np.ndarray) -> np.ndarray:
    k = np.clip(k, 0.0, None).astype(np.float64)
    return (k / k.sum()).astype(np.float32)


def motion_kernel(rng: np.random.Generator, size: int, anxiety: float = 0.05, steps: int = 512) -> np.ndarray:
    """A camera-shake kernel of side `size` (odd) from a random trajectory; sums to 1.

    The trajectory follows Boracchi & Foi (2012): constant speed, direction perturbed by
    Gaussian pushes scaled by `anxiety`, a centripetal pull towards the start, and rare
    sudden direction reversals ("big shakes").
    """
    size = int(size) | 1
    centripetal = 0.7 * rng.uniform()
    gaussian_term = 10.0 * rng.uniform()
    freq_big_shakes = 0.2 * rng.uniform()
    step_len = 1.0 / (steps - 1)
    v = np.exp(1j * rng.uniform(0.0, 2.0 * np.pi)) * step_len
    # Per-step probabilities are for the original 2000 steps; rescale to `steps`.
    big = rng.random(steps) < freq_big_shakes * anxiety * (2000.0 / steps)
    turn = rng.uniform(-0.5, 0.5, steps)
    push = rng.standard_normal(steps) + 1j * rng.standard_normal(steps)
    pos = np.zeros(steps, dtype=np.complex128)
    x = 0j
    for t in range(steps - 1):
        # Original units: a 60 px path; x is in path lengths here, hence the 60.
        dv = anxiety * (gaussian_term * push[t] - centripetal * 60.0 * x) * step_len
        if big[t]:
            dv += 2.0 * v * np.exp(1j * (np.pi + turn[t]))
        v = v + dv
        v = v / max(abs(v), 1e-12) * step_len
        x = x + v
        pos[t + 1] = x
    # Scale the path to span most of the kernel (one pixel margin for the bilinear splat).
    pos -= 0.5 * (pos.real.max() + pos.real.min()) + 0.5j * (pos.imag.max() + pos.imag.min())
    span = max(np.abs(pos.real).max(), np.abs(pos.imag).max(), 1e-8)
    extent = (size - 3) / 2.0 * rng.uniform(0.6, 1.0)
    pos = pos / span * extent + (size - 1) / 2.0 * (1 + 1j)
    k = np.zeros((size, size), dtype=np.float64)
    ys, xs = pos.imag, pos.real
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    fy, fx = ys - y0, xs - x0
    for oy, ox, wgt in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
        np.add.at(k, (np.clip(y0 + oy, 0, size - 1), np.clip(x0 + ox, 0, size - 1)), wgt)
    return _normalised(k)


def disk_kernel(radius: float) -> np.ndarray:
    """A defocus disk of `radius` px, anti-aliased by 8x supersampling; sums to 1."""
    radius = max(float(radius), 0.5)
    half = int(math.ceil(radius))
    n = 2 * half + 1
    ss = 8
    coords = (np.arange(n * ss) + 0.5) / ss - (n / 2.0)
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    inside = (yy**2 + xx**2 <= radius**2).astype(np.float64)
    return _normalised(inside.reshape(n, ss, n, ss).mean(axis=(1, 3)))


def gaussian_kernel(sigma: float, sigma_minor: float | None = None, angle_deg: float = 0.0) -> np.ndarray:
    """A (possibly anisotropic) Gaussian kernel truncated at 3 sigma; sums to 1."""
    sigma = max(float(sigma), 0.1)
    sm = sigma if sigma_minor is None else max(float(sigma_minor), 0.1)
    half = max(int(math.ceil(3.0 * sigma)), 1)
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1].astype(np.float64)
    a = math.radians(angle_deg)
    u = xx * math.cos(a) + yy * math.sin(a)
    w = -xx * math.sin(a) + yy * math.cos(a)
    return _normalised(np.exp(-0.5 * ((u / sigma) ** 2 + (w / sm) ** 2)))


def convolve(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Convolve each channel of HxWx3 `image` with `kernel`, reflect-padded, same size out."""
    kh, kw = kernel.shape
    py, px = kh // 2, kw // 2
    pad = ((py, kh - 1 - py), (px, kw - 1 - px), (0, 0))
    # 'reflect' fails when the pad exceeds the image; 'symmetric' would too. Fall back to edge.
    mode = "reflect" if py < image.shape[0] and px < image.shape[1] else "edge"
    padded = np.pad(image, pad, mode=mode)
    out = signal.fftconvolve(padded, kernel[:, :, None], mode="valid", axes=(0, 1))
    return out.astype(np.float32)


def sample_kernel(
    rng: np.random.Generator, params: BlurParams | None = None, strength: float | None = None
) -> tuple[np.ndarray, dict[str, object]]:
    """Draw a blur kernel per `params`; returns (kernel, record)."""
    p = params or BlurParams()
    kind = choose(rng, p.types)
    rec: dict[str, object] = {"type": kind}
    if kind == "motion":
        size = pick_int(rng, p.motion_size, strength) | 1
        anxiety = pick(rng, p.motion_anxiety)
        k = motion_kernel(rng, size, anxiety)
        rec.update(size=size, anxiety=r(anxiety, 5))
    elif kind == "defocus":
        radius = pick(rng, p.defocus_radius, strength)
        k = disk_kernel(radius)
        rec.update(radius=r(radius))
    elif kind == "gaussian":
        sigma = pick(rng, p.gaussian_sigma, strength)
        ratio = float(rng.uniform(0.6, 1.0))
        angle = float(rng.uniform(0.0, 180.0))
        k = gaussian_kernel(sigma, sigma * ratio, angle)
        rec.update(sigma=r(sigma), sigma_minor=r(sigma * ratio), angle=r(angle, 2))
    else:
        raise ValueError(f"unknown blur type {kind!r}")
    rec.update(summarise_kernel(k))
    return k, rec


def _varying(
    rng: np.random.Generator, p: BlurParams, strength: float | None, first: np.ndarray, h: int, w: int
) -> tuple[list[np.ndarray], np.ndarray, list[dict[str, object]]]:
    """Kernels and their smooth per-pixel weights (n x H x W, summing to 1 at every pixel)."""
    n = pick_int(rng, p.varying_kernels)
    kernels, recs = [first], []
    for _ in range(max(n, 2) - 1):
        k, rec = sample_kernel(rng, p, strength)
        kernels.append(k)
        recs.append(rec)
    # Softmax of smooth fields: each kernel owns a region, with soft transitions between.
    sharp = float(rng.uniform(4.0, 12.0))
    fields = np.stack([smooth_field(rng, h, w, float(rng.uniform(1.0, 3.0))) for _ in kernels]) * sharp
    weights = np.exp(fields - fields.max(axis=0, keepdims=True))
    return kernels, (weights / weights.sum(axis=0, keepdims=True)).astype(np.float32), recs


def add_blur(
    image: np.ndarray,
    rng: np.random.Generator,
    params: BlurParams | None = None,
    strength: float | None = None,
) -> tuple[np.ndarray, dict[str, object]]:
    """Blur `image` (float32 HxWx3 in [0, 1]); returns (blurred image, parameter record).

    `strength` in [0, 1], when given, sets the kernel size/radius/sigma at that quantile.
    With `params.p_varying` the blur varies across the image; with `params.camera` it is
    applied in linear light with highlights, then noise, gamma and JPEG (see `camera`).
    """
    p = params or BlurParams()
    img = as_float_image(image)
    k, rec = sample_kernel(rng, p, strength)
    kernels, weights = [k], None
    if p.p_varying > 0 and rng.random() < p.p_varying:
        kernels, weights, extra = _varying(rng, p, strength, k, img.shape[0], img.shape[1])
        rec["varying"] = extra

    def blur(x: np.ndarray) -> np.ndarray:
        if weights is None:
            return convolve(x, kernels[0])
        return sum(wt[:, :, None] * convolve(x, kk) for wt, kk in zip(weights, kernels))  # type: ignore[return-value]

    if p.camera is None:
        return np.clip(blur(img), 0.0, 1.0), rec
    out, rec["camera"] = camera_pipeline(img, rng, p.camera, blur)
    return out, rec
