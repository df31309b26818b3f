"""Batch restore sharded over 2 CPU processes with torchrun."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from uniremoval.jobs import Job, Shard


def test_shards_are_disjoint_and_cover_everything() -> None:
    jobs = [Job(Path(f"{i}.png"), Path(f"out/{i}.png")) for i in range(11)]
    parts = [Shard(r, 3).take(jobs) for r in range(3)]
    outs = [j.dst for p in parts for j in p]
    assert len(outs) == len(set(outs)) == 11


def _torchrun(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "uniremoval", "restore", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


@pytest.mark.slow
def test_two_process_restore_splits_work_and_reruns_skip(tmp_path: Path, identity_model: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(7):
        Image.fromarray((rng.random((20, 24, 3)) * 255).astype(np.uint8)).save(src / f"p{i}.png")
    (src / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    p = _torchrun([str(src), "-o", str(out), "--model", str(identity_model), "--device", "cpu"], tmp_path)
    assert p.returncode != 0  # the broken file fails on whichever rank owns it
    assert sorted(f.name for f in out.iterdir()) == [f"p{i}.png" for i in range(7)]
    assert "rank 0/2 done" in p.stderr and "rank 1/2 done" in p.stderr
    assert "all 2 ranks: restored 7, skipped 0, failed 1" in p.stderr
    assert p.stderr.count("broken.png: not an image") >= 1
    mtimes = {f.name: f.stat().st_mtime_ns for f in out.iterdir()}
    (out / "p3.png").unlink()  # an interrupted run: one output missing
    p = _torchrun([str(src), "-o", str(out), "--model", str(identity_model), "--device", "cpu"], tmp_path)
    assert "all 2 ranks: restored 1, skipped 6, failed 1" in p.stderr, p.stderr
    for name, t in mtimes.items():
        if name != "p3.png":
            assert (out / name).stat().st_mtime_ns == t  # nothing written twice
