"""Tiled vs one-pass restoration: PSNR (dB) between the default tiled output and a one-pass
output of the same photo, fp32 on the CPU (every 3rd of the held-out real photos, 8 at most).

    python benchmarks/tile_quality.py MODEL.json 'HELDOUT/*/*'
"""
from __future__ import annotations

import glob
import sys

import numpy as np
import torch
from PIL import Image

from uniremoval.infer import Engine
from uniremoval.modelfile import load_model


def main(model: str, pattern: str) -> None:
    """Print, per photo, its size, tile count and the tiled-vs-one-pass PSNR."""
    torch.set_num_threads(2)
    net = load_model(model).net
    tiled = Engine(net, device="cpu", precision="fp32")
    one = Engine(net, device="cpu", precision="fp32", tile=0)
    files = sorted(glob.glob(pattern))
    for f in files[:: max(1, len(files) // 8)][:8]:
        x = torch.from_numpy(np.asarray(Image.open(f).convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)
        with torch.no_grad():
            mse = ((tiled(x).clamp(0, 1) - one(x).clamp(0, 1)) ** 2).mean().item()
        n = tiled.plan(x.shape[1], x.shape[2]).n_tiles
        print(f"{f}  {tuple(x.shape[1:])}  tiles {n}  {'one tile' if mse == 0 else f'{10 * np.log10(1 / mse):.1f} dB'}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
