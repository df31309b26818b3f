"""Measure the real degraded photos, to set the synthesis ranges from data (docs/data.md).

- rain (``real/rain``): bright thin structures found by a white top-hat on luma, kept when
  elongated (major/minor axis >= 3, area >= 12 px); per streak: length and width (4 sigma
  of the pixel cloud along/across its main axis), angle from vertical, contrast (top-hat
  value) and the local background luma under it; per photo: streak coverage (fraction of
  pixels in a streak). Lengths are also given relative to the photo height, so they scale
  to any resolution.
- haze (``real/hazy``): dark channel prior (He et al. 2009, ``uniremoval.baselines``):
  airlight colour A (and its chroma A / mean(A)), the transmission t = 1 - 0.95 dark(I / A)
  at its 1st/5th/50th percentile, and the fraction of near-white pixels (bright sky).
- blur (``real/blur``): photo sizes only (kernel sizes come from the papers cited in
  docs/data.md).

With ``--clean DIR --presets r6,r7`` the haze statistics are also measured on synthetic hazy
versions (two seeds) of 20 photos spread over DIR, and on the clean photos themselves, so the
synthetic haze is compared with the real one through the same estimator.

    python benchmarks/real_stats.py --real ../shared/data/real --out bench_out/
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import ndimage

from uniremoval.baselines import dark_channel, estimate_airlight
from uniremoval.data.io import list_images, read_image


def rain_stats(img: np.ndarray, thresh: float = 0.04) -> dict[str, object]:
    """Streak statistics of one rainy photo (float HxWx3 in [0, 1])."""
    luma = img @ np.asarray([0.299, 0.587, 0.114], dtype=np.float32)
    background = ndimage.grey_opening(luma, size=(9, 9))
    tophat = luma - background
    mask = tophat > thresh
    labels, n = ndimage.label(mask)
    streaks = []
    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        ys, xs = np.nonzero(labels[sl] == i)
        if ys.size < 12:
            continue
        cov = np.cov(np.stack([ys, xs]).astype(np.float64))
        evals, evecs = np.linalg.eigh(cov)
        major, minor = 4 * np.sqrt(max(evals[1], 1e-6)), 4 * np.sqrt(max(evals[0], 1e-6))
        if major / max(minor, 1e-6) < 3.0:
            continue
        vy, vx = evecs[:, 1]
        angle = float(np.degrees(np.arctan2(vx, vy)))
        angle = (angle + 90) % 180 - 90
        region = labels[sl] == i
        streaks.append({"length": major, "width": max(minor, 1.0), "angle": angle,
                        "contrast": float(tophat[sl][region].mean()), "background": float(background[sl][region].mean())})
    # Upper bound: every top-hat pixel, elongated or not (leaves and edges count too).
    return {"height": img.shape[0], "width": img.shape[1], "streaks": streaks, "coverage_upper": float(mask.mean())}


def haze_stats(img: np.ndarray) -> dict[str, object]:
    """Dark-channel airlight and transmission percentiles of one hazy photo."""
    dark = dark_channel(img, 15)
    a = np.maximum(estimate_airlight(img, dark), 1e-3)
    t = 1.0 - 0.95 * dark_channel(img / a, 15)
    return {"airlight": [round(float(v), 3) for v in a], "chroma": [round(float(v / a.mean()), 3) for v in a],
            "t_p1": round(float(np.percentile(t, 1)), 3), "t_p5": round(float(np.percentile(t, 5)), 3),
            "t_p50": round(float(np.percentile(t, 50)), 3),
            "bright_fraction": round(float((img.min(axis=2) > 0.9).mean()), 4)}


def _haze_summary(stats: list[dict[str, object]]) -> dict[str, object]:
    return {"photos": len(stats), "t_p50": _pct([h["t_p50"] for h in stats]), "t_p5": _pct([h["t_p5"] for h in stats]),
            "airlight_mean": _pct([float(np.mean(h["airlight"])) for h in stats]),
            "chroma_b": _pct([h["chroma"][2] for h in stats])}


def synthetic_haze(clean: Path, presets: list[str]) -> dict[str, object]:
    """`haze_stats` of synthetic haze (each preset, seeds i) on 20 clean photos, and of the
    clean photos (the estimator's floor)."""
    from uniremoval.degrade import Registry

    files = list_images(clean, True)
    imgs = [read_image(f) for f in files[:: max(len(files) // 20, 1)][:20]]
    out: dict[str, object] = {"clean": _haze_summary([haze_stats(im) for im in imgs])}
    for name in presets:
        reg = Registry.preset(name)
        out[name] = _haze_summary([haze_stats(reg.synthesize(im, "haze", seed=i)[0]) for i, im in enumerate(imgs * 2)])
    return out


def synthetic_rain(clean: Path, presets: list[str]) -> dict[str, object]:
    """`rain_stats` of synthetic rain on 20 clean photos, each degraded at a scale s
    log-uniform in [1, 4] (upsampled s x, rained on, downsampled: as training with
    ``scales=(1, 4)``) and, for r6, also at s = 1 (how it was trained)."""
    from uniremoval.degrade import Registry, resize

    files = list_images(clean, True)
    imgs = [read_image(f) for f in files[:: max(len(files) // 20, 1)][:20]]
    out: dict[str, object] = {}
    for name in presets:
        reg = Registry.preset(name)
        for scaled in (True, False) if name == "r6" else (True,):
            stats = []
            for i, im in enumerate(imgs * 2):
                s = float(np.exp(np.random.default_rng(i).uniform(0, np.log(4)))) if scaled else 1.0
                h, w = im.shape[:2]
                big = np.clip(resize(im, int(h * s), int(w * s)), 0, 1) if s > 1 else im
                rainy = reg.synthesize(big, "rain", seed=i)[0]
                stats.append(rain_stats(np.clip(resize(rainy, h, w), 0, 1) if s > 1 else rainy))
            streaks = [st for r in stats for st in r["streaks"]]
            out[name + (" scales 1-4" if scaled else " s=1")] = {
                "streaks": len(streaks), "length_rel_height": _pct([st["length"] / r["height"] for r in stats for st in r["streaks"]]),
                "width_px": _pct([st["width"] for st in streaks]), "contrast": _pct([st["contrast"] for st in streaks])}
    return out


def _pct(vals: list[float]) -> dict[str, float]:
    if not vals:
        return {}
    return {f"p{q}": round(float(np.percentile(vals, q)), 3) for q in (5, 25, 50, 75, 95, 99)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--real", type=Path, required=True, help="Folder with hazy/, rain/, blur/ subfolders.")
    ap.add_argument("--out", type=Path, default=Path("bench_out"))
    ap.add_argument("--clean", type=Path, default=None, help="Clean photos for the synthetic-haze comparison.")
    ap.add_argument("--presets", default="r6,r7", help="Degradation presets for the synthetic-haze comparison.")
    a = ap.parse_args()
    res: dict[str, object] = {"real": str(a.real)}
    rain = [rain_stats(read_image(p)) for p in list_images(a.real / "rain")]
    streaks = [s for r in rain for s in r["streaks"]]
    rel_len = [s["length"] / r["height"] for r in rain for s in r["streaks"]]
    res["rain"] = {
        "photos": len(rain), "streaks": len(streaks), "heights": [r["height"] for r in rain],
        "length_px": _pct([s["length"] for s in streaks]), "length_rel_height": _pct(rel_len),
        "width_px": _pct([s["width"] for s in streaks]), "angle_deg": _pct([s["angle"] for s in streaks]),
        "contrast": _pct([s["contrast"] for s in streaks]), "background": _pct([s["background"] for s in streaks]),
        "coverage_per_photo": [round(r["coverage_upper"], 4) for r in rain],
    }
    haze = {p.name: haze_stats(read_image(p)) for p in list_images(a.real / "hazy")}
    res["haze"] = {
        "photos": len(haze), "per_photo": haze,
        "t_p1": _pct([h["t_p1"] for h in haze.values()]), "t_p5": _pct([h["t_p5"] for h in haze.values()]),
        "airlight_mean": _pct([float(np.mean(h["airlight"])) for h in haze.values()]),
        "chroma_r": _pct([h["chroma"][0] for h in haze.values()]), "chroma_b": _pct([h["chroma"][2] for h in haze.values()]),
        "bright_fraction": _pct([h["bright_fraction"] for h in haze.values()]),
    }
    if a.clean is not None:
        res["haze_synthetic"] = synthetic_haze(a.clean, [p for p in a.presets.split(",") if p])
        res["rain_synthetic"] = synthetic_rain(a.clean, [p for p in a.presets.split(",") if p])
    blur = [read_image(p).shape[:2] for p in list_images(a.real / "blur")]
    res["blur"] = {"photos": len(blur), "sizes": sorted({f"{w}x{h}" for h, w in blur})}
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "real_stats.json").write_text(json.dumps(res, indent=1))
    print(json.dumps({k: v for k, v in res.items() if k != "haze"}, indent=1))
    print(json.dumps({k: v for k, v in res["haze"].items() if k != "per_photo"}, indent=1))
    if "haze_synthetic" in res:
        print(json.dumps({"haze_synthetic": res["haze_synthetic"], "rain_synthetic": res["rain_synthetic"]}, indent=1))


if __name__ == "__main__":
    main()
