"""Degradation synthesis: haze, rain, blur, noise, JPEG and compounds of them.

Images are float32 numpy arrays, HxWx3, values in [0, 1]. Every call takes its randomness
from a `numpy.random.Generator` (or a seed) and returns ``(degraded, record)`` where the
record is a JSON-serialisable dict of everything that was drawn::

    from uniremoval.degrade import synthesize
    hazy, record = synthesize(clean, "haze", seed=0)

Kinds live in a `Registry`; `REGISTRY` holds the built-ins (preset ``r7``) and
`Registry.from_config` makes new kinds from a dict/YAML without code. `Registry.preset("r6")`
gives the ranges the shipped model was trained on (see `presets` and docs/data.md).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ._common import linear_to_srgb, resize, srgb_to_linear
from .blur import BlurParams, add_blur, convolve, disk_kernel, gaussian_kernel, motion_kernel, sample_kernel
from .camera import CameraParams, boost_highlights, camera_pipeline
from .clean import CleanParams, add_clean
from .haze import HazeParams, add_haze, pseudo_depth
from .noise import JpegParams, NoiseParams, add_jpeg, add_noise
from .rain import RainParams, add_rain, streak_kernel
from .presets import DEFAULT_PRESET, PRESETS
from .registry import SYNTHESISERS, Kind, Part, Registry, apply_overrides, default_registry
from .streaks import garg_streaks, place_layer

#: The default registry (preset r7): haze, rain, blur, noise, jpeg, clean, camera_noise,
#: camera_jpeg, rain+haze, blur+noise, blur+jpeg, mixed, haze+rain, rain+blur,
#: haze+noise+jpeg, rain+noise+jpeg.
REGISTRY: Registry = default_registry()

#: The three kinds Uni-Removal is about, in the canonical order (kind ids 0, 1, 2).
PRIMARY_KINDS: tuple[str, ...] = ("haze", "rain", "blur")


def synthesize(
    image: np.ndarray,
    kind: str,
    rng: np.random.Generator | None = None,
    *,
    seed: int | None = None,
    strength: float | None = None,
    registry: Registry | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Degrade `image` with `kind`; see `Registry.synthesize`."""
    return (registry or REGISTRY).synthesize(image, kind, rng, seed=seed, strength=strength)


def kinds() -> list[str]:
    """Names of the kinds in the default registry."""
    return REGISTRY.names()


__all__ = [
    "BlurParams", "CameraParams", "CleanParams", "HazeParams", "JpegParams", "NoiseParams", "RainParams",
    "DEFAULT_PRESET", "PRESETS", "add_clean", "boost_highlights", "camera_pipeline", "garg_streaks",
    "linear_to_srgb", "place_layer", "resize", "srgb_to_linear",
    "Kind", "Part", "Registry", "REGISTRY", "PRIMARY_KINDS", "SYNTHESISERS",
    "add_blur", "add_haze", "add_jpeg", "add_noise", "add_rain", "apply_overrides",
    "convolve", "default_registry", "disk_kernel", "gaussian_kernel", "kinds", "motion_kernel",
    "pseudo_depth", "sample_kernel", "streak_kernel", "synthesize",
]
