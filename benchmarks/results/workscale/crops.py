"""Centre crops, input | full resolution | --scale auto, of the given photos (one PNG, outside git)."""
import sys, numpy as np, torch
from PIL import Image
from uniremoval.restorer import Restorer
from uniremoval.image_io import read_image
files = sys.argv[2:]; out = sys.argv[1]
R1 = Restorer.from_pretrained('default', device='cpu', precision='fp32', scale=1)
R2 = Restorer(R1.model, R1.engine.with_tiling(scale='auto'))
rows = []
for f in files:
    px = read_image(f).pixels
    h, w = px.shape[:2]; c = 360
    y0, x0 = (h - c) // 2, (w - c) // 2
    a, b = R1.restore_pixels(px), R2.restore_pixels(px)
    rows.append(np.concatenate([im[y0:y0+c, x0:x0+c] for im in (px, a, b)], 1))
Image.fromarray((np.concatenate(rows, 0) * 255 + 0.5).astype(np.uint8)).save(out)
