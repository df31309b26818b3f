"""Contact sheets: each kind at several strengths, for eyeballing the synthesis."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from .registry import Registry


def contact_sheet(
    image: np.ndarray,
    kinds: Sequence[str],
    strengths: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0),
    *,
    seed: int = 0,
    registry: Registry | None = None,
    label: bool = True,
) -> np.ndarray:
    """A uint8 HxWx3 grid: rows = kinds, first column the clean image, then one column per
    strength. Each row uses the same seed so the columns differ only in strength."""
    from . import REGISTRY

    reg = registry or REGISTRY
    img = np.asarray(image, dtype=np.float32)
    h, w = img.shape[:2]
    pad = 16 if label else 0
    gap = 2
    cols = len(strengths) + 1
    sheet = np.ones((len(kinds) * (h + pad + gap), cols * (w + gap), 3), dtype=np.float32)
    texts: list[tuple[int, int, str]] = []
    for i, kind in enumerate(kinds):
        y0 = i * (h + pad + gap) + pad
        sheet[y0 : y0 + h, 0:w] = img
        texts.append((y0 - pad + 2, 2, f"{kind}: clean"))
        for j, s in enumerate(strengths):
            out, _ = reg.synthesize(img, kind, seed=seed, strength=float(s))
            x0 = (j + 1) * (w + gap)
            sheet[y0 : y0 + h, x0 : x0 + w] = out
            texts.append((y0 - pad + 2, x0 + 2, f"s={s:g}"))
    u8 = (np.clip(sheet, 0, 1) * 255 + 0.5).astype(np.uint8)
    if label:
        pil = Image.fromarray(u8)
        draw = ImageDraw.Draw(pil)
        for y, x, t in texts:
            draw.text((x, y), t, fill=(0, 0, 0))
        u8 = np.asarray(pil)
    return u8
