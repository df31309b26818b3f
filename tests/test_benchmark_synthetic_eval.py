"""benchmarks/synthetic_eval.py end to end on tiny photos (no ../shared): rows, pairing, intervals."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def test_synthetic_eval_pairs_models_with_teachers(tmp_path: Path, identity_model: Path, random_model: Path) -> None:
    clean = tmp_path / "clean"
    clean.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        yy, xx = np.mgrid[0:96, 0:96] / 96.0
        img = np.stack([yy, xx, 0.5 + 0.3 * np.sin(6 * xx + i)], -1) + rng.normal(0, 0.02, (96, 96, 3))
        Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(clean / f"p{i}.png")
    t = str(identity_model)
    cmd = [sys.executable, str(ROOT / "benchmarks" / "synthetic_eval.py"), "--val-dir", str(clean),
           "--teachers", f"haze={t},rain={t},blur={t}", "--model", f"same={t}", "--model", f"other={random_model}",
           "--count", "4", "--crop", "32", "--boot", "50", "--tag", "t", "--out", str(tmp_path / "out")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads((tmp_path / "out" / "synthetic_eval_t.json").read_text())
    assert out["count_per_kind"] == 4 and 1 <= out["photos"] <= 3
    means = out["means"]
    # The identity "teachers" and the identity model are the input, pair for pair.
    for k in ("haze", "rain", "blur"):
        assert means["same"][k] == means["teachers"][k] == means["input"][k]
        d = out["differences"]["same"][f"{k}-teachers"]
        assert d["mean"] == 0.0 and d["ci95"] == [0.0, 0.0] and d["n"] == 4
    assert any(out["differences"]["other"][f"{k}-teachers"]["mean"] != 0.0 for k in ("haze", "rain", "blur"))
    assert "haze-dcp" in out["differences"]["same"] and "rain-dcp" not in out["differences"]["same"]
    assert (tmp_path / "out" / "synthetic_eval_t.md").read_text().startswith("# Synthetic evaluation (4 pairs per kind")


def test_synthetic_eval_bad_input_is_one_line(tmp_path: Path, identity_model: Path) -> None:
    cmd = [sys.executable, str(ROOT / "benchmarks" / "synthetic_eval.py"), "--val-dir", str(tmp_path / "nope"),
           "--teachers", f"haze={identity_model}"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and r.stderr.strip().count("\n") == 0 and "no teacher for rain, blur" in r.stderr


def _noise_photos(folder: Path, seed: int) -> Path:
    """Three 48 px random-noise photos: a tiny --val-dir."""
    folder.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(3):
        Image.fromarray((rng.random((48, 48, 3)) * 255).astype(np.uint8)).save(folder / f"p{i}.png")
    return folder


def test_synthetic_eval_without_teachers_compares_to_a_baseline_on_fixed_r6_pairs(
    tmp_path: Path, identity_model: Path, random_model: Path
) -> None:
    """Teachers are optional (they may be gone); --baseline compares models to a release,
    and the pairs stay release 6's (preset r6) whatever the default synthesis becomes."""
    clean = _noise_photos(tmp_path / "clean", 1)
    base = [sys.executable, str(ROOT / "benchmarks" / "synthetic_eval.py"), "--val-dir", str(clean),
            "--model", f"old={identity_model}", "--model", f"new={random_model}", "--baseline", "old",
            "--count", "3", "--crop", "32", "--boot", "20", "--out", str(tmp_path / "out")]
    means = {}
    for preset in ("r6", "r7"):
        r = subprocess.run(base + ["--tag", preset, "--preset", preset], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        out = json.loads((tmp_path / "out" / f"synthetic_eval_{preset}.json").read_text())
        assert out["preset"] == preset and "teachers" not in out["means"]
        assert set(out["differences"]["new"]) == {"haze-dcp", "haze-old", "rain-old", "blur-old"}
        assert set(out["differences"]["old"]) == {"haze-dcp", "rain-input", "blur-input"}  # nothing else to compare to
        # SSIM (artefacts) beside PSNR: means for every row, differences to the baseline
        assert all(0.0 < out["ssim_means"][m][k] <= 1.0 for m in ("input", "old", "new") for k in ("haze", "rain", "blur"))
        assert out["ssim_means"]["old"] == out["ssim_means"]["input"]  # the identity model
        assert set(out["ssim_differences"]) == {"new"} and set(out["ssim_differences"]["new"]) == {"haze-old", "rain-old", "blur-old"}
        means[preset] = out["means"]["input"]
    assert means["r6"] != means["r7"]


def test_synthetic_eval_kinds_subset_scores_the_same_pairs(tmp_path: Path, random_model: Path) -> None:
    """A teacher is scored on its own kind alone (--kinds rain), on exactly the pairs the full
    evaluation gives that kind; an unknown kind is a one-line error."""
    clean = _noise_photos(tmp_path / "clean", 2)
    base = [sys.executable, str(ROOT / "benchmarks" / "synthetic_eval.py"), "--val-dir", str(clean),
            "--model", f"m={random_model}", "--count", "3", "--crop", "32", "--boot", "20", "--out", str(tmp_path / "out")]
    outs = {}
    for tag, extra in (("all", []), ("rain", ["--kinds", "rain"])):
        r = subprocess.run(base + ["--tag", tag] + extra, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        outs[tag] = json.loads((tmp_path / "out" / f"synthetic_eval_{tag}.json").read_text())
    assert outs["rain"]["kinds"] == ["rain"] and set(outs["rain"]["means"]["m"]) == {"rain"}
    assert outs["rain"]["means"]["m"]["rain"] == outs["all"]["means"]["m"]["rain"]
    assert set(outs["rain"]["differences"]["m"]) == {"rain-input"}
    r = subprocess.run(base + ["--kinds", "snow"], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and r.stderr.strip().count("\n") == 0 and "--kinds 'snow'" in r.stderr
