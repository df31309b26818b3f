"""Manifests: a JSON list of files (relative path, size, sha256) and a check against it."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from .io import write_atomic

MANIFEST_VERSION = 1


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class ManifestReport:
    """Result of `verify_manifest`: files missing, changed (size or hash) and fine."""

    missing: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    ok: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.missing and not self.changed


def build_manifest(root: Path, files: Iterable[Path]) -> dict:
    """The manifest dict for `files` (absolute or relative to `root`)."""
    root = Path(root).resolve()
    entries = []
    for f in sorted({(root / p).resolve() for p in files}):
        entries.append({"path": f.relative_to(root).as_posix(), "size": f.stat().st_size, "sha256": sha256_file(f)})
    return {"version": MANIFEST_VERSION, "files": entries}


def write_manifest(root: Path, files: Iterable[Path], out: Path | None = None) -> Path:
    """Write a manifest of `files` (paths stored relative to `root`) to `out`
    (default `root/manifest.json`), atomically. Returns the path written."""
    out = Path(out) if out is not None else Path(root) / "manifest.json"
    data = build_manifest(Path(root), files)
    write_atomic(out, lambda f: f.write(json.dumps(data, indent=1).encode()))
    return out


def verify_manifest(manifest: Path, root: Path | None = None) -> ManifestReport:
    """Check the files listed in `manifest` under `root` (default: the manifest's folder)."""
    manifest = Path(manifest)
    data = json.loads(manifest.read_text())
    base = Path(root) if root is not None else manifest.parent
    rep = ManifestReport()
    for e in data["files"]:
        p = base / e["path"]
        if not p.is_file():
            rep.missing.append(e["path"])
        elif p.stat().st_size != e["size"] or sha256_file(p) != e["sha256"]:
            rep.changed.append(e["path"])
        else:
            rep.ok.append(e["path"])
    return rep


class ManifestMixin:
    """Gives a dataset `write_manifest` / `verify_manifest` from its `root` and `files()`."""

    root: Path

    def files(self) -> list[Path]:  # pragma: no cover - overridden
        raise NotImplementedError

    def write_manifest(self, out: Path | None = None) -> Path:
        """Write a manifest of this dataset's files (relative to its root)."""
        return write_manifest(self.root, self.files(), out)

    def verify_manifest(self, manifest: Path | None = None) -> ManifestReport:
        """Verify this dataset's files against a manifest (default `root/manifest.json`)."""
        return verify_manifest(Path(manifest) if manifest else Path(self.root) / "manifest.json", self.root)
