"""Score the haze-physics front end on evalcache.py's sets (own r6/r7 pairs, clean photos,
external_val: validation only). Rows: input, release 6, DCP, phys (the physics inversion with
PhysNet's t and A), r6(phys) (release 6 run on phys's output). Paired differences to release 6
with a bootstrap 95 % interval over photos. Usage: score.py [WEIGHTS]"""
import sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import *  # noqa
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # benchmarks/
from synthetic_eval import bootstrap
from paths import TONE
from uniremoval.baselines import dehaze_dcp
from uniremoval.restorer import Restorer

torch.set_num_threads(2)
net = PhysNet(); net.load_state_dict(torch.load(sys.argv[1] if len(sys.argv) > 1 else OUT / "physnet.pt", weights_only=True)); net.eval()
r6 = Restorer.from_pretrained("default", device="cpu")
raw = torch.load(TONE / "evalcache.pt", weights_only=True)
only = sys.argv[2].split(",") if len(sys.argv) > 2 else list(raw)


rng = np.random.default_rng(0)
for sname in only:
    v = raw[sname]; groups = v["g"]
    rows = {m: [] for m in ("input", "r6", "dcp", "phys", "r6(phys)")}
    tstat = []
    for x, o, t in zip(v["x"], v["o"], v["t"]):
        x, o, t = x.numpy(), o.numpy(), t.numpy()
        j, tm, a = apply_full(net, x)
        tstat.append(float(tm.mean()))
        rows["input"].append(psnr(x, t)); rows["r6"].append(psnr(o, t)); rows["phys"].append(psnr(j, t))
        rows["dcp"].append(psnr(dehaze_dcp(x)[0], t) if "haze" in sname else np.nan)
        rows["r6(phys)"].append(psnr(r6(j), t))
    s = f"{sname:17s} n={len(groups):3d} mean t {np.mean(tstat):.2f} |"
    for m, vals in rows.items():
        s += f" {m} {np.nanmean(vals):.2f}"
    for m in ("phys", "r6(phys)"):
        d = np.array(rows[m]) - np.array(rows["r6"]); lo, hi = bootstrap(d, groups, 2000, rng)
        s += f" | {m}-r6 {d.mean():+.2f} [{lo:+.2f},{hi:+.2f}] {int((d > 0).sum())}/{len(d)}"
    print(s, flush=True)
