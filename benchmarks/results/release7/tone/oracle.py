"""How much of release 6's error on the fixed r6 pairs is smooth tone? Oracle fits of r6 output -> target."""
import os
from pathlib import Path as _P
D = _P(os.environ.get("DATA", _P(__file__).resolve().parents[4] / "../shared/data"))
TONE = _P(os.environ.get("TONE", _P.home() / ".cache/uniremoval/release7/tone"))
import sys, numpy as np, torch, torch.nn.functional as F
from pathlib import Path
from uniremoval.data import SyntheticPairs
from uniremoval.degrade import Registry
from uniremoval.restorer import Restorer
torch.set_num_threads(2)
val = D / "clean/val"
r6 = Restorer.from_pretrained("default", device="cpu")
def psnr(a, b): return float(10*np.log10(1/np.mean((np.clip(a,0,1)-b)**2)))
def fit_global(o, t):  # per-channel gain+offset
    out = np.empty_like(o)
    for c in range(3):
        A = np.stack([o[...,c].ravel(), np.ones(o[...,c].size)],1); co,*_ = np.linalg.lstsq(A, t[...,c].ravel(), rcond=None)
        out[...,c] = o[...,c]*co[0]+co[1]
    return out
def fit_mat(o, t):  # 3x4 global colour matrix
    A = np.concatenate([o.reshape(-1,3), np.ones((o.shape[0]*o.shape[1],1))],1)
    co,*_ = np.linalg.lstsq(A, t.reshape(-1,3), rcond=None); return (A@co).reshape(o.shape)
def fit_grid(o, t, g=4):  # per-channel gain+offset on a gxg grid, bilinear
    h, w, _ = o.shape; ot = torch.from_numpy(o).permute(2,0,1)[None]; tt = torch.from_numpy(t).permute(2,0,1)[None]
    # local least squares via pooled moments (box = cell), then bilinear upsample
    p = lambda x: F.adaptive_avg_pool2d(x, g)
    mo, mt, moo, mot = p(ot), p(tt), p(ot*ot), p(ot*tt)
    a = (mot-mo*mt)/(moo-mo*mo+1e-4); b = mt-a*mo
    up = lambda x: F.interpolate(x, (h,w), mode="bilinear", align_corners=False)
    return (up(a)*ot+up(b))[0].permute(1,2,0).numpy()
res = {}
for preset in ("r6",):
  for k in ("haze","rain","blur"):
    ds = SyntheticPairs(val, kinds=[k], crop=256, seed=2024, hflip=False, length=48, registry=Registry.preset(preset))
    rows = []
    for i in range(48):
        p = ds[i]; x = p["input"].permute(1,2,0).numpy().astype(np.float32); t = p["target"].permute(1,2,0).numpy().astype(np.float32)
        o = r6(x).astype(np.float32)
        rows.append([psnr(x,t), psnr(o,t), psnr(fit_global(o,t),t), psnr(fit_mat(o,t),t), psnr(fit_grid(o,t,4),t), psnr(fit_global(x,t),t)])
    r = np.array(rows).mean(0); res[(preset,k)] = r
    print(preset, k, "input %.2f r6 %.2f | oracle gain/off %.2f  3x4 %.2f  grid4 %.2f | oracle on input %.2f" % tuple(r), flush=True)
