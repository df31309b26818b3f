"""Evaluate models on other people's degradations (external validation), per image.

Our synthetic scores measure how well a model undoes our own generator. This script scores
it on pairs made by other groups' generators (``external_val/rain_fu``: Fu et al.'s rain;
``external_val/haze_sots_indoor``: RESIDE SOTS indoor, depth-based haze), which no training
recipe may use: VALIDATION ONLY, never for training, and never the only ground for choosing a
model or a recipe (the sets are small: 40 and 5 pairs).

For every set (a folder with ``input/`` and ``target/``; the kind is guessed from its name)
it scores the input itself (identity), the dark-channel prior on haze sets, and each
``--model``; per image PSNR and SSIM (RGB, as ``uniremoval eval``), the mean per method with
a seeded bootstrap 95 % interval over images, and each model's paired difference to the input
(and to DCP on haze) with its interval. The set size is in every table.

    python benchmarks/external_val.py --data ../shared/data/external_val \\
        --model default --model new=runs/r7/model.json --tag r7 --out benchmarks/results
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic_eval import bootstrap  # noqa: E402  (one bootstrap for every benchmark)

from uniremoval.evaluate import Item, evaluate_set, load_method, paired_items  # noqa: E402
from uniremoval.modelfile import ModelError  # noqa: E402

METRICS = ("psnr", "ssim")


def set_kind(name: str) -> str:
    """The degradation kind of a set from its folder name."""
    low = name.lower()
    for kind, words in (("haze", ("haze", "hazy", "fog", "sots", "reside")), ("rain", ("rain",)), ("blur", ("blur", "gopro"))):
        if any(w in low for w in words):
            return kind
    return "unknown"


def find_sets(root: Path, only: list[str] | None) -> dict[str, list[Item]]:
    """Sets under ``root`` (each sub-folder with input/ + target/, or root itself): name -> items."""
    dirs = [d for d in sorted(root.iterdir()) if d.is_dir() and (d / "input").is_dir()] if root.is_dir() else []
    if not dirs and (root / "input").is_dir():
        dirs = [root]
    if only:
        missing = sorted(set(only) - {d.name for d in dirs})
        if missing:
            raise ValueError(f"--sets: no set {', '.join(missing)} under {root}")
        dirs = [d for d in dirs if d.name in only]
    if not dirs:
        raise ValueError(f"--data {root}: no set (a folder with input/ and target/)")
    sets = {}
    for d in dirs:
        kind = set_kind(d.name)
        items = [Item(it.name, kind, it.input, it.target) for it in paired_items(d, "input_target")]
        if not items:
            raise ValueError(f"{d}: no input/target pairs")
        sets[d.name] = items
    return sets


def _interval(vals: np.ndarray, names: list[str], n: int, rng: np.random.Generator) -> dict[str, object]:
    lo, hi = bootstrap(vals, names, n, rng)
    return {"mean": float(vals.mean()), "ci95": [lo, hi]}


def score_set(name: str, items: list[Item], models: list[tuple[str, str]], out: Path, boot: int,
              rng: np.random.Generator, device: str = "cpu") -> dict[str, object]:
    """Evaluate one set; per-image values, means with intervals and paired differences."""
    kind = items[0].kind
    inp = load_method("identity")
    inp.name = "input"
    methods = [inp] + ([load_method("dcp")] if kind == "haze" else [])
    for label, spec in models:
        m = load_method(spec, device=device)
        m.name = label
        methods.append(m)
    res = evaluate_set(methods, items, "paired", out / name, items[0].input.parents[1], grid_rows=2,
                       log=lambda s: print(s, file=sys.stderr))
    per: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
    for r in res.rows:
        per[r["method"]][r["image"]] = {k: float(r[k]) for k in METRICS}
    images = sorted(per["input"])
    summary: dict[str, object] = {"kind": kind, "n": len(images), "per_image": per, "means": {}, "differences": {}}
    for m in per:
        summary["means"][m] = {k: _interval(np.array([per[m][i][k] for i in images]), images, boot, rng) for k in METRICS}
    for label, _ in models:
        d = {}
        for ref in ["input"] + (["dcp"] if kind == "haze" else []):
            diff = np.array([per[label][i]["psnr"] - per[ref][i]["psnr"] for i in images])
            d[f"psnr-{ref}"] = {**_interval(diff, images, boot, rng), "wins": int((diff > 0).sum()), "n": len(diff)}
        summary["differences"][label] = d
    return summary


def markdown(result: dict[str, object]) -> str:
    """The report: per set, means with intervals, differences, then every image."""
    lines = [f"# External validation ({result['data']})\n",
             "Other groups' generators; validation only. Mean over images, [bootstrap 95 % interval over images].\n"]
    for name, s in result["sets"].items():  # type: ignore[union-attr]
        lines += [f"## {name} ({s['kind']}, n = {s['n']} pairs)\n", "| method | PSNR (dB) | SSIM |", "|---|---|---|"]
        for m, v in s["means"].items():
            p, q = v["psnr"], v["ssim"]
            lines.append(f"| {m} | {p['mean']:.2f} [{p['ci95'][0]:.2f}, {p['ci95'][1]:.2f}] "
                         f"| {q['mean']:.4f} [{q['ci95'][0]:.4f}, {q['ci95'][1]:.4f}] |")
        if s["differences"]:
            lines += ["", "| model | difference | mean dB | 95 % interval | better on |", "|---|---|---|---|---|"]
            for m, d in s["differences"].items():
                for key, v in d.items():
                    lines.append(f"| {m} | {key} | {v['mean']:+.2f} | {v['ci95'][0]:+.2f} .. {v['ci95'][1]:+.2f} | {v['wins']}/{v['n']} |")
        methods = list(s["per_image"])
        lines += ["", "| image | " + " | ".join(f"{m} PSNR" for m in methods) + " |", "|---|" + "---|" * len(methods)]
        for img in sorted(s["per_image"]["input"]):
            lines.append(f"| {img} | " + " | ".join(f"{s['per_image'][m][img]['psnr']:.2f}" for m in methods) + " |")
        lines.append("")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="Folder of sets (each with input/ and target/).")
    ap.add_argument("--model", action="append", default=[], help="model name/path, or LABEL=PATH (repeat)")
    ap.add_argument("--sets", default="", help="Comma-separated set names (default: all).")
    ap.add_argument("--boot", type=int, default=2000)
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (for the models).")
    ap.add_argument("--tag", default="default")
    ap.add_argument("--out", type=Path, default=Path("bench_out"))
    a = ap.parse_args()
    models = [tuple(m.split("=", 1)) if "=" in m else (m, m) for m in (a.model or ["default"])]
    sets = find_sets(a.data.expanduser(), [s for s in a.sets.split(",") if s] or None)
    rng = np.random.default_rng(0)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        scored = {name: score_set(name, items, models, Path(tmp), a.boot, rng, a.device) for name, items in sets.items()}
    result = {"what": "PSNR/SSIM per image on other groups' pairs (validation only); mean and bootstrap 95 % "
                      "interval over images; paired PSNR differences of each model to the input (and DCP on haze)",
              "data": str(a.data), "models": dict(models), "bootstrap": a.boot, "seconds": round(time.time() - t0, 1),
              "sets": scored}
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / f"external_val_{a.tag}.json").write_text(json.dumps(result, indent=1))
    md = markdown(result)
    (a.out / f"external_val_{a.tag}.md").write_text(md)
    print(md)


if __name__ == "__main__":
    try:
        main()
    except (ValueError, KeyError, OSError, ModelError) as e:
        sys.exit(f"external_val: error: {e}")
