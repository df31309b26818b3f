"""Tests for `uniremoval synth` and `uniremoval data ...` (on a local app, via CliRunner)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from uniremoval.cli.data_cmds import register


@pytest.fixture()
def cli():
    app = typer.Typer()
    register(app)
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, [str(a) for a in args])

    return run


def _clean(tmp_path: Path, n: int = 2, bad: bool = False) -> Path:
    d = tmp_path / "clean"
    d.mkdir()
    for i in range(n):
        arr = np.random.default_rng(i).integers(0, 256, (40, 56, 3), dtype=np.uint8)
        Image.fromarray(arr).save(d / f"p{i}.png")
    if bad:
        (d / "broken.jpg").write_bytes(b"garbage")
    return d


def _snapshot(d: Path) -> dict[str, bytes]:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_synth_writes_pairs_params_and_is_reproducible(cli, tmp_path: Path) -> None:
    clean = _clean(tmp_path)
    before = _snapshot(clean)
    r = cli("synth", clean, "-o", tmp_path / "a", "--kinds", "haze,rain,blur", "--seed", "0", "--size", "32", "-q")
    assert r.exit_code == 0, r.output
    a = tmp_path / "a"
    names = sorted(p.name for p in (a / "input").iterdir())
    assert len(names) == 6 and names == sorted(p.name for p in (a / "target").iterdir())
    rec = json.loads((a / "params" / "p1_rain_0.json").read_text())
    assert rec["kind"] == "rain" and rec["source"] == "p1.png" and isinstance(rec["seed"], int)
    assert "layers" in rec["params"]
    with Image.open(a / "input" / "p1_rain_0.png") as im:
        assert im.size == (32, 32)
    assert _snapshot(clean) == before  # inputs untouched
    r = cli("synth", clean, "-o", tmp_path / "b", "--kinds", "haze,rain,blur", "--seed", "0", "--size", "32", "-q")
    assert r.exit_code == 0
    sa, sb = _snapshot(a), _snapshot(tmp_path / "b")
    assert {k: v for k, v in sa.items() if k != "manifest.json"} == {k: v for k, v in sb.items() if k != "manifest.json"}
    # The output is a valid paired set for `data check` and its manifest verifies.
    assert cli("data", "check", a).exit_code == 0
    assert cli("data", "verify", a / "manifest.json").exit_code == 0


def test_synth_per_image_and_refuses_to_clobber(cli, tmp_path: Path) -> None:
    clean = _clean(tmp_path, 1)
    out = tmp_path / "o"
    assert cli("synth", clean, "-o", out, "--kinds", "blur", "--per-image", "3", "-q").exit_code == 0
    assert len(list((out / "input").iterdir())) == 3
    r = cli("synth", clean, "-o", out, "--kinds", "blur", "-q")
    assert r.exit_code == 2 and "--overwrite" in r.output
    assert cli("synth", clean, "-o", out, "--kinds", "blur", "-q", "--overwrite").exit_code == 0


def test_synth_usage_errors(cli, tmp_path: Path) -> None:
    clean = _clean(tmp_path, 1)
    r = cli("synth", clean, "-o", tmp_path / "o", "--kinds", "haze,smog")
    assert r.exit_code == 2 and "smog" in r.output
    assert cli("synth", tmp_path / "nope", "-o", tmp_path / "o").exit_code == 2
    assert cli("synth", clean, "-o", clean / "out").exit_code == 2  # never write into the inputs


def test_synth_skips_and_reports_bad_files(cli, tmp_path: Path) -> None:
    clean = _clean(tmp_path, 1, bad=True)
    r = cli("synth", clean, "-o", tmp_path / "o", "--kinds", "haze", "-q")
    assert r.exit_code == 1
    assert "broken.jpg" in r.output
    assert [p.name for p in (tmp_path / "o" / "input").iterdir()] == ["p0_haze_0.png"]


def test_synth_preview_contact_sheet(cli, tmp_path: Path) -> None:
    clean = _clean(tmp_path, 1)
    out = tmp_path / "sheet.png"
    r = cli("synth", clean, "-o", out, "--preview", "--kinds", "haze,rain,blur", "--strengths", "0,0.5,1", "--size", "32")
    assert r.exit_code == 0, r.output
    with Image.open(out) as im:
        w, h = im.size
    assert w >= 4 * 32 and h >= 3 * 32  # 3 rows (kinds) x 4 columns (clean + 3 strengths)
    assert cli("synth", clean, "-o", out, "--preview", "--strengths", "0,2").exit_code == 2


def test_synth_preview_beside_real_photos_and_presets(cli, tmp_path: Path) -> None:
    clean = _clean(tmp_path, 1)
    real = tmp_path / "real"
    for sub, value in (("hazy", 0), ("rain", 255)):
        (real / sub).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((30, 50, 3), value, np.uint8)).save(real / sub / f"{i}.png")
    out = tmp_path / "sheet.png"
    r = cli("synth", clean, "-o", out, "--preview", "--kinds", "haze,rain,clean", "--strengths", "0,1", "--size", "32",
            "--real-dir", real, "--real-count", "2", "--seeds", "2", "--scale", "2", "--preset", "r7")
    assert r.exit_code == 0, r.output
    sheet = np.asarray(Image.open(out))
    cell = 32 + 2
    # 3 kinds x 2 seeds = 6 rows; clean + 2 strengths + 1 real column (2 photos dealt over 2 rows)
    assert sheet.shape[1] == 4 * cell and sheet.shape[0] == 6 * (32 + 16 + 2)
    haze_real = sheet[16 + 8 : 16 + 30, 3 * cell + 4 : 3 * cell + 30]
    rain_real = sheet[2 * 50 + 16 + 8 : 2 * 50 + 16 + 30, 3 * cell + 4 : 3 * cell + 30]
    assert haze_real.max() == 0 and rain_real.min() == 255
    assert cli("synth", clean, "-o", out, "--preview", "--overwrite", "--preset", "r99").exit_code == 2
    assert cli("synth", clean, "-o", out, "--preview", "--overwrite", "--real-dir", tmp_path / "nope").exit_code == 2
    r = cli("synth", clean, "--list-kinds", "-o", tmp_path / "x", "--preset", "r6")
    assert "clean" not in r.output.split() and "haze" in r.output.split()


def test_data_check_reports_problems(cli, tmp_path: Path) -> None:
    root = tmp_path / "set"
    for sub in ("input", "target"):
        (root / sub).mkdir(parents=True)
    rng = np.random.default_rng(0)
    def save(p: Path, h: int, w: int) -> None:
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(p)
    save(root / "input" / "ok.png", 20, 20), save(root / "target" / "ok.png", 20, 20)
    save(root / "input" / "big.png", 20, 20), save(root / "target" / "big.png", 24, 20)
    save(root / "input" / "lonely.png", 20, 20)
    save(root / "input" / "corrupt.png", 20, 20)
    (root / "target" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    r = cli("data", "check", root)
    assert r.exit_code == 1
    assert "lonely.png" in r.output and "big.png" in r.output and "corrupt.png" in r.output
    assert "size mismatch" in r.output
    # A clean folder with one broken file: unreadable files are listed.
    clean = _clean(tmp_path, 2, bad=True)
    r = cli("data", "check", clean)
    assert r.exit_code == 1 and "broken.jpg" in r.output
    assert cli("data", "check", clean, "--layout", "bogus").exit_code == 2


def test_data_manifest_and_verify(cli, tmp_path: Path) -> None:
    clean = _clean(tmp_path, 2)
    assert cli("data", "manifest", clean).exit_code == 0
    assert cli("data", "verify", clean / "manifest.json").exit_code == 0
    (clean / "p0.png").write_bytes((clean / "p1.png").read_bytes())
    r = cli("data", "verify", clean / "manifest.json")
    assert r.exit_code == 1 and "p0.png" in r.output and "changed" in r.output


def test_help_shows_readable_metavars(cli) -> None:
    for args, name in ((("synth",), "CLEAN_DIR"), (("data", "check"), "ROOT"), (("data", "manifest"), "ROOT"),
                       (("data", "verify"), "MANIFEST")):
        text = cli(*args, "--help").output
        assert name in text, text
        assert "{clean_dir}" not in text and "{root}" not in text and "{manifest_path}" not in text
        assert "<list" not in text


def test_manifest_and_synth_with_relative_paths(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _clean(tmp_path, 1)
    monkeypatch.chdir(tmp_path)
    r = cli("data", "manifest", "clean")
    assert r.exit_code == 0, r.output
    assert [f["path"] for f in json.loads((tmp_path / "clean" / "manifest.json").read_text())["files"]] == ["p0.png"]
    r = cli("synth", "clean", "-o", "out", "--kinds", "haze", "-q")
    assert r.exit_code == 0, r.output
    assert cli("data", "verify", "out/manifest.json").exit_code == 0
