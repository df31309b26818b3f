"""Named sets of default ranges ("presets"), so trainings with old and new ranges compare.

- ``r6``: the ranges the shipped model was trained on (the dataclass defaults): streaks
  12-36 px long and under ~3 px wide, blur kernels <= 31 px, grey-ish airlight, no clean kind.
- ``r7`` (the default): degradations as real photos and other generators make them, at the
  size a full-resolution photo has them; every range and its source is in docs/data.md
  ("Synthesis models and default ranges").

A preset is ``{"kinds": {name: (synthesiser, params)}, "compounds": {name: [(part, p), ...]}}``;
`uniremoval.degrade.registry.Registry.preset(name)` turns it into a registry, and a kind
config can start from one with ``preset: r6``.
"""
from __future__ import annotations

from typing import Any, Callable

from .blur import BlurParams
from .camera import CameraParams
from .clean import CleanParams
from .haze import HazeParams
from .noise import JpegParams, NoiseParams
from .rain import RainParams

DEFAULT_PRESET = "r7"

_R6_COMPOUNDS: dict[str, list[tuple[str, float]]] = {
    "rain+haze": [("rain", 1.0), ("haze", 1.0)],
    "blur+noise": [("blur", 1.0), ("noise", 1.0)],
    "blur+jpeg": [("blur", 1.0), ("jpeg", 1.0)],
    "mixed": [("haze", 0.4), ("rain", 0.4), ("blur", 0.4), ("noise", 0.3), ("jpeg", 0.3)],
}


def r6() -> dict[str, Any]:
    """The ranges before the r7 revision (byte-identical synthesis to that code)."""
    kinds = {"haze": ("haze", HazeParams()), "rain": ("rain", RainParams()), "blur": ("blur", BlurParams()),
             "noise": ("noise", NoiseParams()), "jpeg": ("jpeg", JpegParams())}
    return {"kinds": kinds, "compounds": dict(_R6_COMPOUNDS)}


def r7_haze() -> HazeParams:
    """Dense, tinted, non-uniform haze with bright skies (sources: docs/data.md)."""
    return HazeParams(
        beta=(0.3, 3.0),  # far transmission exp(-3) = 0.05: the 1st-percentile DCP t of real hazy photos
        airlight=(0.65, 1.0),
        palette={"neutral": 0.35, "random": 0.2, "warm": 0.3, "cool": 0.15},
        warm_tint=(0.05, 0.65), cool_tint=(0.03, 0.25), airlight_max=1.15,
        p_nonhomogeneous=0.35, nonhomogeneous_amount=(0.3, 1.2),
        # Clear near, dense far: matches the DCP transmission of real hazy photos (docs/data.md).
        near_depth=(0.0, 0.05), depth_gamma=(1.5, 3.0),
        camera=CameraParams(),  # noise and JPEG come after the haze (see camera.camera_finish)
    )


def r7_rain() -> RainParams:
    """Drizzle to downpour, thin to thick and defocused streaks (sources: docs/data.md)."""
    return RainParams(
        layers=(1, 4), angle=(-30.0, 30.0), length=(8.0, 600.0), log_length=True, length_follows_strength=False,
        width=(0.4, 8.0), width_ratio=(0.008, 0.05), coverage=(0.01, 0.33), density=(0.0012, 0.006),
        brightness=(0.08, 0.8), ambient_gain=True, p_defocus=0.4, defocus_width=(3.0, 8.0),
        defocus_alpha=(0.2, 0.6), p_veil=0.6, veil=(0.03, 0.35), p_heavy=0.3,
        heavy_haze=HazeParams(beta=(0.3, 1.5), p_nonhomogeneous=0.2), camera=CameraParams(),
    )


def r7_blur() -> BlurParams:
    """Large shake, strong defocus, spatially varying, camera order (sources: docs/data.md)."""
    return BlurParams(
        types={"motion": 0.55, "defocus": 0.25, "gaussian": 0.2},
        motion_size=(7, 101), motion_anxiety=(0.005, 0.1), defocus_radius=(1.0, 15.0), gaussian_sigma=(0.6, 5.0),
        p_varying=0.3, varying_kernels=(2, 4), camera=CameraParams(),
    )


def r7() -> dict[str, Any]:
    """The default ranges: r6's kinds with r7 ranges, plus the clean kind and more compounds."""
    cam = CameraParams()
    kinds = {"haze": ("haze", r7_haze()), "rain": ("rain", r7_rain()), "blur": ("blur", r7_blur()),
             "noise": ("noise", NoiseParams()), "jpeg": ("jpeg", JpegParams()), "clean": ("clean", CleanParams()),
             # What a camera adds to any photo (the blur kind's camera stage, on its own): the
             # noise/jpeg kinds' ranges (sigma up to 0.08, quality down to 10) would bury the
             # haze or rain of a compound.
             "camera_noise": ("noise", cam.noise), "camera_jpeg": ("jpeg", JpegParams(quality=cam.jpeg_quality))}
    compounds = dict(_R6_COMPOUNDS)
    compounds.update({
        # Near streaks are in front of the haze (r6's rain+haze hazes them too, as far streaks).
        "haze+rain": [("haze", 1.0), ("rain", 1.0)],
        "rain+blur": [("rain", 1.0), ("blur", 1.0)],  # shake blurs the streaks too: rain first
        "haze+noise+jpeg": [("haze", 1.0), ("camera_noise", 0.5), ("camera_jpeg", 0.5)],
        "rain+noise+jpeg": [("rain", 1.0), ("camera_noise", 0.5), ("camera_jpeg", 0.5)],
    })
    return {"kinds": kinds, "compounds": compounds}


PRESETS: dict[str, Callable[[], dict[str, Any]]] = {"r6": r6, "r7": r7}


def preset_spec(name: str) -> dict[str, Any]:
    """The kinds and compounds of preset `name` (KeyError naming the known presets)."""
    try:
        return PRESETS[name]()
    except KeyError:
        raise KeyError(f"unknown degradation preset {name!r}; known: {', '.join(PRESETS)}") from None
