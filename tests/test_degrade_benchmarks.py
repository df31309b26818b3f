"""benchmarks/external_val.py, scale_eval.py and real_panel.py end to end on tiny generated
data (no ../shared), with the identity model of conftest."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def _photo(path: Path, seed: int, h: int = 40, w: int = 48) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([yy, xx, 0.5 + 0.3 * np.sin(6 * xx + seed)], -1) + rng.normal(0, 0.03, (h, w, 3))
    u8 = (np.clip(img, 0, 1) * 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(u8).save(path)
    return u8


def _run(script: str, *args: object) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "benchmarks" / script), *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_external_val_per_image_intervals_and_dcp_on_haze(tmp_path: Path, identity_model: Path) -> None:
    data = tmp_path / "ext"
    for name, n in (("rain_x", 3), ("haze_y", 2)):
        (data / name / "input").mkdir(parents=True)
        for i in range(n):
            clean = _photo(data / name / "target" / f"{i}.png", i)
            Image.fromarray((clean * 0.6 + 90).astype(np.uint8)).save(data / name / "input" / f"{i}.png")
    r = _run("external_val.py", "--data", data, "--model", f"same={identity_model}", "--boot", "50", "--tag", "t", "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads((tmp_path / "o" / "external_val_t.json").read_text())
    rain, haze = out["sets"]["rain_x"], out["sets"]["haze_y"]
    assert (rain["kind"], rain["n"], haze["kind"], haze["n"]) == ("rain", 3, "haze", 2)
    assert set(rain["means"]) == {"input", "same"} and set(haze["means"]) == {"input", "dcp", "same"}
    assert len(rain["per_image"]["same"]) == 3
    m = rain["means"]["same"]["psnr"]
    assert m["mean"] == rain["means"]["input"]["psnr"]["mean"] and m["ci95"][0] <= m["mean"] <= m["ci95"][1]
    assert rain["differences"]["same"]["psnr-input"]["mean"] == 0.0 and "psnr-dcp" in haze["differences"]["same"]
    md = (tmp_path / "o" / "external_val_t.md").read_text()
    assert "rain_x (rain, n = 3 pairs)" in md and "haze_y (haze, n = 2 pairs)" in md
    r = _run("external_val.py", "--data", tmp_path / "none", "--model", str(identity_model))
    assert r.returncode != 0 and r.stderr.strip().count("\n") == 0 and "no set" in r.stderr


def test_scale_eval_factors(tmp_path: Path, identity_model: Path) -> None:
    for i in range(2):
        _photo(tmp_path / "clean" / f"p{i}.png", i, 48, 48)
    r = _run("scale_eval.py", "--val-dir", tmp_path / "clean", "--model", f"same={identity_model}", "--count", "2",
             "--crop", "16", "--factors", "1,2", "--filter", "bicubic", "--tag", "t", "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads((tmp_path / "o" / "scale_eval_t.json").read_text())
    assert out["factors"] == [1, 2]
    for k in ("haze", "rain", "blur"):
        assert out["psnr"]["same"][k] == out["psnr"]["input"][k] and set(out["psnr"]["same"][k]) == {"1", "2"}
    assert "| same |" in (tmp_path / "o" / "scale_eval_t.md").read_text()
    r = _run("scale_eval.py", "--val-dir", tmp_path / "clean", "--model", f"same={identity_model}", "--count", "2",
             "--crop", "16", "--factors", "1,2", "--filter", "bicubic", "--kinds", "rain", "--tag", "r", "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr[-2000:]
    rain = json.loads((tmp_path / "o" / "scale_eval_r.json").read_text())
    assert rain["kinds"] == ["rain"] and rain["psnr"]["input"] == {"rain": out["psnr"]["input"]["rain"]}
    assert "rain x2" in (tmp_path / "o" / "scale_eval_r.md").read_text()


def test_real_panel_held_out_photos(tmp_path: Path, identity_model: Path) -> None:
    real = tmp_path / "real"
    for sub in ("hazy", "rain", "blur"):
        for i in range(4):
            _photo(real / sub / f"{i}.png", i)
    out = tmp_path / "panel.png"
    r = _run("real_panel.py", "--real", real, "--model-a", identity_model, "--model-b", f"B={identity_model}",
             "--out", out, "--per-kind", "2", "--holdout", "0.5", "--cell", "40")
    assert r.returncode == 0, r.stderr[-2000:]
    with Image.open(out) as im:
        w, h = im.size
    assert w == 3 * (40 + 4) and h > 6 * 40  # input | A | B, 2 photos x 3 kinds
    r = _run("real_panel.py", "--real", real, "--model-a", identity_model, "--model-b", identity_model,
             "--out", ROOT / "panel.png")
    assert r.returncode != 0 and "inside the repository" in r.stderr and not (ROOT / "panel.png").exists()


def test_synth_benchmark_writes_its_report(tmp_path: Path) -> None:
    # It used to crash at the end (KeyError 'cores_usable') after all the timing was done.
    for i in range(2):
        _photo(tmp_path / "clean" / f"p{i}.png", i, 40, 40)
    r = _run("synth.py", "--clean", tmp_path / "clean", "--sizes", "16", "--kinds", "haze,clean", "--items", "1",
             "--repeats", "1", "--presets", "r6,r7", "--scales", "1,2", "--no-loader", "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr[-2000:]
    rows = json.loads((tmp_path / "o" / "synth.json").read_text())["per_kind"]
    # clean exists only in r7; each preset is timed with and without scales
    assert sorted((x["preset"], x["kind"]) for x in rows) == sorted(
        [("r6", "haze"), ("r7", "haze"), ("r7", "clean"), ("r6 scales 1-2", "haze"), ("r7 scales 1-2", "haze"), ("r7 scales 1-2", "clean")])
    assert "| r7 | 16 | clean |" in (tmp_path / "o" / "synth.md").read_text()
