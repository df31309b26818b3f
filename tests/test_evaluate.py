"""`uniremoval eval` / `bench` and the report writers, on small sets made in the test."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from uniremoval.cli import app
from uniremoval.evaluate import load_method, paired_items, real_items, summarize

skdata = pytest.importorskip("skimage.data")
runner = CliRunner()


def _save(path: Path, a: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.round(np.clip(a, 0, 1) * 255).astype(np.uint8)).save(path)


@pytest.fixture(scope="module")
def sets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("evalsets")
    photo = skdata.astronaut().astype(np.float64) / 255.0
    paired, real = root / "paired", root / "real"
    rng = np.random.default_rng(0)
    for i, (kind, y0) in enumerate((("haze", 0), ("rain", 100), ("blur", 200))):
        clean = photo[y0 : y0 + 96, 100:196]
        deg = clean * 0.6 + 0.35 if kind == "haze" else np.clip(clean + rng.normal(0, 0.05, clean.shape), 0, 1)
        name = f"img{i}_{kind}_0"
        _save(paired / "input" / f"{name}.png", deg)
        _save(paired / "target" / f"{name}.png", clean)
        (paired / "params").mkdir(exist_ok=True)
        (paired / "params" / f"{name}.json").write_text(json.dumps({"kind": kind}))
    (paired / "input" / "broken_haze_0.png").write_bytes(b"not a png")
    _save(paired / "target" / "broken_haze_0.png", photo[:96, :96])
    _save(real / "hazy" / "a.png", photo[:200, :224] * 0.6 + 0.35)
    _save(real / "rain" / "b.png", photo[200:400, 200:424])
    return paired, real


def test_items_and_kinds(sets: tuple[Path, Path]) -> None:
    paired, real = sets
    kinds = {it.input.stem: it.kind for it in paired_items(paired)}
    assert kinds["img0_haze_0"] == "haze" and kinds["img2_blur_0"] == "blur"
    assert sorted(it.kind for it in real_items(real)) == ["haze", "rain"]


def test_eval_cli_writes_readable_reports(sets: tuple[Path, Path], tmp_path: Path, identity_model: Path) -> None:
    paired, real = sets
    out = tmp_path / "out"
    r = runner.invoke(app, ["eval", "--model", "identity", "--model", "dcp", "--model", str(identity_model),
                            "--paired", str(paired), "--real", str(real), "--html", "-o", str(out)])
    # the broken file makes the exit code 1, but every other image is scored
    assert r.exit_code == 1, r.output
    rows = list(csv.DictReader((out / "paired_per_image.csv").open()))
    assert len(rows) == 4 * 3
    broken = [x for x in rows if x["image"].startswith("input/broken") or "broken" in x["image"]]
    assert broken and all(x["error"] and x["psnr"] == "" for x in broken)
    ident = {x["image"]: x for x in rows if x["method"] == "identity" and not x["error"]}
    assert len(ident) == 3
    for x in rows:
        if x["method"] == "identity" and not x["error"]:
            assert 10 < float(x["psnr"]) < 60 and 0 < float(x["ssim"]) <= 1
    # the identity network gives the input back: same PSNR as the identity baseline
    net_name = "identity#3"  # the model file is also called "identity": kept apart from the baseline
    net_rows = {x["image"]: x for x in rows if x["method"] == net_name and not x["error"]}
    assert len(net_rows) == 3
    for k, x in net_rows.items():
        assert float(x["psnr"]) == pytest.approx(float(ident[k]["psnr"]), abs=0.05)

    summary = json.loads((out / "paired_summary.json").read_text())
    means = summary["means"]["identity"]
    assert means["haze"] == {**means["haze"], "n": 1, "failed": 0}
    assert means["unknown"]["failed"] == 1 and means["all"]["n"] == 4 and means["all"]["failed"] == 1
    assert summary["methods"][net_name]["weights_sha256"]
    assert summary["data"]["manifest_sha256"] if (paired / "manifest.json").exists() else summary["data"]["files_sha256"]
    assert summary["environment"]["seed"] == 0 and "torch" in summary["environment"]
    # dcp beats doing nothing on the (constant-airlight) haze pair
    assert summary["means"]["dcp"]["haze"]["psnr"] > summary["means"]["identity"]["haze"]["psnr"]

    md = (out / "paired_summary.md").read_text()
    assert "| identity |" in md and "haze psnr" in md
    grid = Image.open(out / "paired_grid.png")
    assert grid.width > 4 * 96
    page = (out / "paired_report.html").read_text()
    assert page.count("type='range'") == 3 * 3 and "data:image/jpeg;base64," in page and "<script>" in page

    real_rows = list(csv.DictReader((out / "real_per_image.csv").open()))
    assert {x["kind"] for x in real_rows} == {"haze", "rain"}
    assert all(x["niqe"] and x["brisque"] and x["piqe"] for x in real_rows)
    rs = json.loads((out / "real_summary.json").read_text())
    assert set(rs["means"]["identity"]) == {"haze", "rain", "all"}
    assert (out / "real_grid.png").is_file() and (out / "real_report.html").is_file()


def test_eval_cli_errors(tmp_path: Path) -> None:
    r = runner.invoke(app, ["eval", "--model", "identity"])
    assert r.exit_code == 2 and "--paired" in r.output
    r = runner.invoke(app, ["eval", "--model", "nosuchmodel", "--real", str(tmp_path)])
    assert r.exit_code == 2
    r = runner.invoke(app, ["eval", "--model", "identity", "--real", str(tmp_path)])
    assert r.exit_code == 2 and "no images" in r.output


def test_bench_rows_and_per_kind_teachers(sets: tuple[Path, Path], tmp_path: Path, identity_model: Path) -> None:
    paired, real = sets
    out = tmp_path / "bench"
    r = runner.invoke(app, ["bench", "--paired", str(paired), "--real", str(real), "-o", str(out),
                            "--row", f"teachers=haze:{identity_model},rain:{identity_model},blur:{identity_model}",
                            "--row", f"all-in-one={identity_model}"])
    assert r.exit_code == 1, r.output  # the broken pair
    s = json.loads((out / "paired_summary.json").read_text())
    assert s["ablation_rows"] == ["input", "dcp", "teachers", "all-in-one"]
    assert s["means"]["teachers"]["rain"]["psnr"] == pytest.approx(s["means"]["input"]["rain"]["psnr"], abs=0.05)
    assert set(s["methods"]["teachers"]["by_kind"]) == {"haze", "rain", "blur"}


def test_summarize_counts_failures() -> None:
    rows = [{"method": "m", "kind": "k", "psnr": 20.0}, {"method": "m", "kind": "k", "psnr": float("nan")}]
    s = summarize(rows, ["psnr"])
    assert s["m"]["k"] == {"n": 2, "psnr": 20.0, "failed": 1}


def test_load_method_baselines() -> None:
    m = load_method("dcp")
    assert m.info["type"] == "baseline" and m.info["params"]["patch"] == 15 and m.info["params"]["omega"] == 0.95


def test_load_method_scale_suffix(identity_model: Path, tmp_path: Path) -> None:
    plain = load_method(str(identity_model), device="cpu")
    assert plain.name == "identity" and plain.info["scale"] == 1
    pyr = load_method(f"{identity_model}@Pyramid", device="cpu")
    assert pyr.name == "identity@pyramid" and pyr.info["scale"] == "pyramid"
    assert load_method(f"{identity_model}@4", device="cpu").info["scale"] == 4
    odd = tmp_path / "model@v2.json"  # an '@' that is no scale stays part of the path
    odd.write_text(identity_model.read_text())
    (tmp_path / identity_model.with_suffix(".safetensors").name).write_bytes(identity_model.with_suffix(".safetensors").read_bytes())
    assert load_method(str(odd), device="cpu").name == "model@v2"


@pytest.mark.parametrize("tile", ["0", "none", "64", "auto"])
def test_eval_tile_words_match_restore(sets: tuple[Path, Path], tmp_path: Path, identity_model: Path, tile: str) -> None:
    """--tile takes restore's values (auto, 0 = never, a size); "none" still works silently."""
    _, real = sets
    r = runner.invoke(app, ["eval", "--model", str(identity_model), "--real", str(real), "-o", str(tmp_path), "--tile", tile])
    assert r.exit_code == 0, r.output
    assert "--tile" not in r.output  # no warning, not even for "none"
    s = json.loads((tmp_path / "real_summary.json").read_text())
    assert s["means"][identity_model.stem]["all"]["n"] == 2
    r = runner.invoke(app, ["eval", "--model", "identity", "--real", str(real), "-o", str(tmp_path), "--tile", "-5"])
    assert r.exit_code == 2 and "use auto, 0 (never tile) or a size of at least 16 pixels" in r.output and "[bold" not in r.output


def test_eval_and_bench_help_use_restore_words_and_readable_metavars() -> None:
    import re

    for cmd in ("eval", "bench"):
        text = re.sub(r"[\s│]+", " ", runner.invoke(app, [cmd, "--help"], terminal_width=200).output)
        assert "auto (tile large images), 0 (never), or a tile size in pixels." in text
        assert "<list" not in text and "none or pixels" not in text
    assert "LABEL=MODEL" in runner.invoke(app, ["bench", "--help"], terminal_width=200).output
