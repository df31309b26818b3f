"""Does a model still work when the same degradation is bigger in pixels?

A phone photo has its rain and blur at several times the pixel size of our training crops.
This script takes the pairs of benchmarks/synthetic_eval.py (same photos, count, crop, seed
and, by default, the same registry) and upsamples both the degraded and the clean image by
x2 and x4 with one filter (Lanczos or bicubic), so each degradation covers 2 or 4 times as
many pixels while the scene stays the same, then reports each model's PSNR per kind and
factor, with the input's PSNR at the same factor for reference. A model that only learned
small streaks and short kernels drops at x2/x4 towards the input row.

    python benchmarks/scale_eval.py --val-dir ../shared/data/clean/val --model default \\
        --model new=runs/r7/model.json --tag r7 --out benchmarks/results
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from uniremoval.data import SyntheticPairs
from uniremoval.data.io import write_png
from uniremoval.degrade import Registry, resize
from uniremoval.evaluate import Item, evaluate_set, load_method
from uniremoval.modelfile import ModelError

KINDS = ("haze", "rain", "blur")


def make_pairs(val_dir: Path, count: int, crop: int, seed: int, registry: Registry | None,
               kinds: tuple[str, ...] = KINDS) -> dict[str, list[dict]]:
    """``count`` pairs per kind exactly as benchmarks/synthetic_eval.py makes them (its
    ``make_items``), as float HxWx3 arrays; a kind's pairs do not depend on the other kinds."""
    sets = {}
    for k in kinds:
        ds = SyntheticPairs(val_dir, kinds=[k], crop=crop, seed=seed, hflip=False, length=count, registry=registry)
        sets[k] = [{"input": ds[i]["input"].permute(1, 2, 0).numpy(), "target": ds[i]["target"].permute(1, 2, 0).numpy()}
                   for i in range(count)]
    return sets


def upsample(img: np.ndarray, factor: int, method: str) -> np.ndarray:
    """``img`` enlarged ``factor`` times (Lanczos or bicubic, float, clipped to [0, 1])."""
    if factor == 1:
        return img
    h, w = img.shape[:2]
    if method == "lanczos":
        return np.clip(resize(img, h * factor, w * factor), 0.0, 1.0)
    planes = [np.asarray(Image.fromarray(np.ascontiguousarray(img[:, :, c]), mode="F").resize((w * factor, h * factor), Image.BICUBIC))
              for c in range(img.shape[2])]
    return np.clip(np.stack(planes, axis=2), 0.0, 1.0)


def write_factor(sets: dict[str, list[dict]], factor: int, method: str, dest: Path) -> list[Item]:
    """The pairs at one factor as PNGs (8-bit, as any evaluation set); returns the items."""
    items = []
    for kind, pairs in sets.items():
        for i, p in enumerate(pairs):
            x, y = dest / kind / f"{i:03d}_input.png", dest / kind / f"{i:03d}_target.png"
            write_png(x, upsample(p["input"], factor, method))
            write_png(y, upsample(p["target"], factor, method))
            items.append(Item(f"{kind}/{i:03d}", kind, x, y))
    return items


def markdown(result: dict) -> str:
    """One table: rows = methods, columns = kind x factor (mean PSNR, dB)."""
    factors = result["factors"]
    kinds = result.get("kinds", KINDS)
    head = [f"{k} x{f}" for k in kinds for f in factors]
    lines = [f"# Scale evaluation ({result['count_per_kind']} pairs per kind, crop {result['crop']}, seed {result['seed']}, "
             f"{result['filter']} upsampling, registry {result['registry']}, tile {result.get('tile', 'auto')}, scale {result.get('scale', '1')})\n",
             "Mean PSNR (dB) of degraded/clean pairs both upsampled by the factor.\n",
             "| method | " + " | ".join(head) + " |", "|---|" + "---|" * len(head)]
    for m, by in result["psnr"].items():
        lines.append(f"| {m} | " + " | ".join(f"{by[k][str(f)]:.2f}" for k in kinds for f in factors) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--val-dir", type=Path, required=True)
    ap.add_argument("--model", action="append", default=[], help="model name/path, or LABEL=PATH (repeat)")
    ap.add_argument("--kinds", default=",".join(KINDS), help="comma-separated subset of haze,rain,blur")
    ap.add_argument("--count", type=int, default=48)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--factors", default="1,2,4")
    ap.add_argument("--filter", choices=("lanczos", "bicubic"), default="lanczos")
    ap.add_argument("--preset", default="r6", help="Degradation preset (default r6: the fixed pairs of synthetic_eval.py; r7: the current ranges).")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (for the models).")
    ap.add_argument("--tile", default="auto", help="auto (as users get: tiles above the device's pixel budget), none "
                    "(one pass over the whole image) or a tile side in pixels; x2/x4 images are tiled on a CPU.")
    ap.add_argument("--scale", default="1", help="working resolution: 1 (full), a factor d, auto (by photo size), or "
                    "match (d = the upsampling factor: the pairs restored at their own scale)")
    ap.add_argument("--tag", default="default")
    ap.add_argument("--out", type=Path, default=Path("bench_out"))
    a = ap.parse_args()
    if not a.val_dir.expanduser().is_dir():
        raise ValueError(f"--val-dir {a.val_dir}: not a folder")
    factors = [int(f) for f in a.factors.split(",") if f]
    if not factors or min(factors) < 1:
        raise ValueError(f"--factors {a.factors!r}: positive whole numbers")
    kinds = tuple(k.strip() for k in a.kinds.split(",") if k.strip())
    if not kinds or any(k not in KINDS for k in kinds):
        raise ValueError(f"--kinds {a.kinds!r}: give a comma-separated subset of {','.join(KINDS)}")
    tile: int | str | None = None if a.tile.lower() in ("none", "0") else a.tile if a.tile == "auto" else int(a.tile)
    models = [tuple(m.split("=", 1)) if "=" in m else (m, m) for m in (a.model or ["default"])]
    registry = Registry.preset(a.preset) if a.preset else None
    t0 = time.time()
    sets = make_pairs(a.val_dir.expanduser(), a.count, a.crop, a.seed, registry, kinds)
    inp = load_method("identity")
    inp.name = "input"
    for label, spec in models:
        load_method(spec, device=a.device)  # fail on a bad model before any work
    psnr: dict[str, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    with tempfile.TemporaryDirectory() as tmp:
        for f in factors:
            runs = [inp]
            for label, spec in models:
                m = load_method(spec, device=a.device, tile=tile, scale=f if a.scale == "match" else a.scale)
                m.name = label
                runs.append(m)
            root = Path(tmp) / f"x{f}"
            items = write_factor(sets, f, a.filter, root / "pairs")
            res = evaluate_set(runs, items, "paired", root / "report", root / "pairs", grid_rows=1,
                               log=lambda s: print(s, file=sys.stderr))
            by: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
            for r in res.rows:
                by[r["method"]][r["kind"]].append(float(r["psnr"]))
            for m, per_kind in by.items():
                for k, v in per_kind.items():
                    psnr[m][k][str(f)] = float(np.mean(v))
            print(f"x{f}: done ({time.time() - t0:.0f} s)", file=sys.stderr)
    result = {"what": "mean PSNR per kind of synthetic_eval's pairs, degraded and clean both upsampled by each factor",
              "val_dir": str(a.val_dir), "kinds": list(kinds), "count_per_kind": a.count, "crop": a.crop, "seed": a.seed, "factors": factors,
              "filter": a.filter, "registry": a.preset or "default", "models": dict(models), "tile": a.tile, "scale": a.scale,
              "seconds": round(time.time() - t0, 1), "psnr": psnr}
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / f"scale_eval_{a.tag}.json").write_text(json.dumps(result, indent=1))
    md = markdown(result)
    (a.out / f"scale_eval_{a.tag}.md").write_text(md)
    print(md)


if __name__ == "__main__":
    try:
        main()
    except (ValueError, KeyError, OSError, ModelError) as e:
        sys.exit(f"scale_eval: error: {e}")
