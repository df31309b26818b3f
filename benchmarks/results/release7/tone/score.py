"""Apply tone heads to release 6's full-resolution outputs (evalcache.py) and print PSNR, the paired
difference to release 6 with a bootstrap 95 % interval over photos, and images improved.
Usage: score.py NAME:ARCH ..."""
from paths import TONE
import sys
from pathlib import Path

import numpy as np, torch
from tonehead import ToneHead, ToneStats, thumb
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # benchmarks/
from synthetic_eval import bootstrap
torch.set_num_threads(2)
raw = torch.load(TONE / "evalcache.pt", weights_only=True)
sets = {k: [(x.numpy(), o.numpy(), t.numpy(), g) for x, o, t, g in zip(v["x"], v["o"], v["t"], v["g"])] for k, v in raw.items()}
nets = {}
for spec in sys.argv[1:]:
    n, arch = spec.split(":")
    ck = torch.load(TONE / f"{n}.pt", weights_only=True)
    net = ToneHead(width=16 if arch.endswith("16") else 32, use_grid=True) if arch.startswith("conv") else ToneStats(use_grid=arch == "statsgrid")
    net.load_state_dict(ck["sd"]); net.norm = ck["norm"]; net.eval(); nets[n] = net
def psnr(a, b): return 10 * np.log10(1 / max(np.mean((np.clip(a, 0, 1) - b) ** 2), 1e-10))
rng = np.random.default_rng(0)
for sname, rows in sets.items():
    base, inp = [], []; res = {n: [] for n in nets}; groups = [r[3] for r in rows]
    for x, o, t, _ in rows:
        base.append(psnr(o, t)); inp.append(psnr(x, t))
        xt = torch.from_numpy(x).permute(2, 0, 1)[None]; ot = torch.from_numpy(o).permute(2, 0, 1)[None]
        for n, net in nets.items():
            with torch.no_grad():
                y = ToneHead.apply(net.coefficients(thumb(xt), thumb(ot)), ot)[0].permute(1, 2, 0).numpy()
            res[n].append(psnr(y, t))
    s = f"{sname:18s} n={len(rows):3d} input {np.mean(inp):6.2f} r6 {np.mean(base):6.2f}"
    for n in nets:
        d = np.array(res[n]) - np.array(base); lo, hi = bootstrap(d, groups, 2000, rng)
        s += f" | {n} {np.mean(res[n]):6.2f} ({np.mean(d):+.2f} [{lo:+.2f},{hi:+.2f}] {int((d>0).sum())}/{len(d)})"
    print(s, flush=True)
