"""The "clean" kind: the photo is its own target.

A restoration model trained only on degraded inputs learns that every input needs fixing and
alters clean photos (sharpening halos, contrast changes, colour shifts). Clean pairs, input ==
target, teach it to leave a photo without haze, rain or blur alone.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._common import as_float_image


@dataclass
class CleanParams:
    """The clean kind has no parameters (a dataclass so configs treat it like any kind)."""


def add_clean(
    image: np.ndarray,
    rng: np.random.Generator,
    params: CleanParams | None = None,
    strength: float | None = None,
) -> tuple[np.ndarray, dict[str, object]]:
    """Return a copy of `image` unchanged (no random draws); the record is empty."""
    return as_float_image(image).copy(), {}
