"""Turning command-line inputs (files, folders, globs) into restore jobs: which input is
written where, and which jobs are refused before any work starts (an output that would
overwrite an input, two inputs with the same output, an output that already exists)."""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from .image_io import FORMATS, link_problem, scan_images

GLOB_CHARS = frozenset("*?[")


@dataclass
class Job:
    """One input and where its restored image goes; ``error``/``skip`` say why it won't run."""

    src: Path
    dst: Path | None = None
    error: str | None = None
    skip: str | None = None


class UsageError(Exception):
    """The command line cannot be turned into jobs at all (exit status 2)."""


def safe_resolve(p: Path) -> Path:
    """``p.resolve()`` that never raises: a path through a symlink loop resolves to its
    absolute, unresolved self (a loop is reported per entry by :func:`link_problem`)."""
    try:
        return p.resolve()
    except (RuntimeError, OSError):
        return Path(os.path.abspath(p))


def collect_inputs(inputs: list[str], recursive: bool = False) -> list[tuple[Path, Path | None, str | None]]:
    """Expand files, folders and glob patterns into ``(file, folder it came from or None,
    problem or None)``.

    A folder contributes the image files in it (by extension, through the one scanner that
    datasets use too), sorted; an entry the scanner could not follow (a symbolic link loop, a
    broken link, a folder it cannot list) comes with its one-line problem, so it is reported
    and the rest still runs. A missing path or a glob that matches nothing is kept so that it
    is reported as a failure.
    """
    found: list[tuple[Path, Path | None, str | None]] = []
    for raw in inputs:
        p = Path(raw).expanduser()
        if p.is_dir():
            files, skipped = scan_images(p, recursive)
            entries = [(f, p, None) for f in files] + [(f, p, why) for f, why in skipped]
            found.extend(sorted(entries, key=lambda e: e[0]))
        elif p.exists() or p.is_symlink() or not (GLOB_CHARS & set(raw)):
            found.append((p, None, None))
        else:
            matches = sorted(glob.glob(os.path.expanduser(raw), recursive=recursive))
            files = [Path(m) for m in matches if not Path(m).is_dir()]
            if not files:
                found.append((p, None, None))  # reported as "no such file"
            found.extend((f, None, None) for f in files)
    return found


def unsearched_subfolders(inputs: list[str], recursive: bool) -> list[tuple[Path, int]]:
    """Folder inputs whose sub-folders a run without ``-r`` does not search: ``(folder,
    number of non-hidden sub-folders)`` for each, so the user can be told to add ``-r``."""
    if recursive:
        return []
    found = []
    for raw in inputs:
        p = Path(raw).expanduser()
        if p.is_dir():
            try:
                subs = sum(1 for f in p.iterdir() if f.is_dir() and not f.name.startswith("."))
            except OSError:
                continue
            if subs:
                found.append((p, subs))
    return found


def check_output_arg(out: str | None) -> None:
    """Refuse an ``-o`` that is neither an image file name nor clearly a folder: ``-o
    out.xyz`` would otherwise silently become a folder named ``out.xyz``."""
    if out is None:
        return
    p = Path(out).expanduser()
    if p.suffix and p.suffix.lower() not in FORMATS and not p.is_dir() and not out.endswith(("/", os.sep)):
        raise UsageError(
            f"-o {out}: {p.suffix} is not an output image format ({', '.join(sorted(FORMATS))}); "
            f"for a folder named {p.name} write -o {out}/"
        )


def output_is_file(out: str | None) -> bool:
    """An ``-o`` value with an image extension names a file; anything else a folder."""
    return (
        out is not None
        and Path(out).suffix.lower() in FORMATS
        and not Path(out).is_dir()
        and not out.endswith(("/", os.sep))
    )


def plan_jobs(
    inputs: list[str],
    out: str | None,
    recursive: bool = False,
    ext: str | None = None,
    suffix: str = "_restored",
    skip_existing: bool = False,
    overwrite: bool = False,
) -> list[Job]:
    """Map inputs to outputs.

    Without ``out`` each output sits next to its input as ``NAME{suffix}{ext}``; with a
    folder ``out``, outputs keep their names (and, for folder inputs, their relative paths);
    with a file ``out`` (single input only) that is the output. The output extension is
    ``ext`` if given, else the input's (PNG for inputs no writer handles, e.g. GIF).
    """
    if ext is not None:
        ext = ext if ext.startswith(".") else f".{ext}"
        if ext.lower() not in FORMATS:
            raise UsageError(f"--ext {ext}: unknown output format; use one of {', '.join(sorted(FORMATS))}")
    check_output_arg(out)
    pairs = collect_inputs(inputs, recursive)
    # Earlier outputs found while expanding a folder are not inputs: a rerun must not restore
    # its own results (photos/restored/ inside photos/, or NAME_restored.jpg next to NAME.jpg).
    out_root = safe_resolve(Path(out)) if out is not None and not output_is_file(out) else None
    pairs = [
        (src, base, problem)
        for src, base, problem in pairs
        if base is None
        or not (
            (out_root is not None and out_root in safe_resolve(src).parents)
            or (out is None and suffix and src.stem.endswith(suffix))
        )
    ]
    if not pairs:
        subs = unsearched_subfolders(inputs, recursive)
        hint = f" ({subs[0][0]} has sub-folders: add -r to search them)" if subs else ""
        raise UsageError(f"no input images found{hint}")
    file_out = output_is_file(out)
    if file_out and len(pairs) != 1:
        raise UsageError(f"-o {out} names a file but there are {len(pairs)} inputs; give a folder instead")

    jobs: list[Job] = []
    for src, base, problem in pairs:
        out_ext = ext or (src.suffix if src.suffix.lower() in FORMATS else ".png")
        if file_out:
            dst = Path(out)  # type: ignore[arg-type]
        elif out is None:
            dst = src.with_name(f"{src.stem}{suffix}{out_ext}")
        else:
            rel = src.relative_to(base) if base is not None else Path(src.name)
            dst = Path(out) / rel.with_suffix(out_ext)
        jobs.append(Job(src, dst, error=problem))

    _refuse(jobs, out, skip_existing, overwrite)
    return jobs


def _refuse(jobs: list[Job], out: str | None, skip_existing: bool, overwrite: bool) -> None:
    """Mark the jobs that must not run: missing or looping inputs, outputs that would
    overwrite an input or another job's output, and outputs that exist already."""
    input_ids = {_identity(j.src) for j in jobs}
    input_paths = {safe_resolve(j.src) for j in jobs}
    # The fix that helps depends on how outputs are named: --suffix only renames outputs
    # written next to their inputs; into a folder, names come from the inputs.
    rename = "use another --suffix or -o" if out is None else "give their folder with -r (outputs keep sub-folders) or rename one"
    seen: dict[Path, Path] = {}
    for job in jobs:
        if job.error:  # the scanner's verdict (a loop or broken link inside a folder)
            continue
        problem = link_problem(job.src)
        if problem:
            job.error = problem
            continue
        if not job.src.exists():
            job.error = "no such file or folder"
            continue
        assert job.dst is not None
        key = safe_resolve(job.dst)
        if _identity(job.dst) in input_ids or key in input_paths:
            job.error = f"output {job.dst} would overwrite an input; choose another -o" + (" or --suffix" if out is None else "")
        elif key in seen:
            job.error = f"same output path {job.dst} as {seen[key]}; {rename}"
        else:
            seen[key] = job.src
            if job.dst.exists():
                if skip_existing:
                    job.skip = "output exists"
                elif not overwrite:
                    job.error = f"output {job.dst} exists (use --overwrite or --skip-existing)"


def _identity(p: Path) -> tuple[int, int] | Path:
    """Same file test that sees through links and case-insensitive file systems."""
    try:
        st = p.stat()
        return (st.st_dev, st.st_ino)
    except OSError:
        return safe_resolve(p)


@dataclass(frozen=True)
class Shard:
    """This process's place in a torchrun launch (rank 0 of 1 when run alone)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1

    @classmethod
    def from_env(cls) -> "Shard":
        """Read torchrun's RANK / WORLD_SIZE / LOCAL_RANK / LOCAL_WORLD_SIZE variables."""
        env = os.environ
        try:
            world = int(env.get("WORLD_SIZE", "1"))
            rank = int(env.get("RANK", "0"))
            local_rank = int(env.get("LOCAL_RANK", str(rank)))
            local_world = int(env.get("LOCAL_WORLD_SIZE", str(world)))
        except ValueError:
            raise UsageError("RANK/WORLD_SIZE/LOCAL_RANK must be integers") from None
        if not (0 <= rank < world):
            raise UsageError(f"RANK {rank} is outside WORLD_SIZE {world}")
        return cls(rank, world, local_rank, local_world)

    def take(self, jobs: list[Job]) -> list[Job]:
        """This rank's jobs: every world-th job of the shared sorted plan, so ranks never
        share an output and together cover every input."""
        return jobs[self.rank :: self.world]


def folder_problem(folder: Path, create: bool = True) -> str | None:
    """Why outputs cannot be written into ``folder``, or None.

    With ``create`` the folder is made (as a run needs it) and a temporary file proves it
    writable; without (``--dry-run``) nothing is created: the nearest existing ancestor
    must be a writable folder.
    """
    if create:
        import tempfile

        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as e:
            return e.strerror or str(e)
        return None
    probe = folder
    while not (probe.exists() or probe.is_symlink()) and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is not a folder"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe}: permission denied"
    return None


def check_output_folders(jobs: list[Job], create: bool = True) -> None:
    """Refuse, before any work, the jobs whose output folder cannot be written (a file in
    the way, no permission), so a long run does not find out at its end."""
    verdict: dict[Path, str | None] = {}
    for job in jobs:
        if job.error or job.skip or job.dst is None:
            continue
        folder = job.dst.parent
        if folder not in verdict:
            verdict[folder] = folder_problem(folder, create)
        if verdict[folder]:
            job.error = f"output folder {folder} is not writable: {verdict[folder]}"
