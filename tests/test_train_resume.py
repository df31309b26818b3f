"""Checkpoint/resume: a resumed run ends with exactly the weights of an uninterrupted one
(CPU, deterministic), also after a real SIGKILL of a training process."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_train_toydata import ToyPairs, tiny_config, val_items  # noqa: E402

from uniremoval.stages.teacher import train_teacher  # noqa: E402
from uniremoval.train import checkpoint as ckpt  # noqa: E402

HERE = Path(__file__).resolve().parent


def _run(out: Path, steps: int, stop_after: int | None = None, *extra: str) -> Path:
    cfg = tiny_config(out, f"run.steps={steps}", "run.ckpt_every=10", "run.val_every=20", *extra)
    train_teacher(cfg, ToyPairs(cfg.data.crop, length=40), val_items(2, 32), stop_after=stop_after)
    return out / cfg.run.name / "ckpt" / "last.pt"


def _assert_same_state(a: dict, b: dict) -> None:
    assert a["step"] == b["step"] and a["epoch"] == b["epoch"] and a["batch_pos"] == b["batch_pos"]
    ca, cb = a["components"]["net"], b["components"]["net"]
    for key in ca["module"]:
        assert torch.equal(ca["module"][key], cb["module"][key]), key
    for key in ca["ema"]["module"]:
        assert torch.equal(ca["ema"]["module"][key], cb["ema"]["module"][key]), key
    for i, sa in ca["optimizer"]["state"].items():
        sb = cb["optimizer"]["state"][i]
        assert all(torch.equal(sa[k], sb[k]) for k in ("exp_avg", "exp_avg_sq", "step"))
    assert ca["scheduler"]["last_epoch"] == cb["scheduler"]["last_epoch"]
    assert a["best"] == b["best"]


def test_resume_equals_uninterrupted(tmp_path: Path) -> None:
    # 40 items / batch 8 = 5 batches per epoch: 30 steps cross epoch boundaries, and the
    # stop at step 20 lands mid-epoch.
    full = ckpt.load(_run(tmp_path / "full", 30))
    part = _run(tmp_path / "part", 30, stop_after=20)
    assert ckpt.load(part)["step"] == 20
    resumed = ckpt.load(_run(tmp_path / "part", 30))
    _assert_same_state(full, resumed)
    assert (tmp_path / "part" / "tiny-teacher" / "config.yaml").is_file()
    assert (tmp_path / "part" / "tiny-teacher" / "export" / "tiny-teacher.json").is_file()


def test_sigkill_leaves_loadable_checkpoint_and_resume_is_exact(tmp_path: Path) -> None:
    steps = 120
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "test_train_toydata.py"), "--out", str(tmp_path / "killed"), "--set", f"run.steps={steps}",
         "--set", "run.ckpt_every=5", "--set", "run.val_every=1000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
    )
    last = tmp_path / "killed" / "tiny-teacher" / "ckpt" / "last.pt"
    try:
        deadline = time.monotonic() + 60
        while not last.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        time.sleep(0.4)  # let it run on: the kill lands at an arbitrary point, likely mid-write
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert last.exists(), proc.stderr.read().decode() if proc.stderr else ""
    state = ckpt.load(last)  # atomic write: always a complete file
    killed_at = state["step"]
    assert killed_at % 5 == 0 and 0 < killed_at < steps  # killed mid-run
    # Resume in this process with the script's data (ToyPairs of the tiny config's crop).
    cfg_extra = ("run.val_every=1000", "run.ckpt_every=5")

    def run(out: Path) -> dict:
        from test_train_toydata import tiny_config as tc

        cfg = tc(out, f"run.steps={steps}", *cfg_extra)
        train_teacher(cfg, ToyPairs(cfg.data.crop), val_items())
        return ckpt.load(out / "tiny-teacher" / "ckpt" / "last.pt")

    resumed = run(tmp_path / "killed")
    full = run(tmp_path / "full")
    _assert_same_state(full, resumed)
