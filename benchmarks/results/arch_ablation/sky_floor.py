"""Release 7 on one photo with the prior's noise estimate held at or above each FLOOR (so its
detail cap `noise_detail / sigma` is at most noise_detail / FLOOR): a crop of each output side
by side in /tmp/sky_floor.png, with the crop's mean and std per channel. Session 22 looked at the
sky of MayankSingal__test10 (held-out) with it. Usage:
sky_floor.py PHOTO Y0,Y1,X0,X1 FLOOR[,FLOOR...]   (FLOOR 0: release 7 as shipped)"""
import sys

import numpy as np
import torch
from PIL import Image

import uniremoval.nets.hazeprior as hp
from uniremoval.data.io import read_image
from uniremoval.restorer import Restorer

torch.set_num_threads(2)
x = read_image(sys.argv[1])
y0, y1, x0, x1 = [int(v) for v in sys.argv[2].split(",")]
measured = hp.noise_sigma
rows = []
for fl in [float(v) for v in sys.argv[3].split(",")]:
    hp.noise_sigma = lambda x, strip_rows=512, fl=fl: measured(x, strip_rows).clamp_min(fl)
    c = Restorer.from_pretrained("default", device="cpu")(x)[y0:y1, x0:x1]
    print(f"floor {fl}: crop mean {c.mean((0, 1)).round(3)} std {c.std((0, 1)).round(4)}")
    rows.append(np.clip(c, 0, 1))
Image.fromarray((np.concatenate(rows, 1) * 255).round().astype(np.uint8)).save("/tmp/sky_floor.png")
