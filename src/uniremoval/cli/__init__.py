"""Command line: `uniremoval restore`, `info`, `demo`, and the data/training commands.

Exit status: 0 all done, 1 when any file failed (or a fatal error such as a missing model),
2 on usage errors. Heavy modules are imported inside commands so `--help` stays fast.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Remove haze, rain and blur from photos with one model.",
    context_settings={"help_option_names": ["-h", "--help"]},
)
err = Console(stderr=True, highlight=False)
out = Console(highlight=False)


def _fail(message: str, code: int = 1) -> "typer.Exit":
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    return typer.Exit(code)


@app.command()
def restore(
    inputs: List[str] = typer.Argument(..., help="Image files, folders or glob patterns.", show_default=False),
    output: Optional[str] = typer.Option(
        None, "-o", "--output", help="Output folder (or file, for one input). Default: next to each input with --suffix."
    ),
    model: str = typer.Option("default", "--model", "-m", help="Bundled model name or path to a model .json."),
    device: str = typer.Option("auto", help="auto | cpu | cuda | cuda:N | mps"),
    precision: str = typer.Option("auto", help="auto | fp32 | bf16 | fp16"),
    backend: str = typer.Option("torch", help="torch | onnxruntime (exports the model to ONNX once, cached)."),
    tile: str = typer.Option("auto", help="auto (tile large images), 0 (never), or a tile size in pixels."),
    tile_overlap: Optional[int] = typer.Option(None, help="Minimum overlap between tiles in pixels, widened where the tile count allows (default CPU 32, GPU 64; at most a quarter of the tile)."),
    tile_batch: Optional[int] = typer.Option(None, help="Tiles per forward pass (default per device)."),
    recursive: bool = typer.Option(False, "--recursive", "-r", help="Descend into sub-folders."),
    skip_existing: bool = typer.Option(False, help="Skip inputs whose output already exists."),
    overwrite: bool = typer.Option(False, help="Replace outputs that already exist (never inputs)."),
    ext: Optional[str] = typer.Option(None, help="Output format by extension (png, jpg, tif, webp, bmp). Default: the input's."),
    suffix: str = typer.Option("_restored", help="Name suffix when writing next to the inputs."),
    jpeg_quality: int = typer.Option(95, min=1, max=100, help="JPEG/WebP quality."),
    max_pixels: int = typer.Option(120_000_000, help="Refuse images with more pixels (decompression-bomb guard)."),
    threads: Optional[int] = typer.Option(None, help="CPU threads for torch (default: all cores)."),
    compile: bool = typer.Option(False, "--compile", help="torch.compile the network (slow first start, cached; ~2x on CPU with bf16)."),
    cuda_graphs: bool = typer.Option(False, "--cuda-graphs", help="CUDA only: replay full-tile batches from a recorded CUDA graph."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Restore photos: any size in, the same size out, metadata kept."""
    from ..jobs import Shard, UsageError, output_is_file, plan_jobs
    from ..modelfile import ModelError

    try:
        tile_arg: int | str | None = "auto" if tile == "auto" else int(tile)
    except ValueError:
        raise _fail(f"--tile {tile!r}: use auto, 0 or a size in pixels", 2)
    if skip_existing and overwrite:
        raise _fail("--skip-existing and --overwrite contradict each other", 2)
    try:
        shard = Shard.from_env()
        if shard.world > 1:
            # Under torchrun a rerun continues an interrupted run: finished outputs are skipped.
            skip_existing = skip_existing or not overwrite
            if device == "auto":
                import torch

                if torch.cuda.is_available():
                    device = f"cuda:{shard.local_rank % torch.cuda.device_count()}"
            threads = threads or max(1, (os.cpu_count() or 1) // shard.local_world)
        jobs = shard.take(plan_jobs(inputs, output, recursive, ext, suffix, skip_existing, overwrite))
    except UsageError as e:
        raise _fail(str(e), 2)

    out_dir = Path(output) if output is not None and not output_is_file(output) else None
    if out_dir is not None:
        problem = _check_writable(out_dir)
        if problem:
            raise _fail(f"{out_dir}: output folder is not writable: {problem}")

    from ..restorer import Restorer

    try:
        restorer = Restorer.from_pretrained(
            model, device=device, precision=precision, tile=tile_arg, overlap=tile_overlap,
            tile_batch=tile_batch, backend=backend, threads=threads, compile=compile, cuda_graphs=cuda_graphs,
        )
    except (ModelError, ValueError) as e:
        raise _fail(str(e))

    failed: list[tuple[Path, str]] = []
    skipped: list[tuple[Path, str]] = []
    restored = 0
    for job in jobs:
        if job.error:
            failed.append((job.src, job.error))
            err.print(f"[red]failed:[/] {job.src}: {job.error}", soft_wrap=True)
        elif job.skip:
            skipped.append((job.src, job.skip))
    todo = [j for j in jobs if not j.error and not j.skip]
    start = time.perf_counter()
    with _progress(quiet) as progress:
        task = progress.add_task("restoring", total=max(len(todo), 1))
        for i, job in enumerate(todo):
            progress.update(task, description=job.src.name, completed=i)

            def on_tiles(done: int, total: int, i: int = i) -> None:
                progress.update(task, completed=i + done / total)

            try:
                notes = restorer.restore_file(job.src, job.dst, jpeg_quality=jpeg_quality, max_pixels=max_pixels, progress=on_tiles)  # type: ignore[arg-type]
            except Exception as e:  # one bad file must not stop the rest
                why = _reason(e, job.src)
                failed.append((job.src, why))
                progress.console.print(f"[red]failed:[/] {job.src}: {why}", soft_wrap=True)
                continue
            restored += 1
            for note in notes:
                progress.console.print(f"[yellow]note:[/] {job.src}: {note}", soft_wrap=True)
        progress.update(task, completed=max(len(todo), 1))
    elapsed = time.perf_counter() - start
    rank = f"rank {shard.rank}/{shard.world} " if shard.world > 1 else ""
    err.print(
        f"[bold]{rank}done:[/] restored {restored}, skipped {len(skipped)}, failed {len(failed)} "
        f"in {elapsed:.1f} s on {restorer.device}",
        soft_wrap=True,
    )
    if shard.world > 1:
        totals = _all_ranks_sum([restored, len(skipped), len(failed)])
        if totals is not None and shard.rank == 0:
            err.print(f"[bold]all {shard.world} ranks:[/] restored {totals[0]}, skipped {totals[1]}, failed {totals[2]}")
    for src, why in failed:
        err.print(f"  [red]failed[/] {src}: {why}", soft_wrap=True)
    for src, why in skipped:
        err.print(f"  [dim]skipped[/] {src}: {why}", soft_wrap=True)
    if failed:
        raise typer.Exit(1)


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


def _check_writable(folder: Path) -> str | None:
    """Why ``folder`` cannot take outputs, or None. Creates it if missing."""
    import tempfile

    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        return e.strerror or str(e)
    return None


def _progress(quiet: bool):  # type: ignore[no-untyped-def]
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

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


@app.command()
def info() -> None:
    """Print bundled models, architectures, devices and versions."""
    import platform

    import torch

    from .. import __version__, nets
    from ..infer import cpu_has_fast_bf16
    from ..modelfile import ModelError, bundled_models, read_config

    out.print(f"uniremoval {__version__}  (python {platform.python_version()}, torch {torch.__version__})")
    out.print(f"cpu: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}, "
              f"native bf16: {'yes' if cpu_has_fast_bf16() else 'no'}")
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            out.print(f"cuda:{i}: {p.name}, {p.total_memory / 2**30:.0f} GiB")
    else:
        out.print("cuda: not available (restoring on the CPU)")
    out.print(f"architectures: {', '.join(nets.available())}")
    names = bundled_models()
    if not names:
        out.print("bundled models: none (no trained model ships with this version yet)")
    for name in names:
        try:
            cfg, path = read_config(name)
            out.print(f"model {name}: {cfg.arch} {cfg.arch_args}, kinds {','.join(cfg.kinds)}, sha256 {cfg.sha256[:12]}")
        except ModelError as e:
            out.print(f"model {name}: [red]{e}[/]")


export_app = typer.Typer(help="Export a model to other runtimes.", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("onnx")
def export_onnx_cmd(
    model: str = typer.Argument(..., help="Bundled model name or path to a model .json."),
    output: Path = typer.Option(..., "-o", "--output", help="Where to write the .onnx file."),
    check: bool = typer.Option(True, help="Compare onnxruntime with PyTorch on two sizes after export."),
) -> None:
    """Export MODEL to ONNX (dynamic batch, height and width; opset 18)."""
    from ..export import export_onnx
    from ..modelfile import ModelError

    try:
        report = export_onnx(model, output, check=check)
    except (ModelError, ImportError) as e:
        raise _fail(str(e))
    out.print(f"wrote {output}")
    for shape, diff in report.get("parity", {}).items():
        out.print(f"  parity {shape}: max |onnxruntime - torch| = {diff:.2e}")


@app.command()
def demo(
    out_dir: Path = typer.Option(Path("demo_out"), "--out", help="Folder for the examples, outputs and grid."),
    model: str = typer.Option("default", "--model", "-m", help="Bundled model name or path to a model .json."),
    device: str = typer.Option("auto", help="auto | cpu | cuda | cuda:N | mps"),
) -> None:
    """Degrade a few bundled sample photos, restore them, and write a before/after grid."""
    from ..demo import run_demo
    from ..modelfile import ModelError
    from ..restorer import Restorer

    try:
        restorer = Restorer.from_pretrained(model, device=device)
    except (ModelError, ValueError) as e:
        raise _fail(str(e))
    try:
        items, grid = run_demo(restorer, out_dir)
    except (RuntimeError, OSError) as e:
        raise _fail(str(e))
    from rich.table import Table

    table = Table(title=f"uniremoval demo ({restorer.model.name}, {restorer.device})")
    for col in ("photo", "kind", "PSNR degraded", "PSNR restored"):
        table.add_column(col)
    for it in items:
        table.add_row(it.name, it.kind, f"{it.psnr_in:.2f}", f"{it.psnr_out:.2f}")
    out.print(table)
    out.print(f"degraded inputs: {out_dir / 'degraded'}\nrestored outputs: {out_dir / 'restored'}\nbefore/after grid: {grid}")


from . import data_cmds as _data_cmds  # noqa: E402

_data_cmds.register(app)

from . import train_cmds as _train_cmds  # noqa: E402

_train_cmds.register(app)

from . import serve_cmds as _serve_cmds  # noqa: E402

_serve_cmds.register(app)


from . import eval_cmds as _eval_cmds  # noqa: E402
_eval_cmds.register(app)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="uniremoval")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
