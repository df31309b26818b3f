"""The prior's airlight and mean transmission against the dark-channel prior's on real hazy
photos of the TRAINING side of the real split (the held-out side stays for evaluation), each
shrunk to 768 px. Usage: airlight_check.py [WEIGHTS ...]  (default: physnet_c.pt)"""
import sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import *  # noqa
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # benchmarks/
from real_panel import shrink
from uniremoval.baselines import dehaze_dcp
from uniremoval.data.io import read_image

torch.set_num_threads(2)
files = real_side("hazy")[:24]
nets_ = {}
for w in sys.argv[1:] or [str(OUT / "physnet_c.pt")]:
    n = PhysNet(); n.load_state_dict(torch.load(w, weights_only=True)); nets_[Path(w).stem] = n.eval()
rows = []
for f in files:
    img = shrink(read_image(f), 768)
    _, info = dehaze_dcp(img)
    s = f"{f.stem[:28]:28s} dcp A {np.round(info['airlight'], 2)} t {info['transmission'].mean():.2f}"
    r = [info["airlight"].mean(), info["transmission"].mean()]
    for k, n in nets_.items():
        _, t, a = apply_full(n, img)
        s += f" | {k} A {np.round(a, 2)} t {t.mean():.2f}"; r += [a.mean(), t.mean()]
    rows.append(r); print(s, flush=True)
m = np.array(rows)
print(f"mean over {len(files)}: dcp A {m[:, 0].mean():.3f} t {m[:, 1].mean():.3f}"
      + "".join(f" | {k} A {m[:, 2 + 2 * i].mean():.3f} t {m[:, 3 + 2 * i].mean():.3f}" for i, k in enumerate(nets_)))
