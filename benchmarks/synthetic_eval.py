"""A larger synthetic evaluation than the pipeline's report, with confidence intervals.

The pipeline report scores 8 pairs per kind, one crop from each of 8 photos. On so few pairs a
kind's mean moves by tenths of a dB with the draw (two light-haze photos decide the haze row),
so this script makes ``--count`` pairs per kind from the same clean photos with another seed
(several crops and degradations per photo), scores input, the dark-channel prior, the teachers
(each on its own kind) and the given models, and reports per kind the mean PSNR and SSIM and a
seeded bootstrap 95 % interval (resampling photos) of each model's paired difference to the
teachers, (haze) to DCP and to ``--baseline`` (PSNR and, against the baseline, SSIM: a model
that gains PSNR by painting texture or leaving artefacts shows it in SSIM).

    python benchmarks/synthetic_eval.py --val-dir ../shared/data/clean/val \\
        --teachers haze=T.json,rain=T.json,blur=T.json --model default --tag default --out benchmarks/results
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from uniremoval.data import SyntheticPairs
from uniremoval.evaluate import Item, evaluate_set, load_method, per_kind_method
from uniremoval.modelfile import ModelError, read_config
from uniremoval.stages.pipeline import write_pairs
from uniremoval.stages.transfer import parse_teachers

KINDS = ("haze", "rain", "blur")


def make_items(val_dir: Path, count: int, crop: int, seed: int, dest: Path, preset: str = "r6",
               kinds: tuple[str, ...] = KINDS) -> tuple[list[Item], dict[str, str]]:
    """``count`` pairs per kind (each a seeded photo, crop and degradation), as PNGs; and the
    clean photo of every pair. ``preset`` names the synthesis ranges: ``r6`` (the default)
    keeps the pairs release 6 was measured on, whatever the current default synthesis is.
    Each kind's pairs depend only on the seed, so a subset of ``kinds`` gives the same pairs."""
    from uniremoval.degrade import Registry

    registry = Registry.preset(preset)
    sets = {}
    for k in kinds:
        ds = SyntheticPairs(val_dir, kinds=[k], crop=crop, seed=seed, hflip=False, length=count, registry=registry)
        sets[k] = [ds[i] for i in range(count)]
    items = write_pairs(sets, dest)
    # write_pairs keeps the sets' order; SyntheticPairs names an item PHOTO_INDEX.
    pairs = [p for k in kinds for p in sets[k]]
    return items, {it.name: p["name"].rsplit("_", 1)[0] for it, p in zip(items, pairs)}


def bootstrap(diff: np.ndarray, groups: list[str], n: int, rng: np.random.Generator) -> tuple[float, float]:
    """95 % percentile interval of the mean of ``diff`` (paired per image), resampling whole
    photos: pairs cut from one photo are not independent, so resampling pairs would be too sure."""
    keys = sorted(set(groups))
    by = [np.flatnonzero(np.asarray(groups) == k) for k in keys]
    means = np.empty(n)
    for b in range(n):
        idx = np.concatenate([by[j] for j in rng.integers(0, len(by), len(by))])
        means[b] = diff[idx].mean()
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--val-dir", type=Path, required=True)
    ap.add_argument("--teachers", default=None, help="haze=PATH,rain=PATH,blur=PATH (optional: a teachers row and differences to it)")
    ap.add_argument("--baseline", default=None, help="LABEL of a --model row the other models are compared to (e.g. the previous release)")
    ap.add_argument("--preset", default="r6", help="synthesis ranges of the pairs (r6: the fixed pairs release 6 was measured on; r7: the current default)")
    ap.add_argument("--model", action="append", default=[], help="model name/path, or LABEL=PATH, or LABEL=PATH@SCALE "
                    "(a working scale as 'restore --scale', e.g. default@pyramid) (repeat)")
    ap.add_argument("--kinds", default=",".join(KINDS), help="comma-separated subset of haze,rain,blur (e.g. a teacher's own kind)")
    ap.add_argument("--count", type=int, default=48)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--boot", type=int, default=2000)
    ap.add_argument("--tag", default="default")
    ap.add_argument("--out", type=Path, default=Path("bench_out"))
    a = ap.parse_args()
    # LABEL=PATH names a row; a bare name/path is its own label.
    models = [m.split("=", 1) if "=" in m else [m, m] for m in (a.model or ["default"])]
    kinds = tuple(k.strip() for k in a.kinds.split(",") if k.strip())
    if not kinds or any(k not in KINDS for k in kinds):
        raise ValueError(f"--kinds {a.kinds!r}: give a comma-separated subset of {','.join(KINDS)}")
    teachers = parse_teachers(a.teachers) if a.teachers else {}
    missing = [k for k in kinds if k not in teachers]
    if teachers and missing:
        raise ValueError(f"--teachers: no teacher for {', '.join(missing)} (give haze=PATH,rain=PATH,blur=PATH)")
    if not a.val_dir.expanduser().is_dir():
        raise ValueError(f"--val-dir {a.val_dir}: not a folder")
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        items, photo = make_items(a.val_dir.expanduser(), a.count, a.crop, a.seed, root / "pairs", a.preset, kinds)
        inp = load_method("identity")
        inp.name = "input"
        methods = [inp, load_method("dcp")]
        if teachers:
            methods.append(per_kind_method("teachers", {k: load_method(p, device="cpu") for k, p in teachers.items()}))
        names = []
        shas: dict[str, str] = {}
        for label, spec in models:
            m = load_method(spec, device="cpu")
            shas[label] = m.info["weights_sha256"]
            m.name = label
            names.append(label)
            methods.append(m)
        res = evaluate_set(methods, items, "paired", root / "report", root / "pairs", grid_rows=1, log=lambda s: print(s, file=sys.stderr))
    psnr: dict[str, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    ssim: dict[str, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    for r in res.rows:
        psnr[r["method"]][r["kind"]][r["image"]] = float(r["psnr"])
        ssim[r["method"]][r["kind"]][r["image"]] = float(r["ssim"])
    rng = np.random.default_rng(0)
    out: dict = {
        "what": "PSNR (dB) and SSIM (RGB) per kind on synthetic pairs from --val-dir; 95 % intervals of paired mean differences (bootstrap over photos)",
        "val_dir": str(a.val_dir), "kinds": list(kinds), "count_per_kind": a.count, "photos": len(set(photo.values())), "crop": a.crop, "seed": a.seed, "preset": a.preset, "bootstrap": a.boot,
        "teachers": {k: read_config(p)[0].sha256 for k, p in teachers.items()},
        "models": {label: {"path": spec, "sha256": shas[label]} for label, spec in models},
        "machine": platform.platform(), "seconds": round(time.time() - t0, 1),
        "means": {m: {k: float(np.mean(list(v.values()))) for k, v in by.items()} for m, by in psnr.items()},
        "ssim_means": {m: {k: float(np.mean(list(v.values()))) for k, v in by.items()} for m, by in ssim.items()},
        "differences": {},
        "ssim_differences": {},
    }
    for n in names:
        d: dict = {}
        for k in kinds:
            imgs = sorted(psnr[n][k])
            refs = (["teachers"] if teachers else []) + (["dcp"] if k == "haze" else []) + ([a.baseline] if a.baseline and a.baseline != n else [])
            for ref in refs or ["input"]:
                diff = np.array([psnr[n][k][i] - psnr[ref][k][i] for i in imgs])
                lo, hi = bootstrap(diff, [photo[i] for i in imgs], a.boot, rng)
                d[f"{k}-{ref}"] = {"mean": float(diff.mean()), "ci95": [lo, hi], "wins": int((diff > 0).sum()), "n": len(diff)}
            if a.baseline and a.baseline != n:  # SSIM (artefacts, structure) against the baseline
                sd = np.array([ssim[n][k][i] - ssim[a.baseline][k][i] for i in imgs])
                lo, hi = bootstrap(sd, [photo[i] for i in imgs], a.boot, rng)
                out["ssim_differences"].setdefault(n, {})[f"{k}-{a.baseline}"] = {"mean": float(sd.mean()), "ci95": [lo, hi], "wins": int((sd > 0).sum()), "n": len(sd)}
        out["differences"][n] = d
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / f"synthetic_eval_{a.tag}.json").write_text(json.dumps(out, indent=1))
    lines = [f"# Synthetic evaluation ({a.count} pairs per kind, crop {a.crop}, seed {a.seed}, preset {a.preset}, `{a.val_dir}`)\n",
             "| method | " + " | ".join(kinds) + " |", "|---|" + "---|" * len(kinds)]
    for m, by in out["means"].items():
        lines.append(f"| {m} | " + " | ".join(f"{by.get(k, float('nan')):.2f}" for k in kinds) + " |")
    lines += ["", "| method | " + " | ".join(f"SSIM {k}" for k in kinds) + " |", "|---|" + "---|" * len(kinds)]
    for m, by in out["ssim_means"].items():
        lines.append(f"| {m} | " + " | ".join(f"{by.get(k, float('nan')):.4f}" for k in kinds) + " |")
    lines += ["", "| model | difference | mean dB | 95 % interval | better on |", "|---|---|---|---|---|"]
    for n, d in out["differences"].items():
        for key, v in d.items():
            lines.append(f"| {n} | {key} | {v['mean']:+.2f} | {v['ci95'][0]:+.2f} .. {v['ci95'][1]:+.2f} | {v['wins']}/{v['n']} |")
    if out["ssim_differences"]:
        lines += ["", "| model | SSIM difference | mean | 95 % interval | better on |", "|---|---|---|---|---|"]
        for n, d in out["ssim_differences"].items():
            for key, v in d.items():
                lines.append(f"| {n} | {key} | {v['mean']:+.4f} | {v['ci95'][0]:+.4f} .. {v['ci95'][1]:+.4f} | {v['wins']}/{v['n']} |")
    (a.out / f"synthetic_eval_{a.tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    try:
        main()
    except (ValueError, KeyError, ModelError) as e:
        sys.exit(f"synthetic_eval: error: {e}")
