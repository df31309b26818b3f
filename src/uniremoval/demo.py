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

    @property
    def gain(self) -> float:
        """PSNR gain of the restored image over the degraded one, in dB."""
        return self.psnr_out - self.psnr_in


#: A kind whose mean demo gain is below this (dB) is called out as barely improved.
BARELY_DB = 1.0


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
            visuals.append((degraded, restored, clean))
    grid = write_demo_grid(out / "grid.png", items, visuals)
    return items, grid


def kind_gains(items: Sequence[DemoItem]) -> dict[str, float]:
    """Mean PSNR gain per kind, in dB, in the order the kinds first appear."""
    by_kind: dict[str, list[float]] = {}
    for it in items:
        by_kind.setdefault(it.kind, []).append(it.gain)
    return {k: sum(v) / len(v) for k, v in by_kind.items()}


def write_demo_grid(
    path: Path, items: Sequence[DemoItem], visuals: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], cell: int = 320
) -> Path:
    """One row per degraded sample: degraded | restored | clean, each at the photo's own
    aspect ratio (no blank space under landscape photos), headed by the photo, its kind and
    the PSNR gain, so the grid reads without the table."""
    from PIL import ImageDraw, ImageFont

    font = ImageFont.load_default(size=15)
    pad, label_h = 4, 22
    tiles = [[_tile(a, cell) for a in row] for row in visuals]
    heights = [max(t.height for t in row) for row in tiles]
    width = 3 * cell + 4 * pad
    sheet = PILImage.new("RGB", (width, label_h + sum(h + label_h + pad for h in heights)), "white")
    draw = ImageDraw.Draw(sheet)
    for c, title in enumerate(("degraded", "restored", "clean")):
        draw.text((pad + c * (cell + pad), 3), title, fill="black", font=font)
    y = label_h
    for it, row, h in zip(items, tiles, heights):
        colour = "darkgreen" if it.gain >= BARELY_DB else "darkred"
        text = f"{it.name} / {it.kind}: {it.psnr_in:.1f} -> {it.psnr_out:.1f} dB ({it.gain:+.1f} dB)"
        draw.text((pad, y + 3), text, fill=colour, font=font)
        y += label_h
        for c, tile in enumerate(row):
            sheet.paste(tile, (pad + c * (cell + pad), y))
        y += h + pad
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


def _tile(px: np.ndarray, width: int) -> PILImage.Image:
    a = np.round(np.clip(px, 0, 1) * 255).astype(np.uint8)
    im = PILImage.fromarray(a[..., 0] if a.shape[2] == 1 else a[..., :3]).convert("RGB")
    return im.resize((width, max(1, round(im.height * width / im.width))), PILImage.LANCZOS)
