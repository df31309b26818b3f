"""Usage: blur_sharpen.py REAL_PER_IMAGE.csv LABEL MODEL.json  (the CSV of eval_stage2.sh, which scored `release7` and
LABEL on /tmp/realsplit/heldout). Per held-out blur photo: PIQE (from the eval CSV) and gradient energy of r7 and the candidate,
relative to the input, to see what PIQE rewards on photos neither model deblurs."""
import csv, sys, collections
import numpy as np
from PIL import Image
from uniremoval import Restorer
csvp, cand, candpath = sys.argv[1], sys.argv[2], sys.argv[3]
piqe = collections.defaultdict(dict)
for r in csv.DictReader(open(csvp)):
    if r["kind"] == "blur": piqe[r["image"]][r["method"]] = float(r["piqe"])
rs = {"release7": Restorer.from_pretrained("release7", device="cpu"), cand: Restorer.from_pretrained(candpath, device="cpu")}
def grad(a):
    y = a.mean(2); return np.abs(np.diff(y, axis=1)).mean() + np.abs(np.diff(y, axis=0)).mean()
dp, dg, ratios = [], [], []
for im in sorted(piqe):
    img = Image.open(f"/tmp/realsplit/heldout/{im}").convert("RGB")
    x = np.asarray(img, np.float32) / 255
    g0 = grad(x); out = {}
    for n, r in rs.items():
        y = np.asarray(r(img), np.float32) / 255
        out[n] = (grad(y) / g0, np.abs(y - x).mean())
    dp.append(piqe[im][cand] - piqe[im]["release7"]); dg.append(out[cand][0] - out["release7"][0])
    ratios.append((out["release7"][0], out[cand][0]))
    print(f"{im[5:35]:30s} piqe r7 {piqe[im]['release7']:5.1f} {cand} {piqe[im][cand]:5.1f}  grad/input r7 {out['release7'][0]:.3f} {cand} {out[cand][0]:.3f}  |out-in| r7 {out['release7'][1]:.4f} {cand} {out[cand][1]:.4f}")
g = np.array(ratios)
print("corr(dPIQE, dgrad) = %.2f" % np.corrcoef(dp, dg)[0, 1])
print("median grad/input: r7 %.3f, %s %.3f; %s lower on %d of %d" % (*np.median(g, 0)[:1], cand, np.median(g, 0)[1], cand, (g[:, 1] < g[:, 0]).sum(), len(g)))
