"""Sensor noise and JPEG compression, as extra degradation kinds.

- Gaussian: I = J + n, n ~ N(0, sigma^2) (read noise only).
- Poisson-Gaussian (Foi et al. 2008): I = Poisson(J * peak) / peak + N(0, sigma_read^2);
  `peak` is the photon count at white, so darker regions are relatively noisier.
- JPEG: encode/decode with Pillow at a random quality (blocking, ringing, colour bleeding).
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from ._common import Range, as_float_image, choose, pick, pick_int, r


@dataclass
class NoiseParams:
    """Parameter ranges for noise."""

    models: dict[str, float] = field(default_factory=lambda: {"gaussian": 0.5, "poisson_gaussian": 0.5})
    """Noise model -> probability."""
    sigma: Range = (0.01, 0.08)
    """Gaussian sigma (Gaussian model), in [0, 1] intensity units."""
    peak: Range = (300.0, 30.0)
    """Photons at white (Poisson-Gaussian); listed high -> low so strength 1 is the noisiest."""
    read_sigma: Range = (0.002, 0.02)
    """Read-noise sigma added in the Poisson-Gaussian model."""
    p_grey: float = 0.2
    """Probability that the noise is the same in all channels (luminance noise)."""


@dataclass
class JpegParams:
    """Parameter ranges for JPEG compression."""

    quality: tuple[int, int] = (60, 10)
    """JPEG quality, listed high -> low so strength 1 is the worst quality."""


def add_noise(
    image: np.ndarray,
    rng: np.random.Generator,
    params: NoiseParams | None = None,
    strength: float | None = None,
) -> tuple[np.ndarray, dict[str, object]]:
    """Add Gaussian or Poisson-Gaussian noise; returns (noisy image, parameter record)."""
    p = params or NoiseParams()
    img = as_float_image(image)
    model = choose(rng, p.models)
    grey = bool(rng.random() < p.p_grey)
    shape = img.shape[:2] + ((1,) if grey else (3,))
    if model == "gaussian":
        sigma = pick(rng, p.sigma, strength)
        out = img + rng.standard_normal(shape, dtype=np.float32) * np.float32(sigma)
        rec: dict[str, object] = {"model": model, "sigma": r(sigma, 5)}
    elif model == "poisson_gaussian":
        peak = pick(rng, p.peak, strength)
        read = pick(rng, p.read_sigma, strength)
        if grey:
            # Shared shot noise: draw it on luminance and apply it as a relative change.
            luma = img.mean(axis=2, keepdims=True)
            shot = rng.poisson(luma * peak).astype(np.float32) / np.float32(peak)
            out = img * (shot + 1e-3) / (luma + 1e-3)
        else:
            out = rng.poisson(img * peak).astype(np.float32) / np.float32(peak)
        out = out + rng.standard_normal(shape, dtype=np.float32) * np.float32(read)
        rec = {"model": model, "peak": r(peak, 2), "read_sigma": r(read, 5)}
    else:
        raise ValueError(f"unknown noise model {model!r}")
    rec["grey"] = grey
    return np.clip(out, 0.0, 1.0).astype(np.float32), rec


def add_jpeg(
    image: np.ndarray,
    rng: np.random.Generator,
    params: JpegParams | None = None,
    strength: float | None = None,
) -> tuple[np.ndarray, dict[str, object]]:
    """JPEG-compress and decode `image`; returns (decoded image, parameter record)."""
    p = params or JpegParams()
    img = as_float_image(image)
    q = int(min(max(pick_int(rng, p.quality, strength), 1), 95))
    u8 = (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(u8).save(buf, format="JPEG", quality=q)
    nbytes = buf.tell()
    buf.seek(0)
    with Image.open(buf) as im:
        out = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    return out, {"quality": q, "bytes_per_pixel": r(nbytes / (img.shape[0] * img.shape[1]), 4)}
