"""Paired differences of no-reference scores between two models on the same real photos.

Reads the per-image CSV of `uniremoval eval --real` (method, image, kind, niqe, brisque, piqe)
and prints, per kind and over all photos, model B minus model A for each score: the mean, a 95 %
bootstrap interval over photos and how many photos B scores better (lower) on. The real split is
small (3 rainy photos), so the interval and the count matter more than the mean.

    python benchmarks/real_nr_diff.py EVAL/real_per_image.csv --a default --b adapt7
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic_eval import bootstrap  # noqa: E402

SCORES = ("niqe", "brisque", "piqe")


def nr_differences(rows: list[dict[str, str]], a: str, b: str, boot: int = 2000, seed: int = 0) -> list[dict[str, object]]:
    """One row per (kind, score) plus the kinds together ("all"): B - A mean, 95 % interval, photos
    B is better on, photos. Photos either model failed on are left out."""
    scores: dict[str, dict[str, dict[str, float]]] = {a: {}, b: {}}
    kinds: dict[str, str] = {}
    for r in rows:
        if r["method"] in scores and not r.get("error"):
            scores[r["method"]][r["image"]] = {s: float(r[s]) for s in SCORES}
            kinds[r["image"]] = r["kind"]
    images = sorted(set(scores[a]) & set(scores[b]))
    if not images:
        raise ValueError(f"no photo scored by both {a!r} and {b!r}")
    rng = np.random.default_rng(seed)
    out: list[dict[str, object]] = []
    for kind in sorted({kinds[i] for i in images}) + ["all"]:
        sel = [i for i in images if kind == "all" or kinds[i] == kind]
        for s in SCORES:
            diff = np.array([scores[b][i][s] - scores[a][i][s] for i in sel])
            lo, hi = bootstrap(diff, sel, boot, rng)
            out.append({"kind": kind, "score": s, "mean": float(diff.mean()), "lo": lo, "hi": hi,
                        "better": int((diff < 0).sum()), "photos": len(sel)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", type=Path, help="real_per_image.csv of `uniremoval eval --real`")
    ap.add_argument("--a", required=True, help="method label of the reference model")
    ap.add_argument("--b", required=True, help="method label of the model compared to it")
    ap.add_argument("--boot", type=int, default=2000)
    args = ap.parse_args()
    try:
        with args.csv.open(newline="") as f:
            rows = list(csv.DictReader(f))
        table = nr_differences(rows, args.a, args.b, args.boot)
    except (OSError, KeyError, ValueError) as e:
        sys.exit(f"error: {args.csv}: {e}")
    print(f"# {args.b} minus {args.a}, held-out real photos (lower is better; 95 % bootstrap over photos)\n")
    print("| kind | score | mean | 95 % interval | better on |")
    print("|---|---|---|---|---|")
    for r in table:
        print(f"| {r['kind']} | {r['score']} | {r['mean']:+.2f} | {r['lo']:+.2f} .. {r['hi']:+.2f} | {r['better']}/{r['photos']} |")


if __name__ == "__main__":
    main()
