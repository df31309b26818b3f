"""What a `uniremoval restore` run did, per input: the `--report out.json` records and the
end-of-run summary (also after Ctrl-C, with how to resume)."""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..jobs import Job

#: Statuses a record can end with; ``planned`` only appears in ``--dry-run`` reports.
STATUSES = ("restored", "failed", "refused", "skipped", "not_done", "planned")


@dataclass
class Record:
    """One input of a run: where it went, what happened and why, and how long it took."""

    input: str
    output: str | None
    status: str
    reason: str | None = None
    width: int | None = None
    height: int | None = None
    input_bytes: int | None = None
    output_bytes: int | None = None
    seconds: float | None = None


@dataclass
class RunReport:
    """Records of every input of a run, in plan order."""

    records: list[Record] = field(default_factory=list)
    interrupted: bool = False

    @classmethod
    def from_jobs(cls, jobs: list[Job], dry_run: bool = False) -> "RunReport":
        """Start a report: refused and skipped jobs are final, the rest not done yet."""
        todo = "planned" if dry_run else "not_done"
        recs = []
        for job in jobs:
            status, reason = ("refused", job.error) if job.error else ("skipped", job.skip) if job.skip else (todo, None)
            recs.append(Record(str(job.src), None if job.dst is None else str(job.dst), status, reason))
        return cls(recs)

    def finish(self, index: int, status: str, reason: str | None = None, seconds: float | None = None) -> None:
        """Mark record ``index`` done (restored or failed) and fill in its sizes."""
        rec = self.records[index]
        rec.status, rec.reason, rec.seconds = status, reason, None if seconds is None else round(seconds, 3)
        rec.input_bytes = _size(rec.input)
        if status == "restored" and rec.output is not None:
            rec.output_bytes = _size(rec.output)
        rec.width, rec.height = _dimensions(rec.input)

    def count(self, status: str) -> int:
        """How many records have ``status``."""
        return sum(r.status == status for r in self.records)

    def write(self, path: Path) -> None:
        """Write the report as JSON atomically (a reader never sees half a file)."""
        counts = {s: self.count(s) for s in STATUSES if self.count(s)}
        doc = {"interrupted": self.interrupted, "counts": counts, "records": [asdict(r) for r in self.records]}
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(doc, f, indent=1)
                f.write("\n")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _size(path: str) -> int | None:
    try:
        return os.stat(path).st_size
    except OSError:
        return None


def _dimensions(path: str) -> tuple[int | None, int | None]:
    """Width and height from the file's header (no decode); None when it cannot be read."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return int(im.width), int(im.height)
    except Exception:  # a failed input has no trustworthy size; the record says why it failed
        return None, None
