"""Full-resolution (x, release-6 output, target) of the own fixed r6 pairs (48/kind), 24 r7 pairs/kind,
the clean val photos, and external_val (validation only: never used for choosing)."""
from paths import D, TONE
import numpy as np, torch
from uniremoval.data import SyntheticPairs
from uniremoval.degrade import Registry
from uniremoval.data.io import read_image
from uniremoval.restorer import Restorer
torch.set_num_threads(2)
r6 = Restorer.from_pretrained("default", device="cpu")
sets = {}
for preset, n in (("r6", 48), ("r7", 24)):
    for k in ("haze", "rain", "blur"):
        ds = SyntheticPairs(D / "clean/val", kinds=[k], crop=256, seed=2024, hflip=False, length=n, registry=Registry.preset(preset))
        rows = []
        for i in range(n):
            p = ds[i]; x = p["input"].permute(1, 2, 0).numpy().astype(np.float32); t = p["target"].permute(1, 2, 0).numpy().astype(np.float32)
            rows.append((x, r6(x).astype(np.float32), t, p["name"].rsplit("_", 1)[0]))
        sets[f"{preset}_{k}"] = rows
        print(preset, k, flush=True)
rows = []
for f in sorted((D / "clean/val").iterdir()):
    x = read_image(f); rows.append((x, r6(x).astype(np.float32), x, f.stem))
sets["clean"] = rows
for name in ("rain_fu", "haze_sots_indoor"):
    rows = []
    for f in sorted((D / "external_val" / name / "input").iterdir()):
        x = read_image(f); t = read_image(D / "external_val" / name / "target" / f.name)
        rows.append((x, r6(x).astype(np.float32), t, f.stem))
    sets[name] = rows; print(name, len(rows), flush=True)
torch.save({k: {"x": [torch.from_numpy(r[0]) for r in v], "o": [torch.from_numpy(r[1]) for r in v], "t": [torch.from_numpy(r[2]) for r in v], "g": [r[3] for r in v]} for k, v in sets.items()}, TONE / "evalcache.pt")
