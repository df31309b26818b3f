"""benchmarks/flat_regions.py: texture added to flat regions, on tiny generated photos."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from flat_regions import amplification  # noqa: E402


def _sky_over_ground(seed: int, h: int = 128, w: int = 128) -> np.ndarray:
    """A smooth bright sky (top half) over a textured ground, with a little noise."""
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 0.8, np.float32)
    img[h // 2:] = rng.uniform(0.1, 0.6, (h - h // 2, w, 1)).repeat(3, 2)
    return np.clip(img + rng.normal(0, 0.01, img.shape), 0, 1).astype(np.float32)


def test_amplification_sees_noise_boosted_in_the_sky_only() -> None:
    x = _sky_over_ground(0)
    same = amplification(x, x)
    assert same is not None and same["flat"] == pytest.approx(1.0) and same["detail"] == pytest.approx(1.0)
    sky = x.copy()
    mean = x[:64].mean()
    sky[:64] = mean + 4.0 * (x[:64] - mean)  # blotches: the sky's noise stretched 4x
    amp = amplification(x, sky)
    assert amp is not None and amp["flat"] > 3.0 and amp["detail"] < 1.5
    # A photo with no flat area is skipped, not scored.
    busy = np.random.default_rng(1).random((64, 64, 3)).astype(np.float32)
    assert amplification(busy, busy) is None


def test_flat_regions_end_to_end(tmp_path: Path, identity_model: Path) -> None:
    real = tmp_path / "real"
    for sub in ("hazy", "rain", "blur"):
        for i in range(4):
            (real / sub).mkdir(parents=True, exist_ok=True)
            Image.fromarray((_sky_over_ground(i) * 255 + 0.5).astype(np.uint8)).save(real / sub / f"{i}.png")
    cmd = [sys.executable, str(ROOT / "benchmarks" / "flat_regions.py"), "--real", str(real), "--model",
           f"id={identity_model}", "--out", str(tmp_path / "out"), "--holdout", "0.5", "--tag", "t"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((tmp_path / "out" / "flat_regions_t.json").read_text())
    s = res["summary"]["id"]
    assert s["photos"] >= 1 and s["flat"][0] == pytest.approx(1.0, abs=0.02)
    assert "| id |" in (tmp_path / "out" / "flat_regions_t.md").read_text()
