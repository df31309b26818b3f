"""Rain streaks, in layers, blended the way light adds (Garg & Nayar 2006; Yang et al. 2017).

Each layer scatters drops at random (density = fraction of pixels that seed a drop, each with
its own intensity) and smears them along one direction with an anti-aliased line kernel with
a Gaussian cross-section and tapered ends (a drop moving during the exposure). Further layers
are shorter, thinner, denser and dimmer. Streaks are light added to the scene, so layers and
image are combined by the screen blend  I = 1 - (1 - J)(1 - S), which adds light but saturates
at white instead of clipping.

Optionally a veil (light scattered by rain accumulating over distance) is mixed in:
I = (1 - v) I + v A; and heavy rain adds haze on top (Li et al., CVPR 2019).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage, signal

from ._common import Range, as_float_image, pick, pick_int, r
from .haze import HazeParams, add_haze


@dataclass
class RainParams:
    """Parameter ranges for rain. Lengths and widths are in pixels."""

    layers: tuple[int, int] = (1, 3)
    """Number of streak layers (inclusive range)."""
    angle: Range = (-30.0, 30.0)
    """Base streak angle from vertical, degrees; layers deviate from it by a few degrees."""
    angle_jitter: float = 4.0
    """Standard deviation (degrees) of each layer's deviation from the base angle."""
    length: Range = (12.0, 36.0)
    """Streak length of the nearest layer."""
    width: Range = (0.4, 1.2)
    """Gaussian sigma of the streak cross-section, nearest layer."""
    density: Range = (0.0012, 0.006)
    """Fraction of pixels that seed a drop, nearest layer."""
    brightness: Range = (0.3, 0.75)
    """Peak brightness added by a streak, nearest layer."""
    p_veil: float = 0.5
    """Probability of a rain veil."""
    veil: Range = (0.03, 0.15)
    """Veil amount v."""
    p_heavy: float = 0.15
    """Probability of heavy rain (rain + haze)."""
    heavy_haze: HazeParams = field(default_factory=lambda: HazeParams(beta=(0.3, 1.2), p_nonhomogeneous=0.0))
    """Haze ranges used for heavy rain."""


def streak_kernel(length: float, angle_deg: float, width: float) -> np.ndarray:
    """An anti-aliased streak: a line of `length` px at `angle_deg` from vertical, Gaussian
    cross-section of sigma `width`, tapered ends; peak value 1 (so brightness is in the
    layer, not the kernel)."""
    half = 0.5 * length
    rad = math.radians(angle_deg)
    dy, dx = math.cos(rad), math.sin(rad)
    extent = int(math.ceil(half * max(abs(dy), abs(dx)) + 3 * width + 1))
    yy, xx = np.mgrid[-extent : extent + 1, -extent : extent + 1].astype(np.float32)
    along = yy * dy + xx * dx
    across = -yy * dx + xx * dy
    profile = np.exp(-0.5 * (across / max(width, 0.3)) ** 2)
    # Raised-cosine taper: the drop enters and leaves the exposure gradually.
    taper = np.where(np.abs(along) <= half, 0.5 * (1 + np.cos(np.pi * along / max(half, 1e-3))), 0.0)
    k = (profile * taper).astype(np.float32)
    return k / max(float(k.max()), 1e-8)


def streak_layer(
    h: int, w: int, rng: np.random.Generator, length: float, angle: float, width: float, density: float
) -> np.ndarray:
    """Streak intensity map in [0, 1] of shape (h, w) for one layer."""
    k = streak_kernel(length, angle, width)
    kh, kw = k.shape
    # Seed drops on a field larger by the kernel so streaks cross the border naturally.
    H, W = h + kh - 1, w + kw - 1
    seeds = (rng.random((H, W), dtype=np.float32) < density).astype(np.float32)
    seeds *= rng.uniform(0.5, 1.0, (H, W)).astype(np.float32)
    s = signal.fftconvolve(seeds, k, mode="valid")
    return np.clip(s, 0.0, 1.0).astype(np.float32)


def add_rain(
    image: np.ndarray,
    rng: np.random.Generator,
    params: RainParams | None = None,
    strength: float | None = None,
) -> tuple[np.ndarray, dict[str, object]]:
    """Add rain to `image` (float32 HxWx3 in [0, 1]); returns (rainy image, parameter record).

    `strength` in [0, 1], when given, sets density, brightness and length at that quantile.
    """
    p = params or RainParams()
    img = as_float_image(image)
    h, w = img.shape[:2]
    n_layers = pick_int(rng, p.layers)
    base_angle = pick(rng, p.angle)
    length = pick(rng, p.length, strength)
    width = pick(rng, p.width)
    density = pick(rng, p.density, strength)
    bright = pick(rng, p.brightness, strength)
    keep = np.ones((h, w), dtype=np.float32)  # product of (1 - S_i): screen blend of layers
    layers = []
    for i in range(n_layers):
        # Further layers: shorter, thinner, denser, dimmer (perspective and attenuation).
        depth_scale = 0.65**i
        lay = {
            "angle": base_angle + float(rng.normal(0.0, p.angle_jitter)) * (i > 0),
            "length": max(length * depth_scale, 2.0),
            "width": max(width * (0.8**i), 0.4),
            "density": density * (1.3**i),
            "brightness": bright * (0.7**i),
        }
        # A child generator: the field size depends on the streak length (hence on strength),
        # and the parent stream must not, so later draws stay put across strengths.
        layer_rng = np.random.default_rng(int(rng.integers(2**63)))
        s = streak_layer(h, w, layer_rng, lay["length"], lay["angle"], lay["width"], lay["density"])
        keep *= 1.0 - lay["brightness"] * s
        layers.append({k: r(v) for k, v in lay.items()})
    streaks = 1.0 - keep
    # Rain is nearly colourless but picks up a little of the ambient light.
    ambient = img.reshape(-1, 3).mean(axis=0)
    colour = (0.85 + 0.15 * ambient / max(float(ambient.max()), 1e-6)).astype(np.float32)
    out = 1.0 - (1.0 - img) * (1.0 - streaks[:, :, None] * colour[None, None, :])
    record: dict[str, object] = {"layers": layers, "streak_coverage": r(float((streaks > 0.1).mean()))}
    veil = 0.0
    if rng.random() < p.p_veil:
        veil = pick(rng, p.veil, strength)
        a = float(rng.uniform(0.75, 1.0))
        out = (1.0 - veil) * out + veil * a
        record["veil_airlight"] = r(a)
    record["veil"] = r(veil)
    if rng.random() < p.p_heavy:
        out, haze_rec = add_haze(out, rng, p.heavy_haze, strength)
        record["heavy_haze"] = haze_rec
    else:
        record["heavy_haze"] = None
    return np.clip(out, 0.0, 1.0).astype(np.float32), record
