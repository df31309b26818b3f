"""Batch behaviour of `uniremoval restore` a pipeline relies on: symlink loops, Ctrl-C,
`--dry-run`, `--report`, output paths that are refused before any work, and hints."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from typer.testing import CliRunner

from uniremoval.cli import app
from uniremoval.restorer import Restorer

runner = CliRunner()


def _photo(path: Path, h: int = 20, w: int = 28, seed: int = 0) -> Path:
    arr = (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(arr).save(path)
    return path


def _run(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["restore", *args])


def _loop_folder(root: Path) -> Path:
    src = root / "in"
    _photo(src / "ok.png")
    os.symlink("b", src / "a")
    os.symlink("a", src / "b")
    os.symlink("a", src / "c.png")
    return src


@pytest.mark.parametrize("how", ["folder", "file", "glob", "recursive"])
def test_symlink_loop_is_one_line_and_the_rest_is_restored(tmp_path: Path, identity_model: Path, how: str) -> None:
    src = _loop_folder(tmp_path)
    args = {
        "folder": [str(src)],
        "file": [str(src / "c.png"), str(src / "ok.png")],
        "glob": [str(src / "*.png")],
        "recursive": [str(src), "-r"],
    }[how]
    r = _run(*args, "-o", str(tmp_path / "out"), "--model", str(identity_model))
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output and r.exception is None or isinstance(r.exception, SystemExit)
    lines = [l for l in r.stderr.splitlines() if l.startswith("failed:")]
    # recursively, a and b could have been folders, so they are reported too
    looped = ["a", "b", "c.png"] if how == "recursive" else ["c.png"]
    assert lines == [f"failed: {src / name}: symbolic link loop" for name in looped], r.stderr
    assert (tmp_path / "out" / "ok.png").exists()
    assert f"restored 1, skipped 0, failed {len(looped)}" in r.stderr


def test_output_with_unknown_extension_is_refused_not_made_a_folder(tmp_path: Path, identity_model: Path) -> None:
    src = _photo(tmp_path / "a.png")
    r = _run(str(src), "-o", str(tmp_path / "out.xyz"), "--model", str(identity_model))
    assert r.exit_code == 2
    assert ".xyz is not an output image format" in r.stderr and "out.xyz/" in r.stderr
    assert not (tmp_path / "out.xyz").exists()
    # a trailing slash says "folder", whatever the name
    r = _run(str(src), "-o", str(tmp_path / "out.xyz") + "/", "--model", str(identity_model))
    assert r.exit_code == 0, r.output
    assert (tmp_path / "out.xyz" / "a.png").exists()


def test_collision_into_a_folder_does_not_suggest_suffix(tmp_path: Path, identity_model: Path) -> None:
    a = _photo(tmp_path / "x" / "p.png")
    b = _photo(tmp_path / "y" / "p.png", seed=1)
    r = _run(str(a), str(b), "-o", str(tmp_path / "out"), "--model", str(identity_model))
    assert r.exit_code == 1
    line = next(l for l in r.stderr.splitlines() if l.startswith("failed:") and "same output path" in l)
    assert "--suffix" not in line and "-r" in line
    # next to the inputs, --suffix is the fix that helps
    c = _photo(tmp_path / "z" / "q.png")
    d = _photo(tmp_path / "z" / "q.jpg")
    r = _run(str(c), str(d), "--ext", "png", "--model", str(identity_model))
    assert "--suffix" in next(l for l in r.stderr.splitlines() if "same output path" in l)


def test_unwritable_output_subfolder_is_refused_before_any_work(
    tmp_path: Path, identity_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "in"
    _photo(src / "top.png")
    _photo(src / "sub" / "deep.png", seed=1)
    out = tmp_path / "out"
    out.mkdir()
    (out / "sub").write_text("a file where the sub-folder's outputs should go")
    calls: list[str] = []
    real = Restorer.restore_file

    def recording(self, s, d, **kw):  # type: ignore[no-untyped-def]
        calls.append(Path(s).name)
        return real(self, s, d, **kw)

    monkeypatch.setattr(Restorer, "restore_file", recording)
    r = _run(str(src), "-r", "-o", str(out), "--model", str(identity_model))
    assert r.exit_code == 1
    assert calls == ["top.png"]  # deep.png was refused up front, not after restoring it
    assert f"failed: {src / 'sub' / 'deep.png'}: output folder {out / 'sub'} is not writable" in r.stderr


def test_folder_without_r_says_subfolders_were_not_searched(tmp_path: Path, identity_model: Path) -> None:
    src = tmp_path / "in"
    _photo(src / "sub" / "deep.png")
    r = _run(str(src), "-o", str(tmp_path / "out"), "--model", str(identity_model))
    assert r.exit_code == 2
    assert "no input images found" in r.stderr and "add -r" in r.stderr
    _photo(src / "top.png")
    r = _run(str(src), "-o", str(tmp_path / "out"), "--model", str(identity_model))
    assert r.exit_code == 0
    assert "1 sub-folder not searched (add -r to include them)" in r.stderr


def test_ctrl_c_prints_what_was_done_and_how_to_resume(
    tmp_path: Path, identity_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "in"
    for i in range(4):
        _photo(src / f"p{i}.png", seed=i)
    real = Restorer.restore_file
    calls = {"n": 0}

    def interrupting(self, s, d, **kw):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(self, s, d, **kw)

    monkeypatch.setattr(Restorer, "restore_file", interrupting)
    report = tmp_path / "report.json"
    r = _run(str(src), "-o", str(tmp_path / "out"), "--model", str(identity_model), "--report", str(report))
    assert r.exit_code == 130
    assert "interrupted: restored 1, skipped 0, failed 0, not done 3" in r.stderr
    assert "--skip-existing" in r.stderr and "p1.png" in r.stderr
    doc = json.loads(report.read_text())
    assert doc["interrupted"] is True
    assert [rec["status"] for rec in doc["records"]] == ["restored", "not_done", "not_done", "not_done"]
    monkeypatch.setattr(Restorer, "restore_file", real)
    r = _run(str(src), "-o", str(tmp_path / "out"), "--model", str(identity_model), "--skip-existing")
    assert r.exit_code == 0 and "restored 3, skipped 1, failed 0" in r.stderr


def test_dry_run_writes_nothing_and_loads_no_model(tmp_path: Path) -> None:
    src = tmp_path / "in"
    _photo(src / "a.png")
    _photo(src / "b.png", seed=1)
    out = tmp_path / "out"
    out.mkdir()
    _photo(out / "b.png", seed=2)  # an existing output: refused without --overwrite
    report = tmp_path / "plan.json"
    r = _run(str(src), "-o", str(out / "new"), "--model", str(tmp_path / "no-such-model.json"), "--dry-run")
    assert r.exit_code == 0, r.output
    assert f"write   {src / 'a.png'} -> {out / 'new' / 'a.png'}" in r.stdout
    assert "would restore 2, skip 0, refuse 0" in r.stderr
    assert not (out / "new").exists()
    r = _run(str(src), "-o", str(out), "--model", "x", "--dry-run", "--report", str(report))
    assert r.exit_code == 1  # a refusal is a failure a pipeline should see
    assert f"refuse  {src / 'b.png'}: output {out / 'b.png'} exists" in r.stdout
    recs = json.loads(report.read_text())["records"]
    assert [(Path(x["input"]).name, x["status"]) for x in recs] == [("a.png", "planned"), ("b.png", "refused")]
    assert not (out / "a.png").exists()


def test_report_has_one_record_per_input(tmp_path: Path, identity_model: Path) -> None:
    src = tmp_path / "in"
    _photo(src / "good.png", h=12, w=30)
    (src / "bad.png").write_bytes(b"not an image")
    _photo(src / "done.png")
    _photo(tmp_path / "out" / "done.png")
    report = tmp_path / "r" / "report.json"
    r = _run(str(src), "-o", str(tmp_path / "out"), "--skip-existing", "--model", str(identity_model), "--report", str(report))
    assert r.exit_code == 1
    doc = json.loads(report.read_text())
    recs = {Path(x["input"]).name: x for x in doc["records"]}
    assert recs["good.png"]["status"] == "restored"
    assert (recs["good.png"]["width"], recs["good.png"]["height"]) == (30, 12)
    assert recs["good.png"]["output_bytes"] == (tmp_path / "out" / "good.png").stat().st_size
    assert recs["good.png"]["seconds"] >= 0
    assert recs["bad.png"]["status"] == "failed" and recs["bad.png"]["reason"]
    assert recs["done.png"]["status"] == "skipped" and recs["done.png"]["reason"] == "output exists"
    assert doc["counts"] == {"restored": 1, "failed": 1, "skipped": 1}
    # the report never replaces an input
    r = _run(str(src / "good.png"), "-o", str(tmp_path / "o2"), "--model", str(identity_model), "--report", str(src / "good.png"))
    assert r.exit_code == 2 and "is an input or output of this run" in r.stderr


def test_info_shows_the_full_provenance_locally_and_names_the_architecture(tmp_path: Path, identity_model: Path) -> None:
    import shutil

    cfg = json.loads(identity_model.read_text())
    cfg["provenance"] = {"stage": "teacher", "out_dir": "/home/alice/.cache/uniremoval/runs"}
    model = tmp_path / "m.json"
    model.write_text(json.dumps(cfg))
    shutil.copy(identity_model.with_name(cfg["weights"]), tmp_path / cfg["weights"])
    r = runner.invoke(app, ["info", "-m", str(model)])
    assert r.exit_code == 0, r.output
    assert "architecture plain (depth=3, width=8)" in r.stdout
    assert "{}" not in r.stdout and "alice" not in r.stdout
    r = runner.invoke(app, ["info", "-m", str(model), "--provenance"])
    assert r.exit_code == 0 and "/home/alice/.cache/uniremoval/runs" in r.stdout


def test_one_time_onnx_export_is_announced(tmp_path: Path, identity_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine reports its slow one-time work through on_message; restore must show it
    (a first --backend onnxruntime run spent minutes exporting without a word)."""
    real = Restorer.from_pretrained.__func__  # type: ignore[attr-defined]

    def announcing(cls, model, **kw):  # type: ignore[no-untyped-def]
        kw["on_message"]("exporting model m to ONNX (once; cached at /c/m.onnx)...")
        kw["backend"] = "torch"
        return real(cls, model, **kw)

    monkeypatch.setattr(Restorer, "from_pretrained", classmethod(announcing))
    src = _photo(tmp_path / "a.png")
    r = _run(str(src), "-o", str(tmp_path / "out"), "--model", str(identity_model), "--backend", "onnxruntime")
    assert r.exit_code == 0, r.output
    assert "exporting model m to ONNX (once; cached at /c/m.onnx)..." in r.stderr


def test_help_names_arguments_plainly() -> None:
    """Usage lines read `PHOTO...`, not typer's `{inputs}...` with a `<list[str]>` type."""
    r = runner.invoke(app, ["restore", "--help"], env={"COLUMNS": "120"})
    assert r.exit_code == 0
    assert "restore [OPTIONS] PHOTO..." in r.stdout
    assert "{" not in r.stdout and "<list[str]>" not in r.stdout
