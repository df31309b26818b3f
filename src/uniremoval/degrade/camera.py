"""A camera's order of operations around an optical degradation (blur; haze and rain in r7).

Blur happens to light, before the sensor and the image processor: a camera integrates the
scene's radiance over the shake path (or the defocus disk) in linear light, clips at the
sensor's full well, adds shot and read noise, then applies the tone curve (gamma) and JPEG.
Blurring an sRGB image instead gets two things wrong that real blurry photos show plainly:

- highlights: a street light or a sunlit edge is far brighter than white; blurred, it stays
  a bright streak (a copy of the kernel) instead of fading into a grey smear. We boost the
  clean image's near-white pixels above 1 in linear light before blurring and clip after;
- noise and JPEG: they come after the blur, so they are sharp in a blurry photo.

`camera_pipeline(image, rng, params, blur_fn)` runs: sRGB -> linear, highlight boost,
``blur_fn``, clip, noise (Poisson-Gaussian, in linear light), linear -> sRGB, JPEG.
`camera_finish(image, rng, params)` runs the part after the optics on a hazy or rainy scene.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ._common import Range, linear_to_srgb, pick, pick_log, r, srgb_to_linear
from .noise import JpegParams, NoiseParams, add_jpeg, add_noise


@dataclass
class CameraParams:
    """Ranges of the camera stages around a blur."""

    p_highlights: float = 0.6
    """Probability of boosting near-white pixels above 1 before blurring."""
    highlight_threshold: Range = (0.85, 0.97)
    """Linear luminance above which pixels count as (possibly clipped) highlights (sRGB
    0.93-0.99: only what was at or near white in the clean photo)."""
    highlight_gain: Range = (1.5, 8.0)
    """Radiance of the brightest highlights relative to white (log-uniform; 8 = 3 stops)."""
    p_noise: float = 0.6
    """Probability of sensor noise after the blur."""
    noise: NoiseParams = field(default_factory=lambda: NoiseParams(
        models={"poisson_gaussian": 1.0}, peak=(4000.0, 150.0), read_sigma=(0.0005, 0.006), p_grey=0.2))
    """Sensor noise (in linear light): photons at white and read noise of phone/DSLR sensors."""
    p_jpeg: float = 0.5
    """Probability of JPEG compression at the end."""
    jpeg_quality: tuple[int, int] = (95, 60)
    """JPEG quality of a camera or a photo-sharing site (high -> low)."""


def boost_highlights(linear: np.ndarray, threshold: float, gain: float) -> np.ndarray:
    """Scale pixels whose luminance exceeds `threshold` smoothly up to `gain` x at white."""
    luma = linear @ np.asarray([0.2126, 0.7152, 0.0722], dtype=np.float32)
    u = np.clip((luma - threshold) / max(1.0 - threshold, 1e-3), 0.0, 1.0)
    return (linear * (1.0 + (gain - 1.0) * (u * u))[:, :, None]).astype(np.float32)


def camera_pipeline(
    image: np.ndarray,
    rng: np.random.Generator,
    params: CameraParams,
    blur_fn: Callable[[np.ndarray], np.ndarray],
) -> tuple[np.ndarray, dict[str, object]]:
    """Blur `image` (sRGB float HxWx3) as a camera would; returns (sRGB image, record).

    Every stage draws its randomness whether or not it is used, so turning one stage on or
    off in a config does not change the others' draws.
    """
    lin = srgb_to_linear(image)
    use_hi = bool(rng.random() < params.p_highlights)
    thr = pick(rng, params.highlight_threshold)
    gain = pick_log(rng, params.highlight_gain)
    rec: dict[str, object] = {"linear": True}
    if use_hi:
        lin = boost_highlights(lin, thr, gain)
        rec["highlights"] = {"threshold": r(thr), "gain": r(gain)}
    lin = np.clip(blur_fn(lin), 0.0, 1.0)  # the sensor saturates
    return _sensor_to_file(lin, rng, params, rec), rec


def _sensor_to_file(lin: np.ndarray, rng: np.random.Generator, params: CameraParams, rec: dict[str, object]) -> np.ndarray:
    """Noise in linear light, gamma, JPEG: what comes after the optics, in a camera's order."""
    noise_rng = np.random.default_rng(int(rng.integers(2**63)))
    if rng.random() < params.p_noise:
        lin, rec["noise"] = add_noise(lin, noise_rng, params.noise)
    out = linear_to_srgb(lin)
    jpeg_rng = np.random.default_rng(int(rng.integers(2**63)))
    if rng.random() < params.p_jpeg:
        out, rec["jpeg"] = add_jpeg(out, jpeg_rng, JpegParams(quality=params.jpeg_quality))
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def camera_finish(image: np.ndarray, rng: np.random.Generator, params: CameraParams) -> tuple[np.ndarray, dict[str, object]]:
    """Record an already degraded scene (sRGB float HxWx3): sensor noise, gamma, JPEG, 8 bits.

    Haze and rain happen in the scene, before the sensor, so a real hazy or rainy photo has
    its noise and JPEG blocks at the hazy level, unattenuated by the haze. Without this a
    dehazer learns to stretch whatever faint texture a hazy sky holds by 1/t, and on real
    photos that texture is noise and JPEG blocks: blotchy, blocky skies. The 8-bit rounding
    is what every photo file holds (banding in smooth skies). Highlights are not boosted:
    there is no blur to spread them.
    """
    rec: dict[str, object] = {"linear": True}
    out = _sensor_to_file(srgb_to_linear(np.clip(image, 0.0, 1.0)), rng, params, rec)
    return (np.round(out * 255.0) / 255.0).astype(np.float32), rec
