"""benchmarks/real_nr_diff.py: paired NR-score differences between two models, per kind."""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from real_nr_diff import nr_differences  # noqa: E402


def _rows() -> list[dict[str, str]]:
    rows = []
    for i in range(6):
        kind = "blur" if i < 4 else "rain"
        base = {"niqe": 5.0 + i, "brisque": 30.0 + i, "piqe": 20.0 + i}
        # b: NIQE 0.5 lower on every photo, BRISQUE 1 higher, PIQE lower only on the blur photos.
        b = {"niqe": base["niqe"] - 0.5, "brisque": base["brisque"] + 1.0, "piqe": base["piqe"] - (2.0 if kind == "blur" else -2.0)}
        for method, s in (("a", base), ("b", b)):
            rows.append({"method": method, "image": f"{kind}/p{i}.png", "kind": kind, "error": "",
                         **{k: str(v) for k, v in s.items()}})
    rows.append({"method": "b", "image": "blur/failed.png", "kind": "blur", "error": "unreadable",
                 "niqe": "", "brisque": "", "piqe": ""})
    return rows


def test_differences_per_kind_with_counts_and_intervals() -> None:
    table = {(r["kind"], r["score"]): r for r in nr_differences(_rows(), "a", "b", boot=200)}
    assert table[("all", "niqe")]["mean"] == pytest.approx(-0.5) and table[("all", "niqe")]["better"] == 6
    assert table[("all", "brisque")]["better"] == 0 and table[("all", "brisque")]["lo"] == pytest.approx(1.0)
    blur, rain = table[("blur", "piqe")], table[("rain", "piqe")]
    assert (blur["mean"], blur["better"], blur["photos"]) == (pytest.approx(-2.0), 4, 4)
    assert (rain["mean"], rain["better"], rain["photos"]) == (pytest.approx(2.0), 0, 2)
    mixed = table[("all", "piqe")]
    assert mixed["lo"] < mixed["mean"] < mixed["hi"]  # blur better, rain worse: a real interval
    with pytest.raises(ValueError, match="no photo"):
        nr_differences(_rows(), "a", "missing")


def test_command_line_prints_a_table_and_names_a_bad_file(tmp_path: Path) -> None:
    path = tmp_path / "real_per_image.csv"
    rows = _rows()
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    script = str(ROOT / "benchmarks" / "real_nr_diff.py")
    out = subprocess.run([sys.executable, script, str(path), "--a", "a", "--b", "b"], capture_output=True, text=True, check=True).stdout
    assert "| blur | piqe | -2.00 |" in out and "4/4" in out
    bad = subprocess.run([sys.executable, script, str(tmp_path / "none.csv"), "--a", "a", "--b", "b"], capture_output=True, text=True)
    assert bad.returncode != 0 and "none.csv" in bad.stderr
