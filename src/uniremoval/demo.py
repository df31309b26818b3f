"""`uniremoval demo`: degrade photos that an installed package ships, restore them, and show
the result, so a fresh install proves itself without any download or data of the user's.

The photos come from scikit-image's bundled sample images (read from the installed package's
files, never fetched). Each is degraded with every kind (seeded), restored by the model, and
scored against the clean original; a grid PNG shows degraded | restored | clean.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image as PILImage

from .image_io import Image, write_image

#: scikit-image sample photos that ship inside its wheel (no pooch download).
SAMPLES = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg")


@dataclass
class DemoItem:
    """One degraded sample and what the model made of it."""

    name: str
    kind: str
    degraded: Path
    restored: Path
    psnr_in: float
    psnr_out: float


def sample_photos(max_side: int = 384) -> dict[str, np.ndarray]:
    """The bundled sample photos as float32 RGB in [0, 1], downscaled to ``max_side``."""
    try:
        root = resources.files("skimage.data")
    except ModuleNotFoundError:
        raise RuntimeError("the demo needs scikit-image for its sample photos (pip install scikit-image)") from None
    photos = {}
    for name in SAMPLES:
        with resources.as_file(root / name) as p:
            im = PILImage.open(p).convert("RGB")
        im.thumbnail((max_side, max_side), PILImage.LANCZOS)
        photos[Path(name).stem] = np.asarray(im).astype(np.float32) / 255.0
    return photos


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    import torch

    from .metrics.fullref import psnr

    return float(psnr(torch.from_numpy(a).permute(2, 0, 1), torch.from_numpy(b).permute(2, 0, 1)))


def run_demo(
    restorer: "object",
    out_dir: str | Path,
    kinds: Sequence[str] = ("haze", "rain", "blur"),
    seed: int = 0,
) -> tuple[list[DemoItem], Path]:
    """Degrade every sample with every kind, restore, write images and a grid; returns the
    items and the grid's path."""
    from .degrade import synthesize
    from .evaluate import thumbnail, write_grid

    out = Path(out_dir)
    items: list[DemoItem] = []
    visuals = []
    for i, (name, clean) in enumerate(sample_photos().items()):
        for j, kind in enumerate(kinds):
            degraded, _ = synthesize(clean, kind, seed=seed + 100 * i + j)
            restored = restorer.restore_pixels(degraded)  # type: ignore[attr-defined]
            d_path = out / "degraded" / f"{name}_{kind}.png"
            r_path = out / "restored" / f"{name}_{kind}.png"
            write_image(Image(degraded), d_path)
            write_image(Image(restored), r_path)
            items.append(DemoItem(name, kind, d_path, r_path, _psnr(degraded, clean), _psnr(restored, clean)))
            visuals.append({"input": thumbnail(degraded), "outputs": {"restored": thumbnail(restored)}, "target": thumbnail(clean)})
    grid = write_grid(out / "grid.png", visuals, ["restored"])
    return items, grid
