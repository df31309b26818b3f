"""What a model does to the flat regions of real photos: texture it adds to a smooth sky.

A dehazer stretches contrast by 1/t; where the input holds no scene detail (a flat hazy sky)
the only texture to stretch is noise, JPEG blocks and 8-bit banding, and a model that
stretches it paints blotches. For every held-out photo of ``--kind`` (the real-photo split
stage 2 evaluates on; ``--side train``: the split's other side, for choosing) this measures, on luminance, the band-pass energy (difference of
Gaussians, sigma 1 and 8 px: from pixel noise to 8x8 blocks and blotches) in

- flat regions: where the input's coarse gradient (Gaussian sigma 4, then averaged over
  sigma 4) is below ``--flat-threshold`` (luminance per px) and its local band-pass energy
  (RMS over sigma 8) below 0.01, at least 8 px from any other region;
- detailed regions: the top half of the same gradient;

and reports the output/input ratio of each (amplification), per photo and as medians with a
bootstrap 95 % interval over photos. A model that restores contrast raises both; blotches
raise the flat one far above the detail one. Photos are downscaled to ``--max-side`` first,
as the visual panel does. A proxy, not a verdict: look at the panel too.

    python benchmarks/flat_regions.py --real ../shared/data/real --model r6=release6 \\
        --model new=path/to/model.json --out benchmarks/results/flat_regions
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

from uniremoval.data.io import read_image
from uniremoval.evaluate import load_method
from uniremoval.modelfile import ModelError
from uniremoval.stages.realsplit import plan_split

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_panel import shrink  # noqa: E402

LUMA = np.asarray([0.2126, 0.7152, 0.0722], dtype=np.float32)


def band(luma: np.ndarray) -> np.ndarray:
    """Band-pass of a luminance map: Gaussian sigma 1 minus Gaussian sigma 8."""
    return ndimage.gaussian_filter(luma, 1.0) - ndimage.gaussian_filter(luma, 8.0)


def regions(luma: np.ndarray, banded: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(flat, detailed) boolean masks of an input's luminance, given its `band` (module docstring)."""
    g = ndimage.gaussian_filter(luma, 4.0)
    grad = ndimage.gaussian_filter(np.hypot(ndimage.sobel(g, 0), ndimage.sobel(g, 1)) / 8.0, 4.0)
    energy = np.sqrt(ndimage.gaussian_filter(banded ** 2, 8.0))
    flat = (grad <= threshold) & (energy <= 0.01)
    flat = ndimage.binary_erosion(flat, iterations=8)  # away from edges: their halos are not blotches
    return flat, grad >= float(np.median(grad))


def amplification(x: np.ndarray, y: np.ndarray, threshold: float = 0.002) -> dict[str, float] | None:
    """Band-pass std of ``y`` over that of ``x`` in x's flat and detailed regions (None when
    the photo has under 2 % flat area)."""
    lx, ly = x @ LUMA, y @ LUMA
    bx = band(lx)
    flat, detail = regions(lx, bx, threshold)
    if flat.mean() < 0.02:
        return None
    by = band(ly)
    eps = 1e-4
    return {"flat_area": float(flat.mean()),
            "flat": float((by[flat].std() + eps) / (bx[flat].std() + eps)),
            "detail": float((by[detail].std() + eps) / (bx[detail].std() + eps))}


def median_ci(values: list[float], seed: int = 0, n: int = 2000) -> tuple[float, float, float]:
    """Median and bootstrap 95 % interval over photos."""
    v = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    boots = np.median(v[rng.integers(0, len(v), (n, len(v)))], axis=1)
    return float(np.median(v)), float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--real", type=Path, required=True, help="Folder with hazy/, rain/, blur/ real photos.")
    ap.add_argument("--model", action="append", required=True, help="LABEL=model name/path (repeatable)")
    ap.add_argument("--kind", default="hazy", help="Kind folder of the real photos.")
    ap.add_argument("--out", type=Path, required=True, help="Folder for flat_regions_TAG.json/.md")
    ap.add_argument("--tag", default="")
    ap.add_argument("--max-side", type=int, default=1024)
    ap.add_argument("--flat-threshold", type=float, default=0.002, help="Coarse gradient below which a region is flat.")
    ap.add_argument("--holdout", type=float, default=0.25)
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--side", choices=("heldout", "train"), default="heldout",
                    help="Which side of the split: train is for choosing between models without touching the held-out photos.")
    a = ap.parse_args()
    specs = [m.split("=", 1) if "=" in m else [Path(m).stem, m] for m in a.model]
    methods = {label: load_method(spec, device="cpu") for label, spec in specs}
    real = a.real.expanduser()
    plan = plan_split(real, a.holdout, a.split_seed)
    files = sorted(real / f["path"] for f in plan["files"] if f["group"] == a.kind and f["side"] == a.side)
    if not files:
        raise ValueError(f"{real}: no {a.side} photos in {a.kind}/")
    per_photo: dict[str, dict[str, dict[str, float]]] = {}
    for path in files:
        x = shrink(read_image(path), a.max_side)
        for label, m in methods.items():
            amp = amplification(x, np.clip(np.asarray(m.restore(x), dtype=np.float32), 0, 1), a.flat_threshold)
            if amp is not None:
                per_photo.setdefault(path.name, {})[label] = amp
        print(path.name, {k: round(v["flat"], 2) for k, v in per_photo.get(path.name, {}).items()}, file=sys.stderr)
    summary = {}
    for label in methods:
        rows = [p[label] for p in per_photo.values() if label in p]
        summary[label] = {key: median_ci([r[key] for r in rows]) for key in ("flat", "detail")} | {"photos": len(rows)}
    tag = f"_{a.tag}" if a.tag else ""
    a.out.mkdir(parents=True, exist_ok=True)
    result = {"kind": a.kind, "side": a.side, "max_side": a.max_side, "flat_threshold": a.flat_threshold,
              "models": {label: spec for label, spec in specs}, "summary": summary, "per_photo": per_photo}
    (a.out / f"flat_regions{tag}.json").write_text(json.dumps(result, indent=1, sort_keys=True))
    side = "held-out" if a.side == "heldout" else "training-split"
    lines = [f"# Band-pass amplification in flat vs detailed regions, {side} real {a.kind} photos",
             "", f"Output/input band-pass std (DoG sigma 1-8 px, luminance), photos at <= {a.max_side} px; "
             "median over photos [bootstrap 95 %]. 1 = unchanged; flat >> detail = texture painted into smooth areas.",
             "", "| model | photos | flat regions | detailed regions |", "|---|---|---|---|"]
    for label, s in summary.items():
        f, d = s["flat"], s["detail"]
        lines.append(f"| {label} | {s['photos']} | {f[0]:.2f} [{f[1]:.2f}, {f[2]:.2f}] | {d[0]:.2f} [{d[1]:.2f}, {d[2]:.2f}] |")
    (a.out / f"flat_regions{tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    try:
        main()
    except (ValueError, KeyError, OSError, ModelError) as e:
        sys.exit(f"flat_regions: error: {e}")
