"""Triples (degraded x, release-6 output o, clean t) of whole training photos, stored as 96x96
area thumbnails (float16) in shards: data for a post-network tone head. Resumable by shard."""
from paths import D, TONE
import sys, time, numpy as np, torch, torch.nn.functional as F
from uniremoval.degrade import Registry
from uniremoval.degrade._common import resize
from uniremoval.data.synthetic import scan_clean
from uniremoval.data.io import read_image
from uniremoval.restorer import Restorer
torch.set_num_threads(2)
out = TONE / sys.argv[1]; seed = int(sys.argv[2]); n_total = int(sys.argv[3]); out.mkdir(parents=True, exist_ok=True)
S = 96
r7 = Registry.from_config({"kinds": {"rain": {"streak_dir": str(D / "rain_streaks/garg06")}}}, start=Registry.preset("r7"))
r6reg = Registry.preset("r6")
files, _ = scan_clean(D / "clean/train", full=False)
model = Restorer.from_pretrained("default", device="cpu")
KINDS = ["haze", "rain", "blur", "clean", "haze+rain", "rain+blur", "haze", "rain"]
def th(a): return F.adaptive_avg_pool2d(torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].float(), (S, S))[0].half().numpy()
SH = 50
for shard in range(n_total // SH):
    f = out / f"s{seed}_{shard:03d}.npz"
    if f.exists(): continue
    X, O, T, K, FI = [], [], [], [], []
    t0 = time.time()
    for j in range(SH):
        i = shard * SH + j
        rng = np.random.default_rng(seed * 1_000_003 + i)
        fi = int(rng.integers(len(files))); img = read_image(files[fi])
        h, w = img.shape[:2]
        L = int(np.exp(rng.uniform(np.log(320), np.log(640))))
        kind = KINDS[i % len(KINDS)]
        use_r6 = kind in ("haze", "rain", "blur") and rng.random() < 0.35
        s = 1.0 if use_r6 else float(np.exp(rng.uniform(0, np.log(3))))
        f_ = min(1.0, L * s / max(h, w))
        big = np.clip(resize(img, max(1, round(h * f_)), max(1, round(w * f_))), 0, 1) if f_ < 1 else img
        if rng.random() < 0.5: big = np.ascontiguousarray(big[:, ::-1])
        deg, _ = (r6reg if use_r6 else r7).synthesize(big, kind, rng)
        hh, ww = max(1, round(big.shape[0] / s)), max(1, round(big.shape[1] / s))
        if (hh, ww) != big.shape[:2]:
            cl = np.clip(resize(big, hh, ww), 0, 1); deg = np.clip(resize(deg, hh, ww), 0, 1)
        else:
            cl = big
        deg = np.round(deg * 255) / 255; cl = np.round(cl * 255) / 255
        o = model(deg.astype(np.float32))
        X.append(th(deg)); O.append(th(o)); T.append(th(cl)); K.append(kind + ("@r6" if use_r6 else "")); FI.append(fi)
    np.savez(f, x=np.stack(X), o=np.stack(O), t=np.stack(T), k=np.array(K), f=np.array(FI))
    print(f"{f.name} {time.time() - t0:.0f}s", flush=True)
