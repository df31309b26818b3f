"""Contact sheets: each kind at several strengths, for eyeballing the synthesis.

Optionally real photos of the same kind are put at the end of each row (``real``), so a reader
can see where the synthesis still differs from the real thing.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw

from ._common import resize
from .registry import Registry


def fit_cell(image: np.ndarray, h: int, w: int) -> np.ndarray:
    """Centre-crop `image` to the aspect ratio h:w and resize it to (h, w) (Lanczos)."""
    img = np.asarray(image, dtype=np.float32)
    ih, iw = img.shape[:2]
    if ih * w > iw * h:  # too tall: crop rows
        ch = max(int(round(iw * h / w)), 1)
        img = img[(ih - ch) // 2 : (ih - ch) // 2 + ch]
    else:
        cw = max(int(round(ih * w / h)), 1)
        img = img[:, (iw - cw) // 2 : (iw - cw) // 2 + cw]
    return np.clip(resize(img, h, w), 0.0, 1.0)


def _degrade(reg: Registry, img: np.ndarray, kind: str, seed: int, strength: float, scale: float) -> np.ndarray:
    h, w = img.shape[:2]
    if scale <= 1.0:
        return reg.synthesize(img, kind, seed=seed, strength=strength)[0]
    big = np.clip(resize(img, int(round(h * scale)), int(round(w * scale))), 0.0, 1.0)
    out, _ = reg.synthesize(big, kind, seed=seed, strength=strength)
    return np.clip(resize(out, h, w), 0.0, 1.0)


def contact_sheet(
    image: np.ndarray,
    kinds: Sequence[str],
    strengths: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0),
    *,
    seed: int = 0,
    registry: Registry | None = None,
    label: bool = True,
    seeds: int = 1,
    real: Mapping[str, Sequence[np.ndarray]] | None = None,
    scale: float = 1.0,
) -> np.ndarray:
    """A uint8 HxWx3 grid: rows = kinds (``seeds`` rows each, seeds ``seed``, ``seed + 1``...),
    first column the clean image, then one column per strength, then ``real[kind]`` photos
    (fitted to the cell size) when given. Each row uses one seed so its columns differ only
    in strength. With `scale` > 1 each cell is degraded at `scale` x the size and downsampled
    (what a training crop at that scale sees; see `SyntheticPairs`)."""
    from . import REGISTRY

    reg = registry or REGISTRY
    img = np.asarray(image, dtype=np.float32)
    h, w = img.shape[:2]
    pad, gap = (16 if label else 0), 2
    seeds = max(seeds, 1)
    # A kind's real photos are dealt out over its rows, so every row shows different ones.
    n_real = max((-(-len(v) // seeds) for v in (real or {}).values()), default=0)
    cols = len(strengths) + 1 + n_real
    rows = [(kind, seed + i) for kind in kinds for i in range(seeds)]
    sheet = np.ones((len(rows) * (h + pad + gap), cols * (w + gap), 3), dtype=np.float32)
    texts: list[tuple[int, int, str]] = []
    for i, (kind, row_seed) in enumerate(rows):
        y0 = i * (h + pad + gap) + pad
        sheet[y0 : y0 + h, 0:w] = img
        texts.append((y0 - pad + 2, 2, f"{kind}: clean" + (f" (seed {row_seed})" if seeds > 1 else "")))
        for j, s in enumerate(strengths):
            out = _degrade(reg, img, kind, row_seed, float(s), scale)
            x0 = (j + 1) * (w + gap)
            sheet[y0 : y0 + h, x0 : x0 + w] = out
            texts.append((y0 - pad + 2, x0 + 2, f"s={s:g}"))
        photos = list((real or {}).get(kind, ()))[(row_seed - seed) * n_real : (row_seed - seed + 1) * n_real]
        for j, photo in enumerate(photos):
            x0 = (len(strengths) + 1 + j) * (w + gap)
            sheet[y0 : y0 + h, x0 : x0 + w] = fit_cell(photo, h, w)
            texts.append((y0 - pad + 2, x0 + 2, "real"))
    u8 = (np.clip(sheet, 0, 1) * 255 + 0.5).astype(np.uint8)
    if label:
        pil = Image.fromarray(u8)
        draw = ImageDraw.Draw(pil)
        for y, x, t in texts:
            draw.text((x, y), t, fill=(0, 0, 0))
        u8 = np.asarray(pil)
    return u8
