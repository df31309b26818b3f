"""`uniremoval data check`: find missing pairs, size mismatches and unreadable files."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..image_io import scan_images
from .io import check_image
from .layouts import find_pairs
from .paired import PairReport, size_mismatches


@dataclass
class CheckReport:
    """What `check_dataset` found. `layout` is "clean" when no pairs were found (a folder of
    single images, checked for readability only)."""

    root: Path
    layout: str
    pairs: int = 0
    images: int = 0
    missing: list[tuple[Path, str]] = field(default_factory=list)
    mismatched: list[tuple[Path, str]] = field(default_factory=list)
    unreadable: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def problems(self) -> int:
        return len(self.missing) + len(self.mismatched) + len(self.unreadable)


def check_dataset(root: Path, layout: str = "auto", full: bool = True) -> CheckReport:
    """Check the dataset under `root`: pairs by `layout` (or auto-detected), else a flat
    folder of images. `full` decodes every image, catching truncated files."""
    root = Path(root)
    rep: PairReport = find_pairs(root, layout)
    if not rep.pairs and layout == "auto" and not rep.problems:
        files, skipped = scan_images(root, recursive=True)
        out = CheckReport(root, "clean", images=len(files))
        out.unreadable += skipped  # link loops, broken links, folders that cannot be listed
        for f in files:
            reason = check_image(f, full)
            if reason:
                out.unreadable.append((f, reason))
        return out
    out = CheckReport(root, rep.layout, pairs=len(rep.pairs))
    out.missing += [(p, "input has no target") for p in rep.unmatched_inputs]
    out.missing += [(p, "target has no input") for p in rep.unmatched_targets]
    files = sorted({p.input for p in rep.pairs} | {p.target for p in rep.pairs})
    out.images = len(files)
    bad = set()
    for f in files:
        reason = check_image(f, full)
        if reason:
            out.unreadable.append((f, reason))
            bad.add(f)
    ok_pairs = [p for p in rep.pairs if p.input not in bad and p.target not in bad]
    out.mismatched += [(p.input, f"{reason} (target {p.target})") for p, reason in size_mismatches(ok_pairs)]
    return out
