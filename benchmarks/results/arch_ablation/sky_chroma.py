"""The colour a model's haze prior gives the bright parts of real hazy photos. For each hazy photo
of one side of the real split (train: for choosing; heldout: for evaluation): the dark-channel
airlight candidate a0, the prior's airlight A and how much bluer A is than a0 (B - (R + G) / 2),
the mean transmission, and the chroma B - (R + G) / 2 of the brightest 20 % of the photo (skies,
fog banks) before and after the prior's inversion (photo at <= 768 px). A mean shift below zero
over the dehazed photos (t < 0.9) is a yellow cast.
Usage: sky_chroma.py train|heldout [MODEL=default]"""
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from uniremoval.data.io import read_image
from uniremoval.modelfile import load_model
from uniremoval.nets.hazeprior import THUMB, airlight_candidate
from uniremoval.stages.realsplit import plan_split

torch.set_num_threads(2)
side = sys.argv[1]
prior = load_model(sys.argv[2] if len(sys.argv) > 2 else "default").net.prior.eval()
real = Path(__file__).resolve().parents[3] / "../shared/data/real"
plan = plan_split(real, 0.25, 0)  # as stage 2 and real_panel.py
files = sorted(real / f["path"] for f in plan["files"] if f["group"] == "hazy" and f["side"] == side)


def blue_lean(c: torch.Tensor) -> torch.Tensor:
    return c[2] - (c[0] + c[1]) / 2


rows = []
for f in files:
    x = torch.from_numpy(np.ascontiguousarray(read_image(f))).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        thumb = F.interpolate(x, (THUMB, THUMB), mode="area")
        a0 = airlight_candidate(thumb)[0]
        t, a = prior(thumb)
        small = F.interpolate(x, scale_factor=min(1.0, 768 / max(x.shape[-2:])), mode="area")
        j = prior.dehaze(small)[0]
    lum = small[0].mean(0)
    bright = lum >= lum.flatten().quantile(0.8)
    cin, cout = float(blue_lean(small[0])[bright].mean()), float(blue_lean(j)[bright].mean())
    rows.append((cin, cout, float(t.mean())))
    print(f"{f.stem[:30]:30s} a0 {a0.numpy().round(3)} A {a[0].numpy().round(3)} A bluer by {float(blue_lean(a[0]) - blue_lean(a0)):+.3f}"
          f" | t {float(t.mean()):.2f} | bright chroma in {cin:+.3f} out {cout:+.3f}")
r = np.array(rows)
hazy = r[:, 2] < 0.9
print(f"{side}: {len(r)} photos, {int(hazy.sum())} dehazed (t < 0.9): bright chroma shift out - in {np.mean(r[hazy, 1] - r[hazy, 0]):+.4f}"
      f" (median {np.median(r[hazy, 1] - r[hazy, 0]):+.4f})")
