"""Deterministic train / held-out split of a folder of real photos (stage 2's evaluation).

Stage 2 trains on real photos, so its real-photo scores must come from photos it never saw.
Rule (stable, order-free, reproducible from the manifest): within each top-level kind folder
(``hazy/``, ``rain/``, ``blur/``, ...; files directly under the root form their own group),
files are ranked by ``sha256(f"{seed}:{relative path}")`` and the first
``round(holdout * n)`` (at least 1 when n >= 2) are held out. Adding a photo never moves
another photo between the sides unless it lands in the held-out prefix of its group.

The split is materialised as two folders of symbolic links (or copies) keeping the kind
subfolders, so ``uniremoval train adapt --real OUT/train`` and
``uniremoval eval --real OUT/heldout`` read them like any photo folder, plus
``OUT/split.json`` listing every file, its side and its hash.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from ..data.io import list_images


def split_key(rel: str, seed: int) -> str:
    """The ranking key of a file (hex sha256 of ``"seed:relative/path"``)."""
    return hashlib.sha256(f"{seed}:{rel}".encode()).hexdigest()


def plan_split(root: Path, holdout: float = 0.25, seed: int = 0) -> dict[str, Any]:
    """Which files of ``root`` are held out (see the module docstring); nothing is written."""
    if not 0.0 < holdout < 1.0:
        raise ValueError("holdout must be in (0, 1)")
    root = Path(root)
    groups: dict[str, list[str]] = {}
    for p in list_images(root, True):
        rel = p.relative_to(root).as_posix()
        groups.setdefault(rel.split("/")[0] if "/" in rel else ".", []).append(rel)
    files: list[dict[str, Any]] = []
    for group in sorted(groups):
        ranked = sorted(groups[group], key=lambda r: (split_key(r, seed), r))
        n = len(ranked)
        k = round(holdout * n)
        if n >= 2:
            k = min(max(k, 1), n - 1)  # both sides non-empty
        else:
            k = 0
        held = set(ranked[:k])
        for rel in sorted(groups[group]):
            files.append({"path": rel, "group": group, "side": "heldout" if rel in held else "train", "key": split_key(rel, seed)})
    counts: dict[str, dict[str, int]] = {}
    for f in files:
        counts.setdefault(f["group"], {"train": 0, "heldout": 0})[f["side"]] += 1
    return {
        "root": str(root.resolve()), "seed": seed, "holdout": holdout,
        "rule": "per top-level folder: rank by sha256(f'{seed}:{relpath}'), hold out the first round(holdout*n) (>=1 and <=n-1 when n>=2)",
        "counts": counts, "files": files,
    }


def write_split(root: Path, out: Path, holdout: float = 0.25, seed: int = 0, copy: bool = False) -> dict[str, Any]:
    """Plan the split and materialise ``out/train`` and ``out/heldout`` (links or copies) and
    ``out/split.json``. Rerunning with the same arguments gives the same result."""
    plan = plan_split(root, holdout, seed)
    out = Path(out)
    for side in ("train", "heldout"):
        if (out / side).exists():
            shutil.rmtree(out / side)
    for f in plan["files"]:
        src = (Path(root) / f["path"]).resolve()
        dst = out / f["side"] / f["path"]
        dst.parent.mkdir(parents=True, exist_ok=True)
        if copy:
            shutil.copy2(src, dst)
        else:
            os.symlink(src, dst)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".split.json.tmp"
    tmp.write_text(json.dumps(plan, indent=1) + "\n")
    os.replace(tmp, out / "split.json")
    return plan
