"""A fixed visual panel of real photos: input | model A | model B, one PNG.

Twelve photos from the held-out side of the real-photo split (4 hazy, 4 rainy, 4 blurry; the
split is `uniremoval.stages.realsplit.plan_split`, the one stage 2 evaluates on, so no model
trained on these photos), the first ones of each kind in the split's own ranking, so the panel
is the same for every run and every model pair. Each photo is restored whole (after an
optional downscale to ``--max-side``), then every cell is shrunk to ``--cell`` pixels wide so
the PNG stays reasonable. The PNG must be written outside the repository (the photos are
research-use only).

    python benchmarks/real_panel.py --real ../shared/data/real --model-a default \\
        --model-b runs/r7/model.json --out /tmp/panel.png
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from uniremoval.data.io import read_image
from uniremoval.degrade import resize
from uniremoval.evaluate import load_method
from uniremoval.modelfile import ModelError
from uniremoval.stages.realsplit import plan_split

REPO = Path(__file__).resolve().parents[1]
KIND_FOLDERS = ("hazy", "rain", "blur")


def panel_photos(real: Path, per_kind: int, holdout: float, seed: int) -> list[tuple[str, Path]]:
    """(kind folder, path) of the first ``per_kind`` held-out photos of each kind folder."""
    plan = plan_split(real, holdout, seed)
    chosen: list[tuple[str, Path]] = []
    for group in KIND_FOLDERS:
        held = sorted((f for f in plan["files"] if f["group"] == group and f["side"] == "heldout"), key=lambda f: (f["key"], f["path"]))
        if not held:
            raise ValueError(f"{real}: no held-out photos in {group}/")
        if len(held) < per_kind:
            print(f"note: {group}/ has only {len(held)} held-out photos", file=sys.stderr)
        chosen += [(group, real / f["path"]) for f in held[:per_kind]]
    return chosen


def shrink(img: np.ndarray, max_side: int) -> np.ndarray:
    """``img`` downscaled so its longer side is at most ``max_side`` (0: unchanged)."""
    h, w = img.shape[:2]
    if max_side <= 0 or max(h, w) <= max_side:
        return img
    s = max_side / max(h, w)
    return np.clip(resize(img, max(int(round(h * s)), 1), max(int(round(w * s)), 1)), 0.0, 1.0)


def compose(rows: list[list[np.ndarray]], labels: list[str], headers: list[str], cell: int) -> Image.Image:
    """A grid: one row per photo (cells scaled to ``cell`` px wide), a header and row labels."""
    gap, top, label_h = 4, 18, 14
    scaled = [[np.clip(resize(c, max(int(round(c.shape[0] * cell / c.shape[1])), 1), cell), 0, 1) for c in row] for row in rows]
    heights = [max(c.shape[0] for c in row) + label_h for row in scaled]
    width = len(headers) * (cell + gap)
    sheet = Image.new("RGB", (width, top + sum(h + gap for h in heights)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for j, name in enumerate(headers):
        draw.text((j * (cell + gap) + 4, 3), name, fill=(0, 0, 0))
    y = top
    for row, label, h in zip(scaled, labels, heights):
        draw.text((4, y), label, fill=(0, 0, 0))
        for j, c in enumerate(row):
            sheet.paste(Image.fromarray((c * 255 + 0.5).astype(np.uint8)), (j * (cell + gap), y + label_h))
        y += h + gap
    return sheet


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--real", type=Path, required=True, help="Folder with hazy/, rain/, blur/ real photos.")
    ap.add_argument("--model-a", required=True, help="model name/path, or LABEL=PATH")
    ap.add_argument("--model-b", required=True, help="model name/path, or LABEL=PATH")
    ap.add_argument("--out", type=Path, required=True, help="PNG path, outside the repository.")
    ap.add_argument("--per-kind", type=int, default=4)
    ap.add_argument("--holdout", type=float, default=0.25, help="The split's held-out fraction (as stage 2).")
    ap.add_argument("--split-seed", type=int, default=0, help="The split's seed (as stage 2).")
    ap.add_argument("--max-side", type=int, default=1024, help="Downscale photos to this longer side before restoring (0: full size).")
    ap.add_argument("--cell", type=int, default=320, help="Width of each cell in the PNG, px.")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (for the models).")
    a = ap.parse_args()
    out = a.out.expanduser().resolve()
    if out.is_relative_to(REPO):
        raise ValueError(f"--out {a.out}: inside the repository; the real photos must not be committed")
    if out.suffix.lower() != ".png":
        raise ValueError(f"--out {a.out}: give a .png path")
    specs = [m.split("=", 1) if "=" in m else [Path(m).stem, m] for m in (a.model_a, a.model_b)]
    if specs[0][0] == specs[1][0]:
        specs = [[f"A: {specs[0][0]}", specs[0][1]], [f"B: {specs[1][0]}", specs[1][1]]]
    methods = [load_method(spec, device=a.device) for _, spec in specs]
    rows, labels = [], []
    for group, path in panel_photos(a.real.expanduser(), a.per_kind, a.holdout, a.split_seed):
        x = shrink(read_image(path), a.max_side)
        rows.append([x] + [np.clip(np.asarray(m.restore(x), dtype=np.float32), 0, 1) for m in methods])
        labels.append(f"{group}/{path.name}")
        print(f"{group}/{path.name}", file=sys.stderr)
    out.parent.mkdir(parents=True, exist_ok=True)
    compose(rows, labels, ["input"] + [label for label, _ in specs], a.cell).save(out)
    print(f"wrote {out} ({len(rows)} photos)")


if __name__ == "__main__":
    try:
        main()
    except (ValueError, KeyError, OSError, ModelError) as e:
        sys.exit(f"real_panel: error: {e}")
