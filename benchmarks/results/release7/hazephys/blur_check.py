"""Does the prior take blurred photos for haze? (the failure release 7 showed on whole-photo blur:
bright, low-contrast scenes darkened). For each prior's weights: the r7 blur synthesised on
whole validation photos (longer side 512 and 1024 px, two seeds each: 56 photos) -- mean
transmission t, and PSNR of the prior's output against the clean photo minus the input's
(a perfect guard gives 0: t = 1 leaves the photo as it is); then the real photos of the
TRAINING side of the real split (blur: t should be 1; hazy: how many the prior still sees).
The held-out side is not read here (it stays for evaluation).
Usage: blur_check.py WEIGHTS [WEIGHTS ...]  (.pt or .safetensors)"""
import sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import *  # noqa
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # benchmarks/
from real_panel import shrink
from uniremoval.data.io import read_image
from uniremoval.degrade import Registry, resize

torch.set_num_threads(2)


def load(w: str) -> PhysNet:
    n = PhysNet()
    n.load_state_dict(load_weights(w))
    return n.eval()


nets_ = {Path(w).stem: load(w) for w in sys.argv[1:]}
reg = Registry.preset("r7")
synth = []
for f in sorted((D / "clean/val").iterdir()):
    img = read_image(f)
    for side, seed in ((512, 0), (512, 1), (1024, 2), (1024, 3)):
        s = side / max(img.shape[:2]); x = np.clip(resize(img, round(img.shape[0] * s), round(img.shape[1] * s)), 0, 1).astype(np.float32)
        y, _ = reg.synthesize(x, "blur", seed=1000 * seed + len(synth))
        synth.append((f"{f.stem}@{side}/{seed}", x, y.astype(np.float32)))
sides = {g: real_side(g) for g in ("blur", "hazy")}
for k, n in nets_.items():
    ts, dp, bad = [], [], []
    for name, x, y in synth:
        j, t, _ = apply_full(n, y)
        ts.append(t.mean()); d = psnr(j, x) - psnr(y, x); dp.append(d)
        if d < -0.5: bad.append(f"{name} t {t.mean():.2f} {d:+.1f}")
    print(f"{k}: synth blur (n={len(synth)}) mean t {np.mean(ts):.3f}, prior - input {np.mean(dp):+.3f} dB, "
          f"worst {min(dp):+.2f}, {sum(d < -0.5 for d in dp)} lose > 0.5 dB, {sum(t < 0.95 for t in ts)} with t < 0.95", flush=True)
    for b in bad: print("   ", b)
    for g, files in sides.items():
        tm = []
        for f in files:
            _, t, _ = apply_full(n, shrink(read_image(f), 768)); tm.append(t.mean())
        tm = np.array(tm)
        print(f"{k}: real {g} train side (n={len(tm)}) mean t {tm.mean():.3f}, t < 0.9: {int((tm < 0.9).sum())}, t < 0.97: {int((tm < 0.97).sum())}, t >= 0.99: {int((tm >= 0.99).sum())}", flush=True)
        if g == "blur":
            for f, t in zip(files, tm):
                if t < 0.9: print(f"    {f.stem[:40]} t {t:.2f}")
