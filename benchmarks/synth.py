"""Benchmark synthetic pair generation: pairs/s per kind at 128 and 256 px, per preset.

Measures, per degradation preset (``--presets r6,r7``: the shipped model's ranges and the
current defaults), optionally with multi-scale crops (``--scales 1,4``), kind and crop size:
- ``degrade``: `synthesize` alone on an in-memory crop (one core);
- ``item``: a full `SyntheticPairs` item (decode photo, crop with margin, degrade, tensors;
  one core), i.e. what one DataLoader worker delivers;
and the throughput of a DataLoader with `--workers` workers on a kind-mixed, kind-grouped
stream (what training sees). Each number is the median of `--repeats` runs.

    python benchmarks/synth.py --clean /path/to/clean/photos --out bench_out/

Without --clean, random-texture PNGs are generated in a temp folder (numbers then exclude
JPEG decoding of real photos).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from uniremoval.sysinfo import machine


def _fake_clean(n: int = 12) -> Path:
    from PIL import Image

    d = Path(tempfile.mkdtemp(prefix="synth_bench_"))
    rng = np.random.default_rng(0)
    for i in range(n):
        base = rng.random((40, 60, 3))
        img = np.kron(base, np.ones((8, 8, 1)))[:321, :481]
        Image.fromarray((img * 255).astype(np.uint8)).save(d / f"img{i}.png")
    return d


def _rate(fn, n: int, repeats: int) -> float:
    fn(0)  # warm-up (imports, FFT plans)
    rates = []
    for r in range(repeats):
        t = time.perf_counter()
        for i in range(n):
            fn(r * n + i)
        rates.append(n / (time.perf_counter() - t))
    return statistics.median(rates)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clean", type=Path, default=None, help="Folder of clean photos (default: generated).")
    ap.add_argument("--out", type=Path, default=Path("bench_out"))
    ap.add_argument("--sizes", default="128,256")
    ap.add_argument("--kinds", default="haze,rain,blur,noise,jpeg,rain+haze,blur+noise,mixed")
    ap.add_argument("--items", type=int, default=30, help="Items per timed run.")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=12)
    ap.add_argument("--presets", default="r6,r7", help="Degradation presets to compare.")
    ap.add_argument("--scales", default="", help="LO,HI: also time each preset with SyntheticPairs(scales=(LO, HI)).")
    ap.add_argument("--no-loader", action="store_true", help="Skip the DataLoader measurement.")
    args = ap.parse_args()

    torch.set_num_threads(1)
    from uniremoval.data import KindGroupedBatchSampler, SyntheticPairs, collate_pairs, seed_worker
    from uniremoval.degrade import Registry

    clean = args.clean or _fake_clean()
    sizes = [int(s) for s in args.sizes.split(",")]
    kinds = [k for k in args.kinds.split(",") if k]
    scales = tuple(float(v) for v in args.scales.split(",")) if args.scales else None
    configs = [(p, None) for p in args.presets.split(",") if p] + ([(p, scales) for p in args.presets.split(",") if p] if scales else [])
    rows = []
    for preset, sc in configs:
        reg = Registry.preset(preset)
        label = preset + (f" scales {sc[0]:g}-{sc[1]:g}" if sc else "")
        for size in sizes:
            for kind in [k for k in kinds if k in reg]:
                ds = SyntheticPairs(clean, kinds=(kind,), crop=size, seed=0, length=10**6, full_check=False, registry=reg, scales=sc)
                crop = ds[0]["target"].numpy().transpose(1, 2, 0).copy()
                deg = _rate(lambda i: reg.synthesize(crop, kind, seed=i), args.items, args.repeats)
                item = _rate(lambda i: ds[i], args.items, args.repeats)
                rows.append({"preset": label, "size": size, "kind": kind, "degrade_pairs_per_s": round(deg, 1),
                             "item_pairs_per_s": round(item, 1), "item_ms": round(1000.0 / item, 1)})
                print(f"{label:14s} {size:4d}px {kind:15s} degrade {deg:8.1f}/s   item {item:8.1f}/s ({1000 / item:6.1f} ms)", flush=True)

    loader_rows = []
    from torch.utils.data import DataLoader

    for size in [] if args.no_loader else sizes:
        ds = SyntheticPairs(clean, kinds=("haze", "rain", "blur"), crop=size, seed=0, length=30000, full_check=False)
        n_batches = max(args.items * 2 // args.batch, 4)
        sampler = KindGroupedBatchSampler(ds.item_kinds(), args.batch, ds.kinds, seed=0, num_batches=n_batches * args.repeats + 2)
        dl = DataLoader(ds, batch_sampler=sampler, collate_fn=collate_pairs, num_workers=args.workers,
                        worker_init_fn=seed_worker, persistent_workers=False, prefetch_factor=4 if args.workers else None)
        it = iter(dl)
        next(it), next(it)  # start the workers before timing
        rates = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            for _ in range(n_batches):
                next(it)
            rates.append(n_batches * args.batch / (time.perf_counter() - t))
        del it
        rate = statistics.median(rates)
        loader_rows.append({"size": size, "kinds": "haze,rain,blur", "workers": args.workers, "batch": args.batch,
                            "pairs_per_s": round(rate, 1)})
        print(f"{size:4d}px DataLoader({args.workers} workers, batch {args.batch}, haze/rain/blur): {rate:.1f} pairs/s", flush=True)

    result = {"machine": machine(), "clean": str(args.clean or "generated"), "items": args.items,
              "repeats": args.repeats, "per_kind": rows, "loader": loader_rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "synth.json").write_text(json.dumps(result, indent=1))
    m = result["machine"]
    md = [f"# Synthetic pair throughput\n",
          # sysinfo.machine() names usable cores "cores" and does not report scipy.
          f"Machine: {m['cpu']}, {m['cores']} usable cores, load {m['load_average']}; torch {m['torch']}, numpy {m['numpy']}.",
          f"Photos: {result['clean']}. Median of {args.repeats} runs of {args.items} items, one core per measurement.\n",
          "| preset | size | kind | degrade only (pairs/s) | dataset item (pairs/s) | item ms |", "|---|---:|---|---:|---:|---:|"]
    md += [f"| {r['preset']} | {r['size']} | {r['kind']} | {r['degrade_pairs_per_s']} | {r['item_pairs_per_s']} | {r['item_ms']} |"
           for r in rows]
    md += ["", "| size | kinds | workers | batch | DataLoader pairs/s |", "|---:|---|---:|---:|---:|"]
    md += [f"| {r['size']} | {r['kinds']} | {r['workers']} | {r['batch']} | {r['pairs_per_s']} |" for r in loader_rows]
    (args.out / "synth.md").write_text("\n".join(md) + "\n")
    print(f"wrote {args.out / 'synth.json'} and {args.out / 'synth.md'}")


if __name__ == "__main__":
    main()
