"""`uniremoval restore` end to end, including every kind of bad input the issue lists."""
from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from typer.testing import CliRunner

import uniremoval.image_io as image_io
from uniremoval.cli import app

runner = CliRunner()


def _photo(path: Path, h: int = 40, w: int = 56, mode: str = "RGB", seed: int = 0, **save: object) -> Path:
    rng = np.random.default_rng(seed)
    bands = {"RGB": 3, "RGBA": 4, "L": 1, "LA": 2}[mode] if mode in ("RGB", "RGBA", "L", "LA") else 3
    arr = (rng.random((h, w, bands)) * 255).astype(np.uint8)
    im = PILImage.fromarray(arr[..., 0] if bands == 1 else arr, mode if mode in ("RGB", "RGBA", "L", "LA") else "RGB")
    if mode not in ("RGB", "RGBA", "L", "LA"):
        im = im.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, **save)
    return path


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def _run(*args: str) -> "object":
    return runner.invoke(app, ["restore", *args])


def test_restores_same_size_and_keeps_inputs(tmp_path: Path, identity_model: Path) -> None:
    src = tmp_path / "in"
    _photo(src / "a.jpg", 33, 47)
    _photo(src / "b.png", 1, 1)
    _photo(src / "c.png", 2, 3)
    before = _digest(src)
    r = _run(str(src), "-o", str(tmp_path / "out"), "--model", str(identity_model))
    assert r.exit_code == 0, r.output
    assert _digest(src) == before
    for name in ("a.jpg", "b.png", "c.png"):
        assert PILImage.open(tmp_path / "out" / name).size == PILImage.open(src / name).size
    # identity model: lossless formats come back pixel-identical
    assert np.array_equal(np.asarray(PILImage.open(tmp_path / "out" / "c.png")), np.asarray(PILImage.open(src / "c.png")))
    assert "restored 3, skipped 0, failed 0" in r.stderr


def test_bad_inputs_each_get_one_line_and_others_are_restored(tmp_path: Path, identity_model: Path) -> None:
    src = tmp_path / "in"
    _photo(src / "good1.jpg")
    _photo(src / "good2.png", mode="RGBA")
    (src / "zero.jpg").write_bytes(b"")
    (src / "text.jpg").write_text("definitely not a jpeg\n")
    buf = io.BytesIO()
    PILImage.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)).save(buf, "PNG")
    (src / "trunc.png").write_bytes(buf.getvalue()[:300])
    (src / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200))
    _photo(src / "bomb.png", 600, 500, mode="L")
    before = _digest(src)
    r = _run(str(src), "-o", str(tmp_path / "out"), "--model", str(identity_model), "--max-pixels", "200000")
    assert r.exit_code == 1
    assert _digest(src) == before
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good1.jpg", "good2.png"]
    err = r.stderr
    for name, reason in [
        ("zero.jpg", "empty file"),
        ("text.jpg", "not an image"),
        ("trunc.png", "cannot decode"),
        ("corrupt.png", "not an image|cannot decode"),
        ("bomb.png", "--max-pixels"),
    ]:
        lines = [l for l in err.splitlines() if l.startswith("failed:") and name in l]
        assert len(lines) == 1, (name, err)
        assert __import__("re").search(reason, lines[0]), lines[0]
    assert "restored 2, skipped 0, failed 5" in err


def test_special_modes(tmp_path: Path, identity_model: Path) -> None:
    src = tmp_path / "in"
    _photo(src / "cmyk.jpg", mode="CMYK")
    _photo(src / "pal.png", mode="P")
    _photo(src / "ga.png", mode="LA")
    frames = [PILImage.new("RGB", (9, 7), c) for c in ("red", "blue")]
    frames[0].save(src / "anim.gif", save_all=True, append_images=frames[1:])
    r = _run(str(src), "-o", str(tmp_path / "out"), "--model", str(identity_model))
    assert r.exit_code == 0, r.output
    out = tmp_path / "out"
    assert PILImage.open(out / "cmyk.jpg").mode == "RGB"
    assert PILImage.open(out / "ga.png").mode == "LA"
    assert np.array_equal(np.asarray(PILImage.open(out / "ga.png"))[..., 1], np.asarray(PILImage.open(src / "ga.png"))[..., 1])
    assert PILImage.open(out / "anim.png").size == (9, 7)  # GIF in, PNG out
    assert "first frame" in r.stderr


def test_unreadable_input(tmp_path: Path, identity_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = _photo(tmp_path / "good.png")
    locked = _photo(tmp_path / "locked.png")
    if os.geteuid() == 0:
        # root reads any file whatever its mode; make the open itself fail as EACCES would
        real_open = open

        def guarded(path, *a, **k):  # type: ignore[no-untyped-def]
            if str(path).endswith("locked.png"):
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, *a, **k)

        monkeypatch.setattr(image_io, "open", guarded, raising=False)
    else:
        locked.chmod(0)
    r = _run(str(good), str(locked), "-o", str(tmp_path / "out"), "--model", str(identity_model))
    assert r.exit_code == 1
    assert "locked.png: cannot read: Permission denied" in r.stderr
    assert (tmp_path / "out" / "good.png").exists()


def test_unwritable_output_folder(tmp_path: Path, identity_model: Path) -> None:
    src = _photo(tmp_path / "a.png")
    blocker = tmp_path / "file"
    blocker.write_text("a regular file where a folder is expected")
    r = _run(str(src), "-o", str(blocker / "out"), "--model", str(identity_model))
    assert r.exit_code == 1
    assert "output folder is not writable" in r.stderr
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        r = _run(str(src), "-o", str(ro), "--model", str(identity_model))
        assert r.exit_code == 1 and "not writable" in r.stderr


def test_same_output_from_two_inputs_and_never_overwrite_input(tmp_path: Path, identity_model: Path) -> None:
    a = _photo(tmp_path / "x" / "photo.png", seed=1)
    b = _photo(tmp_path / "y" / "photo.png", seed=2)
    r = _run(str(a), str(b), "-o", str(tmp_path / "out"), "--model", str(identity_model))
    assert r.exit_code == 1
    assert "same output path" in r.stderr and str(a) in r.stderr
    assert (tmp_path / "out" / "photo.png").exists()
    before = a.read_bytes()
    r = _run(str(a), "-o", str(a), "--model", str(identity_model), "--overwrite")
    assert r.exit_code == 1 and "would overwrite an input" in r.stderr
    r = _run(str(a), "-o", str(a.parent), "--model", str(identity_model), "--overwrite")
    assert r.exit_code == 1 and "would overwrite an input" in r.stderr
    assert a.read_bytes() == before


def test_existing_outputs_skip_or_refuse(tmp_path: Path, identity_model: Path) -> None:
    a = _photo(tmp_path / "a.png")
    r = _run(str(a), "--model", str(identity_model))
    assert r.exit_code == 0 and (tmp_path / "a_restored.png").exists()
    r = _run(str(a), "--model", str(identity_model))
    assert r.exit_code == 1 and "exists (use --overwrite or --skip-existing)" in r.stderr
    r = _run(str(a), "--model", str(identity_model), "--skip-existing")
    assert r.exit_code == 0 and "skipped 1" in r.stderr
    r = _run(str(a), "--model", str(identity_model), "--overwrite")
    assert r.exit_code == 0 and "restored 1" in r.stderr


def test_globs_recursive_and_ext(tmp_path: Path, identity_model: Path) -> None:
    _photo(tmp_path / "in" / "a.jpg")
    _photo(tmp_path / "in" / "sub" / "b.jpg")
    (tmp_path / "in" / "notes.txt").write_text("ignored: not an image extension")
    r = _run(str(tmp_path / "in" / "*.jpg"), "-o", str(tmp_path / "g"), "--model", str(identity_model))
    assert r.exit_code == 0 and sorted(p.name for p in (tmp_path / "g").iterdir()) == ["a.jpg"]
    r = _run(str(tmp_path / "in"), "-r", "-o", str(tmp_path / "r"), "--ext", "png", "--model", str(identity_model))
    assert r.exit_code == 0, r.output
    assert (tmp_path / "r" / "a.png").exists() and (tmp_path / "r" / "sub" / "b.png").exists()


def test_usage_errors_exit_2(tmp_path: Path, identity_model: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _run(str(empty), "--model", str(identity_model)).exit_code == 2
    a = _photo(tmp_path / "a.png")
    b = _photo(tmp_path / "b.png")
    assert _run(str(a), str(b), "-o", str(tmp_path / "one.png"), "--model", str(identity_model)).exit_code == 2
    assert _run(str(a), "--tile", "big", "--model", str(identity_model)).exit_code == 2
    assert _run(str(a), "--ext", "xyz", "--model", str(identity_model)).exit_code == 2
    assert runner.invoke(app, ["restore"]).exit_code == 2


def test_missing_file_and_missing_model(tmp_path: Path, identity_model: Path) -> None:
    a = _photo(tmp_path / "a.png")
    r = _run(str(a), str(tmp_path / "nope.jpg"), "-o", str(tmp_path / "o"), "--model", str(identity_model))
    assert r.exit_code == 1 and "nope.jpg: no such file or folder" in r.stderr
    r = _run(str(a), "-o", str(tmp_path / "o2"), "--model", str(tmp_path / "gone.json"))
    assert r.exit_code == 1 and "gone.json: no such model file" in r.stderr
    assert not (tmp_path / "o2" / "a.png").exists()


def test_tiled_cli_run_and_precision(tmp_path: Path, random_model: Path) -> None:
    a = _photo(tmp_path / "a.png", 70, 90)
    r = _run(str(a), "-o", str(tmp_path / "t.png"), "--model", str(random_model), "--tile", "32", "--tile-overlap", "8", "--precision", "bf16")
    assert r.exit_code == 0, r.output
    assert PILImage.open(tmp_path / "t.png").size == (90, 70)


def test_console_script_entry_point(tmp_path: Path, identity_model: Path) -> None:
    a = _photo(tmp_path / "a.png")
    exe = Path(sys.executable).with_name("uniremoval")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "uniremoval"]
    p = subprocess.run(cmd + ["restore", str(a), str(tmp_path / "missing.png"), "--model", str(identity_model)], capture_output=True, text=True)
    assert p.returncode == 1
    assert "missing.png: no such file or folder" in p.stderr
    assert (tmp_path / "a_restored.png").exists()
    p = subprocess.run(cmd + ["info"], capture_output=True, text=True)
    assert p.returncode == 0 and "uniremoval" in p.stdout and "architectures" in p.stdout


def test_rerun_on_a_folder_does_not_restore_its_own_outputs(tmp_path: Path, identity_model: Path) -> None:
    src = tmp_path / "photos"
    _photo(src / "a.png")
    assert _run(str(src), "--model", str(identity_model)).exit_code == 0
    assert (src / "a_restored.png").exists()
    r = _run(str(src), "--model", str(identity_model), "--skip-existing")
    assert r.exit_code == 0 and not (src / "a_restored_restored.png").exists()
    assert _run(str(src), "-r", "-o", str(src / "out"), "--model", str(identity_model)).exit_code == 0
    r = _run(str(src), "-r", "-o", str(src / "out"), "--model", str(identity_model), "--skip-existing")
    assert r.exit_code == 0 and not (src / "out" / "out").exists()
