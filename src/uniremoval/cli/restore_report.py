"""What a `uniremoval restore` run did, per input: the `--report out.json` records and the
end-of-run summary (also after Ctrl-C, with how to resume)."""
from __future__ import annotations

import json
import os
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
        """Mark record ``index`` done (restored or failed)."""
        rec = self.records[index]
        rec.status, rec.reason, rec.seconds = status, reason, None if seconds is None else round(seconds, 3)

    def count(self, status: str) -> int:
        """How many records have ``status``."""
        return sum(r.status == status for r in self.records)

    def write(self, path: Path) -> None:
        """Fill in the sizes of the inputs that ran (only now: a run without ``--report``
        reads no headers) and write the report as JSON atomically."""
        from ..image_io import ImageReadError, atomic_write_bytes, image_size

        for rec in self.records:
            if rec.status in ("restored", "failed"):
                rec.input_bytes = _size(rec.input)
                if rec.status == "restored" and rec.output is not None:
                    rec.output_bytes = _size(rec.output)
                try:
                    rec.height, rec.width = image_size(rec.input)
                except ImageReadError:  # a failed input has no trustworthy size; its reason says why
                    pass
        counts = {s: self.count(s) for s in STATUSES if self.count(s)}
        doc = {"interrupted": self.interrupted, "counts": counts, "records": [asdict(r) for r in self.records]}
        atomic_write_bytes(path, (json.dumps(doc, indent=1) + "\n").encode())


def _size(path: str) -> int | None:
    try:
        return os.stat(path).st_size
    except OSError:
        return None
