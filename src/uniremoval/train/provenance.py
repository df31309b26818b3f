"""What an export records about where it came from: input model files by content, the code's commit."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any, Mapping


def input_models(config: Any) -> dict[str, dict[str, str]]:
    """The model files a stage starts from (``model.init``, ``student``, ``teachers.<kind>``),
    each with the sha256 of its weights, so that an export names its lineage by content: a
    path alone points at a cache folder that may be gone or hold other weights by then."""
    from ..modelfile import ModelError, read_config

    paths: dict[str, str] = {}
    init = getattr(getattr(config, "model", None), "init", None)
    if isinstance(init, str) and init:
        paths["model.init"] = init
    student = getattr(config, "student", None)
    if isinstance(student, str) and student:
        paths["student"] = student
    teachers = getattr(config, "teachers", None)
    if isinstance(teachers, Mapping):
        paths.update({f"teachers.{k}": v for k, v in teachers.items() if isinstance(v, str)})
    out: dict[str, dict[str, str]] = {}
    for key, path in paths.items():
        try:
            cfg, json_path = read_config(os.path.expanduser(path))
            out[key] = {"path": str(json_path), "sha256": cfg.sha256}
        except ModelError as e:  # recorded, not fatal: the stage itself loaded what it used
            out[key] = {"path": path, "error": str(e)}
    return out


def git_commit() -> str | None:
    """The source tree's git commit (with ``-dirty`` when modified), or None outside git."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here, capture_output=True, text=True, timeout=5)
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None
