"""How much of release 6's error on the fixed r6 pairs is smooth tone? Oracle fits of release 6's
output to the target. Reads evalcache.py's pairs and outputs (run it first)."""
import numpy as np, torch, torch.nn.functional as F
from paths import TONE


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
cache = torch.load(TONE / "evalcache.pt", weights_only=True)
for k in ("haze", "rain", "blur"):
    c = cache[f"r6_{k}"]
    rows = []
    for x, o, t in zip(c["x"], c["o"], c["t"]):
        x, o, t = x.numpy(), o.numpy(), t.numpy()
        rows.append([psnr(x,t), psnr(o,t), psnr(fit_global(o,t),t), psnr(fit_mat(o,t),t), psnr(fit_grid(o,t,4),t), psnr(fit_global(x,t),t)])
    print("r6", k, "input %.2f r6 %.2f | oracle gain/off %.2f  3x4 %.2f  grid4 %.2f | oracle on input %.2f" % tuple(np.mean(rows, 0)), flush=True)
