from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from uniremoval.cli import app

pytest.importorskip("skimage")


def test_demo_with_the_bundled_default_model_restores_every_kind(tmp_path: Path) -> None:
    """`make demo` as a user runs it: the shipped model, no --model. On these sample photos
    it must improve PSNR on average for every kind it was trained for."""
    r = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "d"), "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "d" / "grid.png").is_file()
    gains: dict[str, list[float]] = {}
    for cells in _rows(r.stdout):
        gains.setdefault(cells[1], []).append(float(cells[3]) - float(cells[2]))
    assert set(gains) == {"haze", "rain", "blur"}, r.stdout
    assert sum(gains["haze"]) / len(gains["haze"]) > 1.0, gains
    assert all(sum(v) / len(v) > -0.5 for v in gains.values()), gains


def _rows(stdout: str) -> list[list[str]]:
    """The table's data rows: photo, kind, PSNR degraded, PSNR restored, gain."""
    rows = []
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.split("│") if c.strip()]
        if len(cells) == 5 and cells[1] in ("haze", "rain", "blur"):
            assert abs(float(cells[3]) - float(cells[2]) - float(cells[4])) < 0.011, cells
            rows.append(cells)
    return rows


def test_demo_without_a_trained_model_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import uniremoval.modelfile as mf

    monkeypatch.setattr(mf, "bundled_dir", lambda: tmp_path / "empty")
    r = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "d")])
    assert r.exit_code == 1 and "no trained model is bundled" in r.stderr
    assert not (tmp_path / "d").exists()


def test_demo_with_a_model_writes_outputs_and_grid(tmp_path: Path, identity_model: Path) -> None:
    r = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "d"), "--model", str(identity_model), "--device", "cpu"])
    assert r.exit_code == 0, r.output
    restored = sorted((tmp_path / "d" / "restored").iterdir())
    assert len(restored) == 12  # 4 sample photos x 3 kinds
    grid = Image.open(tmp_path / "d" / "grid.png")
    # rows follow each photo's aspect ratio: three of the four samples are landscape, so the
    # grid is shorter than twelve square rows would be (no white band under them)
    assert grid.width > 3 * 200 and 12 * 200 < grid.height < 12 * grid.width // 3
    assert "(dB)" in r.stdout
    rows = _rows(r.stdout)
    assert len(rows) == 12
    # the identity model returns the degraded input: PSNR restored == PSNR degraded, and
    # the demo says so instead of implying a gain
    for cells in rows:
        assert abs(float(cells[2]) - float(cells[3])) < 0.05
    for kind in ("haze", "rain", "blur"):
        assert f"{kind}: +0.00 dB on average: barely improves" in r.stdout
