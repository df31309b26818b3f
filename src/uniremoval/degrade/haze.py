"""Haze by the atmospheric scattering model (Koschmieder; McCartney 1976).

    I(x) = J(x) t(x) + A (1 - t(x)),   t(x) = exp(-beta(x) d(x))

J is the clean image, A the airlight (per channel, so it can be tinted), d a pseudo-depth in
[0, 1] (no depth maps for ordinary photos), beta the scattering coefficient. Pseudo-depth
comes from one of three sources:

- ``gradient``: far at the top, near at the bottom, with a random horizon and tilt (most
  outdoor photos are framed this way);
- ``random``: a smooth random field (scenes with no such structure);
- ``image``: image-guided: the vertical gradient mixed with the smoothed brightness of the
  image, because bright, low-saturation regions (sky, distant walls) tend to be far; this
  keeps haze edges aligned with image content, like depth edges.

Non-homogeneous haze (as in NH-HAZE) multiplies beta by a smooth random field.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ._common import Range, as_float_image, choose, normalise, pick, r, smooth_field
from .camera import CameraParams, camera_finish


@dataclass
class HazeParams:
    """Parameter ranges for haze; every field is sampled uniformly within its range."""

    beta: Range = (0.4, 2.6)
    """Scattering coefficient; with depth in [0, 1], t at the farthest point is exp(-beta)."""
    airlight: Range = (0.7, 1.0)
    """Airlight brightness A."""
    p_coloured: float = 0.5
    """Probability that the airlight gets a colour tint."""
    tint: Range = (0.0, 0.08)
    """Size of the per-channel tint (relative deviation of A from grey)."""
    depth_sources: dict[str, float] = field(
        default_factory=lambda: {"gradient": 0.35, "random": 0.25, "image": 0.4}
    )
    """Pseudo-depth source -> probability."""
    near_depth: Range = (0.0, 0.3)
    """Depth of the nearest point, so nearby objects can get some haze too."""
    depth_gamma: Range = (0.6, 1.6)
    """Exponent applied to the normalised depth (shapes how fast haze grows with distance)."""
    p_nonhomogeneous: float = 0.25
    """Probability of non-homogeneous haze (beta varies smoothly in space)."""
    nonhomogeneous_amount: Range = (0.3, 0.9)
    """Log-amplitude of the beta modulation in non-homogeneous haze."""
    # Off by default (the "r6" ranges); the "r7" preset turns them on.
    palette: dict[str, float] | None = None
    """When set, the airlight colour family -> probability: ``neutral`` (grey), ``random``
    (the `p_coloured`/`tint` tint), ``warm`` (smog: yellow-brown), ``cool`` (blue hour)."""
    warm_tint: Range = (0.05, 0.65)
    """Amount u of a warm airlight, chroma 1 + u (0.6, 0.2, -0.8) (u = 0.62: A = (1, 0.82, 0.37))."""
    cool_tint: Range = (0.03, 0.25)
    """Amount u of a cool airlight, chroma 1 + u (-0.6, -0.3, 0.9)."""
    airlight_max: float = 1.0
    """Clip of the airlight; above 1, dense haze saturates to white (bright, blown-out skies)."""
    camera: CameraParams | None = None
    """When set, the hazy scene is recorded by a camera: noise, gamma, JPEG after the haze
    (`camera.camera_finish`), so the noise is not attenuated by t; None (r6) keeps the
    noise-free float image."""


def pseudo_depth(
    image: np.ndarray, rng: np.random.Generator, source: str
) -> tuple[np.ndarray, dict[str, object]]:
    """Pseudo-depth in [0, 1] (1 = far) of shape HxW from `source`, with its parameters."""
    h, w = image.shape[:2]
    if source == "random":
        cells = float(rng.uniform(2.0, 6.0))
        return smooth_field(rng, h, w, cells), {"cells": r(cells, 3)}
    horizon = float(rng.uniform(0.15, 0.6))
    tilt = float(rng.uniform(-0.2, 0.2))
    yy = (np.arange(h, dtype=np.float32) / max(h - 1, 1))[:, None]
    xx = (np.arange(w, dtype=np.float32) / max(w - 1, 1))[None, :]
    # Everything above the (tilted) horizon is at the far end; below, depth falls to 0.
    grad = np.clip((1.0 - (yy + tilt * (xx - 0.5))) / (1.0 - horizon), 0.0, 1.0).astype(np.float32)
    info: dict[str, object] = {"horizon": r(horizon, 3), "tilt": r(tilt, 3)}
    if source == "gradient":
        return grad, info
    if source != "image":
        raise ValueError(f"unknown depth source {source!r}")
    luma = image @ np.asarray([0.299, 0.587, 0.114], dtype=np.float32)
    sat = image.max(axis=2) - image.min(axis=2)
    sigma = max(h, w) / 40.0
    # Downsample before smoothing: the guide only needs coarse structure and this keeps it cheap.
    step = max(int(sigma // 2), 1)
    guide = ndimage.gaussian_filter((luma - 0.5 * sat)[::step, ::step], sigma / step, mode="reflect")
    guide = ndimage.zoom(guide, (h / guide.shape[0], w / guide.shape[1]), order=1, mode="nearest", grid_mode=True)
    guide = np.pad(guide, ((0, max(h - guide.shape[0], 0)), (0, max(w - guide.shape[1], 0))), mode="edge")[:h, :w]
    mix = float(rng.uniform(0.3, 0.7))
    info["guide_weight"] = r(mix, 3)
    return normalise((1.0 - mix) * grad + mix * normalise(guide)), info


_WARM = np.asarray([0.6, 0.2, -0.8], dtype=np.float32)
_COOL = np.asarray([-0.6, -0.3, 0.9], dtype=np.float32)


def _airlight(rng: np.random.Generator, p: HazeParams, a: float) -> tuple[np.ndarray, str]:
    """Airlight colour of brightness `a` and its family name (see `HazeParams.palette`)."""
    family = "random" if p.palette is None else choose(rng, p.palette)
    tint = np.zeros(3, dtype=np.float32)
    if family == "random":
        if rng.random() < p.p_coloured:
            tint = rng.uniform(-1.0, 1.0, 3).astype(np.float32) * pick(rng, p.tint)
            tint -= tint.mean()  # a tint changes colour, not overall brightness
        return np.clip(a * (1.0 + tint), 0.0, p.airlight_max).astype(np.float32), family
    if family == "warm":
        tint = _WARM * pick(rng, p.warm_tint)
    elif family == "cool":
        tint = _COOL * pick(rng, p.cool_tint)
    elif family != "neutral":
        raise ValueError(f"unknown airlight family {family!r}")
    # The brightest channel gets `a`, as the dark-channel estimate of real hazy photos shows
    # (a smog airlight is a dimmer blue, not a brighter red).
    chroma = 1.0 + tint
    return np.clip(a * chroma / chroma.max(), 0.0, p.airlight_max).astype(np.float32), family


def add_haze(
    image: np.ndarray,
    rng: np.random.Generator,
    params: HazeParams | None = None,
    strength: float | None = None,
) -> tuple[np.ndarray, dict[str, object]]:
    """Add haze to `image` (float32 HxWx3 in [0, 1]); returns (hazy image, parameter record).

    `strength` in [0, 1], when given, fixes beta at that quantile of its range (previews).
    """
    p = params or HazeParams()
    img = as_float_image(image)
    h, w = img.shape[:2]
    source = choose(rng, p.depth_sources)
    depth, depth_info = pseudo_depth(img, rng, source)
    near = pick(rng, p.near_depth)
    gamma = pick(rng, p.depth_gamma)
    depth = near + (1.0 - near) * np.power(depth, gamma, dtype=np.float32)
    beta = pick(rng, p.beta, strength)
    a = pick(rng, p.airlight)
    airlight, family = _airlight(rng, p, a)
    beta_map: np.ndarray | float = beta
    nonhomog = 0.0
    if rng.random() < p.p_nonhomogeneous:
        nonhomog = pick(rng, p.nonhomogeneous_amount)
        f = smooth_field(rng, h, w, float(rng.uniform(2.0, 5.0)))
        beta_map = beta * np.exp(nonhomog * (2.0 * f - 1.0)).astype(np.float32)
    t = np.exp(-beta_map * depth).astype(np.float32)
    out = img * t[:, :, None] + airlight[None, None, :] * (1.0 - t[:, :, None])
    record: dict[str, object] = {
        "beta": r(beta),
        "airlight": [r(v) for v in airlight],
        "airlight_family": family,
        "depth_source": source,
        "depth": depth_info,
        "near_depth": r(near),
        "depth_gamma": r(gamma),
        "nonhomogeneous": r(nonhomog),
        "transmission_mean": r(float(t.mean())),
        "transmission_min": r(float(t.min())),
    }
    out = np.clip(out, 0.0, 1.0).astype(np.float32)
    if p.camera is not None:
        out, record["camera"] = camera_finish(out, rng, p.camera)
    return out, record
