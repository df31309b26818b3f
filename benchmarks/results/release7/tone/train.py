"""Train a tone head on the thumbnails of gen.py (photos with index % 7 == 0 held out; their PSNR change
per kind printed every 500 steps). Usage: train.py NAME conv|conv16|stats|statsgrid STEPS DIR[,DIR] [WEIGHT_DECAY]."""
from paths import TONE
import sys, glob, numpy as np, torch, time
from tonehead import ToneHead, ToneStats, _feats
torch.manual_seed(0); torch.set_num_threads(1)
name, arch, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]); dirs = sys.argv[4].split(",")
wd = float(sys.argv[5]) if len(sys.argv) > 5 else 1e-4
X, O, T, K, FI = [], [], [], [], []
for dd in dirs:
    for f in sorted(glob.glob(str(TONE / dd / "*.npz"))):
        z = np.load(f); X.append(z["x"]); O.append(z["o"]); T.append(z["t"]); K.append(z["k"])
        if "f" in z: FI.append(z["f"])
        else:  # seed-1 shards: replay the generator's first draw
            seed = 1; sh = int(f.split("_")[-1][:3]); FI.append(np.array([int(np.random.default_rng(seed * 1_000_003 + sh * 50 + j).integers(380)) for j in range(50)]))
X, O, T = [torch.from_numpy(np.concatenate(a)).float() for a in (X, O, T)]; K = np.concatenate(K); FI = np.concatenate(FI)
val = torch.from_numpy(FI % 7 == 0); tr = ~val
print("train", int(tr.sum()), "val", int(val.sum()), flush=True)
net = ToneHead(width=16 if arch.endswith("16") else 32, use_grid=True) if arch.startswith("conv") else ToneStats(use_grid=arch == "statsgrid")
opt = torch.optim.AdamW(net.parameters(), 1e-3, weight_decay=wd)
sched = torch.optim.lr_scheduler.OneCycleLR(opt, 1e-3, total_steps=steps, pct_start=0.05)
g = torch.Generator().manual_seed(0)
FE = torch.cat([_feats(X[i:i+256], O[i:i+256]) for i in range(0, len(X), 256)]) if not arch.startswith("conv") else None
print("features", flush=True)
Xt, Ot, Tt = X[tr], O[tr], T[tr]; Xv, Ov, Tv = X[val], O[val], T[val]; Kv = K[val.numpy()]
if FE is not None:
    FEt, FEv = FE[tr], FE[val]
    mu, sd = FEt.mean(0), FEt.std(0) + 1e-3
    net.norm = (mu, sd)
def coef(idx_feats, x, o):
    return net.coefficients(x, o) if FE is None else net.from_feats((idx_feats - net.norm[0]) / net.norm[1])
def evalv():
    with torch.no_grad():
        Y = ToneHead.apply(coef(FEv if FE is not None else None, Xv, Ov), Ov)
    p = lambda a: -10 * torch.log10(((a.clamp(0, 1) - Tv) ** 2).mean((1, 2, 3)).clamp_min(1e-10))
    d = p(Y) - p(Ov); ks = sorted(set(k.split("@")[0] for k in Kv))
    return " ".join(f"{k}:{float(d[torch.from_numpy(np.array([kk.split('@')[0] == k for kk in Kv]))].mean()):+.2f}" for k in ks)
t0 = time.time()
for step in range(steps + 1):
    if step % 500 == 0: print(step, evalv(), f"{time.time()-t0:.0f}s", flush=True)
    if step == steps: break
    idx = torch.randint(len(Xt), (64,), generator=g)
    x, o, t = Xt[idx], Ot[idx], Tt[idx]
    if FE is None and step % 2: x, o, t = x.flip(-1), o.flip(-1), t.flip(-1)
    y = ToneHead.apply(coef(FEt[idx] if FE is not None else None, x, o), o)
    loss = (y - t).abs().mean() + ((y - t) ** 2).mean()
    opt.zero_grad(); loss.backward(); opt.step(); sched.step()
torch.save({"sd": net.state_dict(), "norm": getattr(net, "norm", None)}, TONE / f"{name}.pt")
