"""Strict JSON for reports (evaluation summaries, ablation tables): one place that decides how
values JSON has no spelling for are written, so every report reads back the same way."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from .image_io import atomic_write_bytes


def json_safe(o: Any) -> Any:
    """``o`` with NaN as null and infinities as "inf"/"-inf" (strict JSON has neither; an
    identical input's PSNR is inf), numpy scalars as Python numbers, paths and keys as strings."""
    if isinstance(o, float) and not math.isfinite(o):
        return None if math.isnan(o) else ("inf" if o > 0 else "-inf")
    if isinstance(o, dict):
        return {str(k): json_safe(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [json_safe(v) for v in o]
    if isinstance(o, (np.floating, np.integer)):
        return json_safe(o.item())
    if isinstance(o, Path):
        return str(o)
    return o


def write_json(path: Path, data: dict[str, Any]) -> Path:
    """``data`` as indented strict JSON (see :func:`json_safe`), written atomically."""
    atomic_write_bytes(path, (json.dumps(json_safe(data), indent=1, default=str, allow_nan=False) + "\n").encode())
    return path
