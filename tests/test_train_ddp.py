"""Data-parallel training with torchrun on 2 CPU processes (gloo)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

from uniremoval.train import checkpoint as ckpt

HERE = Path(__file__).resolve().parent


def _launch(tmp: Path, nproc: int, name: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           str(HERE / "test_train_toydata.py"), "--out", str(tmp), "--dump", str(tmp / name),
           "--set", "run.steps=20", "--set", "run.ckpt_every=10", "--set", "run.val_every=10", "--set", f"run.name={name}",
           "--set", "run.threads=1"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=180)


def test_two_process_ddp_matches_one_process(tmp_path: Path) -> None:
    res = _launch(tmp_path, 2, "ddp")
    assert res.returncode == 0, res.stderr[-3000:]
    state = ckpt.load(tmp_path / "ddp" / "ckpt" / "last.pt")
    assert state["step"] == 20 and state["world_size"] == 2
    assert (tmp_path / "ddp" / "export" / "ddp.json").is_file()
    r0 = torch.load(tmp_path / "ddp.rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "ddp.rank1.pt", weights_only=True)
    for k in r0:  # DDP keeps the replicas identical
        assert torch.equal(r0[k], r1[k]), k
    for k in r0:  # rank 0 wrote the checkpoint of those weights
        assert torch.equal(r0[k], state["components"]["net"]["module"][k]), k
    # The same config on 1 process sees the same global batches: same weights up to float
    # summation order (gradients are averaged over 2 x 4 instead of 1 x 8 samples).
    single = _launch(tmp_path, 1, "single")
    assert single.returncode == 0, single.stderr[-3000:]
    s0 = torch.load(tmp_path / "single.rank0.pt", weights_only=True)
    worst = max(float((r0[k] - s0[k]).abs().max()) for k in r0)
    assert worst < 1e-3, worst
