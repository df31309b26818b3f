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
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import ndimage, signal

from ._common import Range, as_float_image, pick, pick_int, pick_log, r
from .camera import CameraParams, camera_finish
from .haze import HazeParams, add_haze
from .streaks import garg_streaks


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
    # The fields below are off by default (the "r6" ranges); the "r7" preset turns them on.
    log_length: bool = False
    """Draw `length` log-uniformly (it spans photo resolutions, so every scale is as common)."""
    length_follows_strength: bool = True
    """Whether `strength` sets the length. Length depends on exposure time and resolution more
    than on how hard it rains, so r7 leaves it random and lets strength set coverage."""
    width_ratio: Range | None = None
    """When set, width = length x ratio, clipped to `width` (thick streaks are long ones)."""
    coverage: Range | None = None
    """When set, the nearest layer's density is chosen so its streaks cover this fraction of
    the image (drizzle to downpour, independent of streak size); follows strength."""
    ambient_gain: bool = False
    """Scale streak brightness with the scene's mean brightness (a drop refracts light from a
    wide field of view, Garg & Nayar 2007): dimmer streaks in dark scenes."""
    p_defocus: float = 0.0
    """Probability of a near, out-of-focus layer: few, long, wide, soft, translucent streaks."""
    defocus_width: Range = (3.0, 8.0)
    """Width of the near layer relative to the nearest sharp layer."""
    defocus_alpha: Range = (0.2, 0.6)
    """Brightness of the near layer relative to the nearest sharp layer (translucent)."""
    max_width: float = 24.0
    """Upper bound of any layer's width sigma, px."""
    streak_dir: str | None = None
    """Folder of third-party streak layers on black (e.g. Garg & Nayar 2006); None = off."""
    p_garg: float = 0.5
    """Probability that a layer from `streak_dir` replaces the procedural streaks."""
    garg_scale: Range = (0.5, 4.0)
    """Magnification of the third-party layer (log-uniform; like length, not tied to strength)."""
    garg_gain: Range = (0.8, 2.5)
    """Brightness gain of the third-party layer (its streaks peak near 0.5-0.9)."""
    camera: CameraParams | None = None
    """When set, the rainy scene is recorded by a camera: noise, gamma, JPEG after the rain
    (`camera.camera_finish`); None (r6) keeps the noise-free float image."""
    p_r6_streaks: float = 0.0
    """Probability that a sample's streaks are drawn with release 6's ranges (`R6_STREAK_FIELDS`
    at their defaults: short, thin, dense, procedural) while veil, heavy rain and camera stay as
    set. r7 spreads streaks over every scale, so few are the size of the public synthetic sets'
    (Fu et al.'s 512 px pairs: ~14 px streak autocorrelation length, as release 6's pairs); 0
    draws nothing, so existing presets are unchanged."""


#: The fields that decide streak geometry and source; `p_r6_streaks` resets them to defaults.
R6_STREAK_FIELDS: tuple[str, ...] = (
    "layers", "angle", "length", "log_length", "length_follows_strength", "width", "width_ratio",
    "coverage", "density", "brightness", "ambient_gain", "p_defocus", "streak_dir",
)


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
    h: int, w: int, rng: np.random.Generator, length: float, angle: float, width: float, density: float,
    factor: int = 1,
) -> np.ndarray:
    """Streak intensity map in [0, 1] of shape (h, w) for one layer.

    With `factor` > 1 the layer is drawn at 1/factor of the size and upsampled: wide streaks
    are smooth, so this loses nothing visible and makes their cost independent of width.
    """
    if factor > 1:
        lh, lw = -(-h // factor), -(-w // factor)
        low = streak_layer(lh, lw, rng, length / factor, angle, width / factor, density * factor**2)
        up = ndimage.zoom(low, factor, order=1, mode="nearest", grid_mode=True)
        return np.clip(up[:h, :w], 0.0, 1.0).astype(np.float32)
    k = streak_kernel(length, angle, width)
    kh, kw = k.shape
    # Seed drops on a field larger by the kernel so streaks cross the border naturally.
    H, W = h + kh - 1, w + kw - 1
    seeds = (rng.random((H, W), dtype=np.float32) < density).astype(np.float32)
    seeds *= rng.uniform(0.5, 1.0, (H, W)).astype(np.float32)
    s = signal.fftconvolve(seeds, k, mode="valid")
    return np.clip(s, 0.0, 1.0).astype(np.float32)


def _render_factor(width: float) -> int:
    # Streaks with sigma >= 3 px are drawn at reduced size (see `streak_layer`); thinner ones
    # (all of the r6 range) at full size, so r6 output is unchanged.
    return max(int(width // 1.5), 1)


def _draw_main(p: RainParams, rng: np.random.Generator, strength: float | None) -> dict[str, float]:
    """The nearest layer's parameters. One draw per parameter in a fixed order (the r6 order),
    whichever options are on, so a strength sweep changes only the strength parameters."""
    d: dict[str, float] = {"n_layers": pick_int(rng, p.layers), "angle": pick(rng, p.angle)}
    ls = strength if p.length_follows_strength else None
    d["length"] = pick_log(rng, p.length, ls) if p.log_length else pick(rng, p.length, ls)
    if p.width_ratio is not None:
        ratio = pick(rng, p.width_ratio)
        d["width"] = float(np.clip(d["length"] * ratio, min(p.width), max(p.width)))
    else:
        d["width"] = pick(rng, p.width)
    if p.coverage is not None:
        # A streak covers about length x 4.3 sigma pixels where it is above 10 % of its peak.
        d["coverage"] = pick_log(rng, p.coverage, strength)
        d["density"] = d["coverage"] / (max(d["length"], 1.0) * 4.3 * max(d["width"], 0.5))
    else:
        d["density"] = pick(rng, p.density, strength)
    d["brightness"] = pick(rng, p.brightness, strength)
    return d


def _procedural(
    h: int, w: int, rng: np.random.Generator, p: RainParams, d: dict[str, float]
) -> tuple[np.ndarray, list[dict[str, float]]]:
    """Screen-blended streak layers: returns (streak map S in [0, 1], per-layer records)."""
    keep = np.ones((h, w), dtype=np.float32)  # product of (1 - S_i): screen blend of layers
    layers = []
    for i in range(int(d["n_layers"])):
        # Further layers: shorter, thinner, denser, dimmer (perspective and attenuation).
        depth_scale = 0.65**i
        lay = {
            "angle": d["angle"] + float(rng.normal(0.0, p.angle_jitter)) * (i > 0),
            "length": max(d["length"] * depth_scale, 2.0),
            "width": max(d["width"] * (0.8**i), 0.4),
            "density": d["density"] * (1.3**i),
            "brightness": d["brightness"] * (0.7**i),
        }
        # A child generator: the field size depends on the streak length (hence on strength),
        # and the parent stream must not, so later draws stay put across strengths.
        layer_rng = np.random.default_rng(int(rng.integers(2**63)))
        s = streak_layer(h, w, layer_rng, lay["length"], lay["angle"], lay["width"], lay["density"],
                         _render_factor(lay["width"]))
        keep *= 1.0 - lay["brightness"] * s
        layers.append({k: r(v, 7 if k == "density" else 4) for k, v in lay.items()})
    return 1.0 - keep, layers


def _defocused(h: int, w: int, rng: np.random.Generator, p: RainParams, d: dict[str, float]) -> tuple[np.ndarray, dict[str, float]]:
    """A near, out-of-focus layer: drops close to the lens are large, blurred and faint."""
    width = min(d["width"] * pick(rng, p.defocus_width), p.max_width)
    length = d["length"] * float(rng.uniform(1.2, 2.5))
    alpha = d["brightness"] * pick(rng, p.defocus_alpha)
    cover = float(rng.uniform(0.03, 0.15))
    density = cover / (length * 4.3 * width)
    layer_rng = np.random.default_rng(int(rng.integers(2**63)))
    s = streak_layer(h, w, layer_rng, length, d["angle"], width, density, _render_factor(width))
    rec = {"length": r(length), "width": r(width), "brightness": r(alpha), "density": r(density, 7)}
    return alpha * s, rec


def add_rain(
    image: np.ndarray,
    rng: np.random.Generator,
    params: RainParams | None = None,
    strength: float | None = None,
) -> tuple[np.ndarray, dict[str, object]]:
    """Add rain to `image` (float32 HxWx3 in [0, 1]); returns (rainy image, parameter record).

    `strength` in [0, 1], when given, sets density (or coverage), brightness and length at
    that quantile.
    """
    p = params or RainParams()
    img = as_float_image(image)
    h, w = img.shape[:2]
    record: dict[str, object] = {}
    if p.p_r6_streaks > 0:
        record["r6_streaks"] = bool(rng.random() < p.p_r6_streaks)
        if record["r6_streaks"]:
            base = RainParams()
            p = replace(p, **{k: getattr(base, k) for k in R6_STREAK_FIELDS})
    d = _draw_main(p, rng, strength)
    if p.streak_dir and rng.random() < p.p_garg:
        streaks, record["garg"] = garg_streaks(
            h, w, rng, p.streak_dir, pick_log(rng, p.garg_scale), d["angle"], pick(rng, p.garg_gain, strength))
        # Keep the record's shape: one "layer" describing the nearest streaks.
        layers = [{"angle": r(d["angle"]), "length": r(d["length"]), "width": r(d["width"]),
                   "density": r(d["density"], 7), "brightness": r(d["brightness"])}]
    else:
        streaks, layers = _procedural(h, w, rng, p, d)
    if p.p_defocus > 0 and rng.random() < p.p_defocus:
        near, record["defocus"] = _defocused(h, w, rng, p, d)
        streaks = 1.0 - (1.0 - streaks) * (1.0 - near)
    ambient = img.reshape(-1, 3).mean(axis=0)
    if p.ambient_gain:
        # Relative to a mid-grey scene; bright scenes cannot make streaks brighter than white.
        streaks = streaks * float(np.clip(2.0 * ambient.mean(), 0.35, 1.5))
    # Rain is nearly colourless but picks up a little of the ambient light.
    colour = (0.85 + 0.15 * ambient / max(float(ambient.max()), 1e-6)).astype(np.float32)
    streaks = np.clip(streaks, 0.0, 1.0)
    out = 1.0 - (1.0 - img) * (1.0 - streaks[:, :, None] * colour[None, None, :])
    record.update({"layers": layers, "streak_coverage": r(float((streaks > 0.1).mean()))})
    if p.coverage is not None:
        record["coverage"] = r(d["coverage"])
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
    if p.camera is not None:
        out, record["camera"] = camera_finish(out, rng, p.camera)
    return np.clip(out, 0.0, 1.0).astype(np.float32), record
