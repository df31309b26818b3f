"""`uniremoval restore`: inputs -> planned jobs -> restored files, one line per problem, a
summary at the end (also after Ctrl-C), `--dry-run` and `--report out.json` for pipelines."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer

from ..options import DEFAULT_OVERLAP, DEFAULT_SCALE, DEFAULT_TILE_BATCH, per_device
from ._console import err, fail, out

if TYPE_CHECKING:
    from ..jobs import Job, Shard
    from ..restorer import Restorer
    from .restore_report import RunReport

#: Exit status after Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130


def restore(
    inputs: List[str] = typer.Argument(..., metavar="PHOTO", help="Image files, folders or glob patterns (one or more).", show_default=False),
    output: Optional[str] = typer.Option(
        None, "-o", "--output", metavar="PATH",
        help="Output folder (or file with an image extension, for one input; end with / for a folder name with a dot). "
        "Default: next to each input with --suffix.",
    ),
    model: str = typer.Option("default", "--model", "-m", help="Bundled model name or path to a model .json."),
    device: str = typer.Option("auto", help="auto | cpu | cuda | cuda:N | mps"),
    precision: str = typer.Option("auto", help="auto | fp32 | bf16 | fp16"),
    backend: str = typer.Option("torch", help="torch | onnxruntime (exports the model to ONNX once, cached)."),
    tile: str = typer.Option("auto", help="auto (tile large images), 0 (never), or a tile size in pixels."),
    tile_overlap: Optional[int] = typer.Option(None, help=f"Minimum overlap between tiles in pixels, widened where the tile count allows (default {per_device(DEFAULT_OVERLAP)}; at most a quarter of the tile)."),
    tile_batch: Optional[int] = typer.Option(None, help=f"Tiles per forward pass (default {per_device(DEFAULT_TILE_BATCH)})."),
    scale: str = typer.Option(str(DEFAULT_SCALE), metavar="SCALE", help="Working resolution: 1 (restore at full resolution), a factor d (restore at 1/d and carry "
                              "the change up with a guided filter: rain and blur several times the trained size), or auto (d from the photo's size: "
                              "the power of two bringing its long side nearest 512 px; full resolution up to 724 px), or pyramid (every "
                              "power-of-two level down to 128 px, coarse to fine, then full resolution)."),
    recursive: bool = typer.Option(False, "--recursive", "-r", help="Descend into sub-folders."),
    skip_existing: bool = typer.Option(False, help="Skip inputs whose output already exists (resumes an interrupted run)."),
    overwrite: bool = typer.Option(False, help="Replace outputs that already exist (never inputs)."),
    ext: Optional[str] = typer.Option(None, help="Output format by extension (png, jpg, tif, webp, bmp). Default: the input's."),
    suffix: str = typer.Option("_restored", help="Name suffix when writing next to the inputs."),
    jpeg_quality: int = typer.Option(95, min=1, max=100, help="JPEG/WebP quality."),
    max_pixels: int = typer.Option(
        120_000_000,
        help="Refuse images with more pixels. A small file can decode to a huge image (a 150 KB PNG can hold 48 MP: "
        "minutes of work and 2.5 GB); this guard refuses it before decoding.",
    ),
    threads: Optional[int] = typer.Option(None, help="CPU threads for torch (default: all cores)."),
    compile: bool = typer.Option(False, "--compile", help="torch.compile the network (slow first start, cached; ~2x on CPU with bf16)."),
    cuda_graphs: bool = typer.Option(False, "--cuda-graphs", help="CUDA only: replay full-tile batches from a recorded CUDA graph."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what would be written, refused and skipped; load no model, write nothing (but --report)."),
    report: Optional[Path] = typer.Option(None, "--report", metavar="FILE.json", help="Write one JSON record per input: status, reason, sizes, seconds."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Restore photos: any size in, the same size out, metadata kept."""
    from ..jobs import check_output_folders, output_is_file
    from .restore_report import RunReport

    tile_arg = _parse_tile(tile)
    scale_arg = _parse_scale(scale)
    if skip_existing and overwrite:
        raise fail("--skip-existing and --overwrite contradict each other", 2)
    jobs, shard, device, threads = _plan(inputs, output, recursive, ext, suffix, skip_existing, overwrite, device, threads)
    _check_report_path(report, jobs)
    out_dir = Path(output) if output is not None and not output_is_file(output) else None
    if out_dir is not None and not dry_run:
        from ..jobs import folder_problem

        problem = folder_problem(out_dir)
        if problem:
            raise fail(f"{out_dir}: output folder is not writable: {problem}")
    check_output_folders(jobs, create=not dry_run)
    run = RunReport.from_jobs(jobs, dry_run)
    if dry_run:
        _print_dry_run(jobs, run)
        if report is not None:
            run.write(report)
        raise typer.Exit(1 if run.count("refused") else 0)

    restorer = _load_restorer(model, device, precision, tile_arg, tile_overlap, tile_batch, backend, threads, compile, cuda_graphs, scale_arg)
    for job in jobs:
        if job.error:
            err.print(f"[red]failed:[/] {job.src}: {job.error}", soft_wrap=True)
    start = time.perf_counter()
    try:
        _restore_all(restorer, jobs, run, jpeg_quality, max_pixels, quiet)
    except KeyboardInterrupt:
        run.interrupted = True
    _summary(run, jobs, shard, time.perf_counter() - start, str(restorer.device))
    if report is not None:
        run.write(report)
        err.print(f"report: {report}", soft_wrap=True)
    if run.interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)
    if run.count("failed") or run.count("refused"):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the ``restore`` command to the top-level app."""
    app.command()(restore)


def _parse_tile(tile: str) -> int | str | None:
    from ..options import parse_tile

    try:
        return parse_tile(tile)
    except ValueError as e:
        raise fail(f"--{e}", 2) from None


def _plan(
    inputs: list[str], output: str | None, recursive: bool, ext: str | None, suffix: str,
    skip_existing: bool, overwrite: bool, device: str, threads: int | None,
) -> tuple[list["Job"], "Shard", str, int | None]:
    """This rank's jobs, with torchrun's device and thread share filled in."""
    from ..jobs import Shard, UsageError, plan_jobs, unsearched_subfolders

    try:
        shard = Shard.from_env()
        if shard.world > 1:
            # Under torchrun a rerun continues an interrupted run: finished outputs are skipped.
            skip_existing = skip_existing or not overwrite
            if device == "auto":
                from ..options import resolve_device

                device = str(resolve_device(device, rank=shard.local_rank))
            threads = threads or max(1, (os.cpu_count() or 1) // shard.local_world)
        jobs = shard.take(plan_jobs(inputs, output, recursive, ext, suffix, skip_existing, overwrite))
    except UsageError as e:
        raise fail(str(e), 2) from None
    for folder, n in unsearched_subfolders(inputs, recursive):
        err.print(f"[yellow]note:[/] {folder}: {n} sub-folder{'s' if n > 1 else ''} not searched (add -r to include them)", soft_wrap=True)
    return jobs, shard, device, threads


def _check_report_path(report: Path | None, jobs: list["Job"]) -> None:
    """The report must never replace an input or an output of the same run."""
    if report is None:
        return
    from ..jobs import safe_resolve

    taken = {safe_resolve(j.src) for j in jobs} | {safe_resolve(j.dst) for j in jobs if j.dst is not None}
    if safe_resolve(report) in taken:
        raise fail(f"--report {report}: is an input or output of this run; choose another file", 2)
    if report.is_dir():
        raise fail(f"--report {report}: is a folder; give a file name such as report.json", 2)


def _parse_scale(scale: str) -> int | str:
    from ..options import parse_scale

    try:
        return parse_scale(scale)
    except ValueError as e:
        raise fail(f"--{e}", 2) from None


def _load_restorer(model: str, device: str, precision: str, tile: int | str | None, overlap: int | None,
                   tile_batch: int | None, backend: str, threads: int | None, compile: bool, cuda_graphs: bool,
                   scale: int | str | None = None) -> "Restorer":
    import contextlib

    from rich.markup import escape

    from ..modelfile import ModelError
    from ..restorer import Restorer

    def say(message: str) -> None:  # one-time slow work (the ONNX export) is announced
        err.print(f"[dim]{escape(message)}[/]", soft_wrap=True)

    # A spinner while a first onnxruntime run exports the model (minutes on a small CPU).
    busy = err.status("preparing the onnxruntime model") if backend == "onnxruntime" and err.is_terminal else contextlib.nullcontext()
    try:
        with busy:
            return Restorer.from_pretrained(
                model, device=device, precision=precision, tile=tile, overlap=overlap, tile_batch=tile_batch,
                backend=backend, threads=threads, compile=compile, cuda_graphs=cuda_graphs, on_message=say, scale=scale,
            )
    except (ModelError, ValueError) as e:
        raise fail(str(e)) from None


def _print_dry_run(jobs: list["Job"], run: "RunReport") -> None:
    for job in jobs:
        if job.error:
            out.print(f"refuse  {job.src}: {job.error}", soft_wrap=True, markup=False)
        elif job.skip:
            out.print(f"skip    {job.src}: {job.skip}", soft_wrap=True, markup=False)
        else:
            out.print(f"write   {job.src} -> {job.dst}", soft_wrap=True, markup=False)
    err.print(
        f"[bold]dry run:[/] would restore {run.count('planned')}, skip {run.count('skipped')}, "
        f"refuse {run.count('refused')} (paths checked, images not decoded; nothing written)",
        soft_wrap=True,
    )


def _restore_all(restorer: "Restorer", jobs: list["Job"], run: "RunReport", jpeg_quality: int, max_pixels: int, quiet: bool) -> None:
    """Restore every runnable job, recording each; a bad file never stops the others."""
    todo = [i for i, j in enumerate(jobs) if not j.error and not j.skip]
    with _progress(quiet) as progress:
        task = progress.add_task("restoring", total=max(len(todo), 1))
        for n, i in enumerate(todo):
            job = jobs[i]
            progress.update(task, description=job.src.name, completed=n)

            def on_tiles(done: int, total: int, n: int = n) -> None:
                progress.update(task, completed=n + done / total)

            t0 = time.perf_counter()
            try:
                notes = restorer.restore_file(job.src, job.dst, jpeg_quality=jpeg_quality, max_pixels=max_pixels, progress=on_tiles)  # type: ignore[arg-type]
            except Exception as e:  # one bad file must not stop the rest
                why = _reason(e, job.src)
                run.finish(i, "failed", why, time.perf_counter() - t0)
                progress.console.print(f"[red]failed:[/] {job.src}: {why}", soft_wrap=True)
                continue
            run.finish(i, "restored", None, time.perf_counter() - t0)
            for note in notes:
                progress.console.print(f"[yellow]note:[/] {job.src}: {note}", soft_wrap=True)
        progress.update(task, completed=max(len(todo), 1))


def _summary(run: "RunReport", jobs: list["Job"], shard: "Shard", elapsed: float, device: str) -> None:
    rank = f"rank {shard.rank}/{shard.world} " if shard.world > 1 else ""
    failed = run.count("failed") + run.count("refused")
    head = "interrupted" if run.interrupted else "done"
    err.print(
        f"[bold]{rank}{head}:[/] restored {run.count('restored')}, skipped {run.count('skipped')}, failed {failed}"
        + (f", not done {run.count('not_done')}" if run.interrupted else "")
        + f" in {elapsed:.1f} s on {device}",
        soft_wrap=True,
    )
    if shard.world > 1 and not run.interrupted:
        totals = _all_ranks_sum([run.count("restored"), run.count("skipped"), failed])
        if totals is not None and shard.rank == 0:
            err.print(f"[bold]all {shard.world} ranks:[/] restored {totals[0]}, skipped {totals[1]}, failed {totals[2]}")
    for rec in run.records:
        if rec.status in ("failed", "refused"):
            err.print(f"  [red]failed[/] {rec.input}: {rec.reason}", soft_wrap=True)
        elif rec.status == "skipped":
            err.print(f"  [dim]skipped[/] {rec.input}: {rec.reason}", soft_wrap=True)
    if run.interrupted:
        pending = [r.input for r in run.records if r.status == "not_done"]
        shown = ", ".join(pending[:5]) + (f" and {len(pending) - 5} more" if len(pending) > 5 else "")
        err.print(f"  [yellow]not done[/] {shown}", soft_wrap=True)
        err.print("to finish: rerun the same command with --skip-existing (finished outputs are kept and skipped)", soft_wrap=True)


def _all_ranks_sum(counts: list[int]) -> list[int] | None:
    """Sum counts over torchrun ranks (gloo); None when no rendezvous is configured."""
    if "MASTER_ADDR" not in os.environ:
        return None
    import datetime

    import torch
    import torch.distributed as dist

    try:
        if not dist.is_initialized():
            dist.init_process_group("gloo", timeout=datetime.timedelta(minutes=30))
        t = torch.tensor(counts, dtype=torch.long)
        dist.all_reduce(t)
        dist.destroy_process_group()
        return [int(v) for v in t]
    except Exception as e:  # the outputs are written already; a failed tally must not fail the run
        err.print(f"[yellow]note:[/] could not sum counts across ranks: {e}")
        return None


def _reason(e: Exception, src: Path) -> str:
    """One line saying why ``src`` failed, without repeating its name."""
    from ..image_io import ImageReadError, ImageWriteError

    if isinstance(e, MemoryError):
        return "out of memory (try a smaller --tile)"
    if isinstance(e, (ImageReadError, ImageWriteError)):
        return str(e).removeprefix(f"{src}: ")
    return f"{type(e).__name__}: {e}".splitlines()[0]


def _progress(quiet: bool):  # type: ignore[no-untyped-def]
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(
        TextColumn("{task.description}", style="bold"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err,
        disable=quiet or not err.is_terminal,
        transient=False,
    )
