"""Tiled vs one-pass restoration: PSNR (dB) between the default tiled output and a one-pass
output of the same photo, fp32 on the CPU (an even spread of the matching photos, 8 at most).

    python benchmarks/tile_quality.py MODEL.json 'HELDOUT/*/*'
"""
from __future__ import annotations

import glob
import sys

import numpy as np

from uniremoval.image_io import read_image
from uniremoval.restorer import Restorer


def main(model: str, pattern: str) -> None:
    """Print, per photo, its size, tile count and the tiled-vs-one-pass PSNR."""
    tiled = Restorer.from_pretrained(model, device="cpu", precision="fp32", threads=2)
    one = Restorer(tiled.model, tiled.engine.with_tiling(tile=0))
    files = sorted(glob.glob(pattern))
    for f in files[:: max(1, len(files) // 8)][:8]:
        px = read_image(f).pixels
        mse = float(np.mean((tiled.restore_pixels(px) - one.restore_pixels(px)) ** 2))
        n = tiled.engine.plan(px.shape[0], px.shape[1]).n_tiles
        print(f"{f}  {px.shape[:2]}  tiles {n}  {'one tile' if mse == 0 else f'{10 * np.log10(1 / mse):.1f} dB'}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
