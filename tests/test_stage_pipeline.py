"""The default-model pipeline (``uniremoval train pipeline``) end to end on tiny made-up photos
with tiny networks: it produces a loadable ``final/default.json``, a rerun trains nothing, and
a run stopped mid-way (in-process, and a real SIGKILL of the CLI) resumes and finishes.
Nothing here reads /work/shared."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from uniremoval.data.io import write_png
from uniremoval.stages.pipeline import load_pipeline_config, run_pipeline, stage_configs
from uniremoval.train.config import ConfigError

ROOT = Path(__file__).resolve().parents[1]

#: A pipeline a few seconds long: the tiny stage configs cut to a handful of steps.
TINY_PIPELINE = f"""
kinds: [haze, rain, blur]
teacher:
  config: {ROOT / 'configs' / 'tiny_teacher.yaml'}
  set: [run.steps=6, run.ckpt_every=3, run.val_every=6, data.val_count=2, data.epoch_size=64, data.batch_size=4]
transfer:
  config: {ROOT / 'configs' / 'tiny_transfer.yaml'}
  set: [run.steps=6, run.ckpt_every=3, run.val_every=6, data.epoch_size=48]
adapt:
  config: {ROOT / 'configs' / 'tiny_adapt.yaml'}
  set: [run.steps=4, run.ckpt_every=2, run.val_every=4, data.val_count=2, data.real_val_count=0]
split: {{holdout: 0.34, seed: 0}}
eval: {{count: 2, crop: 48, device: cpu}}
"""


def _photo(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A smooth made-up photo with a few rectangles (edges for blur and rain to act on)."""
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([0.3 + 0.5 * x, 0.2 + 0.6 * y, 0.5 + 0.3 * np.sin(6 * x * y)], axis=-1)
    for _ in range(3):
        y0, x0 = rng.integers(0, h - 16), rng.integers(0, w - 16)
        img[y0 : y0 + rng.integers(8, 24), x0 : x0 + rng.integers(8, 24)] = rng.random(3)
    return np.clip(img + 0.02 * rng.standard_normal(img.shape), 0, 1).astype(np.float32)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """clean/ (training), val/, real/{hazy,rain,blur}/ and the tiny pipeline YAML."""
    root = tmp_path_factory.mktemp("pipeline")
    rng = np.random.default_rng(0)
    for i in range(4):
        write_png(root / "clean" / f"c{i}.png", _photo(rng, 64, 72))
    for i in range(2):
        write_png(root / "val" / f"v{i}.png", _photo(rng, 56, 56))
    for sub in ("hazy", "rain", "blur"):
        for i in range(3):
            img = _photo(rng, 48, 64)
            write_png(root / "real" / sub / f"{sub}{i}.png", 0.5 * img + 0.45 if sub == "hazy" else img)
    (root / "pipeline.yaml").write_text(TINY_PIPELINE)
    return root


def _sets(world: Path, out: Path) -> list[str]:
    return [f"clean_dir={world / 'clean'}", f"val_dir={world / 'val'}", f"real_dir={world / 'real'}", f"out_dir={out}"]


def test_config_is_validated(world: Path, tmp_path: Path) -> None:
    sets = _sets(world, tmp_path / "o")
    with pytest.raises(ConfigError, match="unknown key"):
        load_pipeline_config(world / "pipeline.yaml", sets + ["eval.cunt=3"])
    with pytest.raises(ConfigError, match="real_dir"):
        load_pipeline_config(world / "pipeline.yaml", sets + [f"real_dir={tmp_path / 'nope'}"])
    with pytest.raises(ConfigError, match="final.stage"):
        load_pipeline_config(world / "pipeline.yaml", sets + ["final.stage=stage3"])
    with pytest.raises(ConfigError, match="transfer.data.batch_size|batch_size"):
        load_pipeline_config(world / "pipeline.yaml", sets + ["transfer.set=[data.batch_size=x]"])
    cfg = load_pipeline_config(world / "pipeline.yaml", sets)
    names = list(stage_configs(cfg))
    assert names == ["teacher-haze", "teacher-rain", "teacher-blur", "transfer", "adapt"]


def test_end_to_end_then_rerun_skips(world: Path, tmp_path: Path) -> None:
    from uniremoval import Restorer, load_model

    out = tmp_path / "out"
    cfg = load_pipeline_config(world / "pipeline.yaml", _sets(world, out))
    res = run_pipeline(cfg, log=lambda s: None)
    assert res.ran == ["split", "teacher-haze", "teacher-rain", "teacher-blur", "transfer", "adapt", "eval"]
    final = out / "final" / "default.json"
    assert res.final == final and final.is_file() and final.with_suffix(".safetensors").is_file()
    m = load_model(final)
    assert m.config.kinds == ["haze", "rain", "blur"]
    assert m.config.provenance["pipeline_inputs"]["transfer"].endswith("transfer.json")
    img = _photo(np.random.default_rng(1), 40, 52)
    restored = Restorer.from_pretrained(str(final), device="cpu").restore_pixels(img)
    assert restored.shape == img.shape and np.isfinite(restored).all()
    # The report has every row on both sets; the held-out photos are never in the training side.
    report = (out / "report" / "report.md").read_text()
    for row in ("input", "dcp", "teachers", "stage1-student", "stage2-student"):
        assert f"| {row} " in report or f"{row} |" in report, row
    assert "`stage2-student` (final.stage: adapt)" in report
    assert m.config.provenance["source_sha256"] == load_model(res.adapt).config.sha256
    paired = json.loads((out / "report" / "paired_summary.json").read_text())
    assert set(paired["means"]["stage2-student"]) >= {"haze", "rain", "blur"}
    real = json.loads((out / "report" / "real_summary.json").read_text())
    assert "niqe" in real["means"]["stage2-student"]["all"]
    split = json.loads((out / "split" / "split.json").read_text())
    held = {f["path"] for f in split["files"] if f["side"] == "heldout"}
    assert held and not any((out / "split" / "train" / p).exists() for p in held)

    # A rerun trains and evaluates nothing and is quick.
    t0 = time.perf_counter()
    again = run_pipeline(load_pipeline_config(world / "pipeline.yaml", _sets(world, out)), log=lambda s: None)
    assert again.ran == [] and again.final == final
    assert time.perf_counter() - t0 < 10
    # A changed stage config (more adaptation steps) re-enters that stage only (it resumes).
    more = run_pipeline(load_pipeline_config(world / "pipeline.yaml", _sets(world, out) + ["adapt.set=[run.steps=6]"]), log=lambda s: None)
    assert more.ran == ["adapt", "eval"]
    # final.stage=transfer ships the stage-1 student instead, with nothing retrained.
    s1 = run_pipeline(load_pipeline_config(world / "pipeline.yaml", _sets(world, out) + ["adapt.set=[run.steps=6]", "final.stage=transfer"]), log=lambda s: None)
    assert s1.ran == ["eval"] and s1.final == final
    assert load_model(final).config.provenance["source_sha256"] == load_model(s1.transfer).config.sha256
    assert load_model(final).config.provenance["pipeline_inputs"]["shipped_stage"] == "transfer"
    assert "`stage1-student` (final.stage: transfer)" in (out / "report" / "report.md").read_text()


def test_stop_mid_transfer_resumes_and_pretrained_teachers(world: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    cfg = load_pipeline_config(world / "pipeline.yaml", _sets(world, out))
    res = run_pipeline(cfg, log=lambda s: None, stop_after={"transfer": 3})
    assert res.final is None and res.ran[-1] == "transfer"
    assert (out / "runs" / "transfer" / "ckpt").is_dir()
    lines: list[str] = []
    res = run_pipeline(load_pipeline_config(world / "pipeline.yaml", _sets(world, out)), log=lines.append)
    assert res.ran == ["transfer", "adapt", "eval"] and res.final is not None
    # Given teachers skip stage 0 for their kinds.
    haze = out / "runs" / "teacher-haze" / "export" / "teacher-haze.json"
    cfg2 = load_pipeline_config(world / "pipeline.yaml", _sets(world, tmp_path / "out2") + [f"teachers.haze={haze}", "teachers.rain=" + str(haze)])
    assert list(stage_configs(cfg2)) == ["teacher-blur", "transfer", "adapt"]
    assert stage_configs(cfg2)["transfer"].teachers["haze"] == str(haze)


def test_cli_sigkill_resume(world: Path, tmp_path: Path) -> None:
    """SIGKILL the CLI once the teachers are exported; the same command finishes the rest."""
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "uniremoval", "train", "pipeline", "--config", str(world / "pipeline.yaml")]
    for s in _sets(world, out) + ["transfer.set=[run.steps=40,run.ckpt_every=3,run.val_every=40,data.epoch_size=48]"]:
        cmd += ["--set", s]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    ckpt = out / "runs" / "transfer" / "ckpt" / "last.pt"
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None and not ckpt.is_file():
        time.sleep(0.2)
    assert proc.poll() is None, "finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (out / "runs" / "teacher-blur" / "export" / "teacher-blur.json").is_file()
    assert not (out / "final" / "default.json").exists()

    from uniremoval.cli import app

    r = CliRunner().invoke(app, cmd[3:])
    assert r.exit_code == 0, r.output
    assert (out / "final" / "default.json").is_file() and "final model" in r.output
    assert "resumed" in r.output  # transfer continued from its checkpoint, not from scratch


def test_cli_dry_run_and_bad_config(world: Path, tmp_path: Path) -> None:
    from uniremoval.cli import app

    args = ["train", "pipeline", "--config", str(world / "pipeline.yaml")]
    for s in _sets(world, tmp_path / "o"):
        args += ["--set", s]
    r = CliRunner().invoke(app, args + ["--dry-run"])
    assert r.exit_code == 0, r.output
    assert "# ---- stage transfer" in r.output and "clean_dir:" in r.output
    assert not (tmp_path / "o").exists()
    r = CliRunner().invoke(app, args + ["--set", "adapt.set=[gan.nope=1]"])
    assert r.exit_code == 2 and "nope" in r.output


def test_stage_configs_keep_folder_names_whole(world: Path, tmp_path: Path) -> None:
    """The pipeline hands its folders to the stages as values, not as ``key=value`` text that is
    read as YAML again: `` #2`` would start a comment, ``: `` a mapping."""
    odd = tmp_path / "my photos #2"
    shutil.copytree(world / "clean", odd)
    out = tmp_path / "out: x #3"
    sets = [f"clean_dir={json.dumps(str(odd))}", f"val_dir={world / 'val'}", f"real_dir={world / 'real'}", f"out_dir={json.dumps(str(out))}"]
    cfg = load_pipeline_config(world / "pipeline.yaml", sets)
    assert cfg.clean_dir == str(odd) and cfg.out_dir == str(out)
    stages = stage_configs(cfg)
    for name, sc in stages.items():
        assert sc.data.clean_dir == str(odd), name
        assert sc.run.out_dir == str(out / "runs"), name
    assert stages["adapt"].data.real_dir == str(out / "split" / "train")
    assert stages["adapt"].student == str(out / "runs" / "transfer" / "export" / "transfer.json")
    assert stages["transfer"].teachers["haze"] == str(out / "runs" / "teacher-haze" / "export" / "teacher-haze.json")


def test_export_recorded_under_old_key_names_is_done(world: Path, tmp_path: Path) -> None:
    """An export whose recorded stage config says ``data.batch_size`` (the old name of
    ``data.images_per_step``) still counts as done when the values are the same."""
    from uniremoval import nets
    from uniremoval.modelfile import save_model
    from uniremoval.stages.pipeline import stage_done
    from uniremoval.train.config import to_dict

    cfg = load_pipeline_config(world / "pipeline.yaml", _sets(world, tmp_path / "o"))
    tc = stage_configs(cfg)["transfer"]
    path = Path(tc.run.out_dir) / tc.run.name / "export" / f"{tc.run.name}.json"
    net = nets.build(tc.model.arch, **tc.model.args)

    def export(recorded: dict) -> None:  # type: ignore[type-arg]
        save_model(net, path, tc.model.arch, dict(tc.model.args), list(tc.teachers), {"stage_config": recorded})

    old = to_dict(tc)
    old["data"]["batch_size"] = old["data"].pop("images_per_step")
    export(old)
    assert stage_done(tc) == path
    old["data"]["batch_size"] += len(tc.teachers)
    export(old)
    assert stage_done(tc) is None
