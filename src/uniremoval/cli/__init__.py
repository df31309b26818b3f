"""Command line: `uniremoval restore`, `info`, `demo`, and the data/training commands.

Exit status: 0 all done, 1 when any file failed (or a fatal error such as a missing model),
2 on usage errors. Heavy modules are imported inside commands so `--help` stays fast.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer

from ._console import err, fail, out, readable_arguments  # noqa: F401  (err: for code that printed through uniremoval.cli.err)

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Remove haze, rain and blur from photos with one model.",
    context_settings={"help_option_names": ["-h", "--help"]},
)
_fail = fail  # the name the command modules used before _console existed
readable_arguments()

from . import restore_cmd as _restore_cmd  # noqa: E402

_restore_cmd.register(app)


@app.command()
def info(
    provenance: bool = typer.Option(False, "--provenance", help="Also print each model's full provenance (paths of the machine that trained it) as JSON."),
    model: list[str] = typer.Option([], "--model", "-m", metavar="MODEL", help="Describe this model (name or path to a .json) instead of the bundled ones; repeatable."),
) -> None:
    """Print bundled models, architectures, devices and versions."""
    import platform

    import torch

    from .. import __version__, nets
    from ..sysinfo import cpu_has_fast_bf16
    from ..modelfile import ModelError, bundled_models, read_config

    out.print(f"uniremoval {__version__}  (python {platform.python_version()}, torch {torch.__version__})")
    from ..sysinfo import cpu_isa, cpu_model

    out.print(f"cpu: {cpu_model()} ({cpu_isa()}), {os.cpu_count()} cores, torch threads {torch.get_num_threads()}, "
              f"native bf16: {'yes' if cpu_has_fast_bf16() else 'no'}", soft_wrap=True)
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            out.print(f"cuda:{i}: {p.name}, {p.total_memory / 2**30:.0f} GiB")
    else:
        out.print("cuda: not available (restoring on the CPU)")
    out.print(f"architectures: {', '.join(nets.available())}", soft_wrap=True)
    names = model or bundled_models()
    if not names:
        out.print("bundled models: none (no trained model ships with this version yet)")
    for name in names:
        try:
            cfg, path = read_config(name)
        except ModelError as e:
            out.print(f"model {name}: [red]{e}[/]")
            continue
        args = f" ({', '.join(f'{k}={v}' for k, v in cfg.arch_args.items())})" if cfg.arch_args else ""
        weights = path.with_name(cfg.weights)
        nbytes = weights.stat().st_size if weights.exists() else 0
        size = "weights missing" if not nbytes else f"{nbytes / 1e6:.1f} MB" if nbytes >= 1e5 else f"{nbytes / 1e3:.1f} kB"
        out.print(f"model {name}: architecture {cfg.arch}{args}, kinds {','.join(cfg.kinds)}, {size}, sha256 {cfg.sha256[:12]}", soft_wrap=True)
        if provenance:
            out.print_json(json.dumps(cfg.provenance, sort_keys=True))


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
    from ..demo import BARELY_DB, kind_gains, run_demo
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
    for col in ("photo", "kind", "PSNR degraded (dB)", "PSNR restored (dB)", "gain (dB)"):
        table.add_column(col, justify="left" if col in ("photo", "kind") else "right")
    for it in items:
        table.add_row(it.name, it.kind, f"{it.psnr_in:.2f}", f"{it.psnr_out:.2f}", f"{it.gain:+.2f}")
    out.print(table)
    for kind, gain in kind_gains(items).items():
        verdict = "" if gain >= BARELY_DB else f": barely improves (under {BARELY_DB:.0f} dB); see MODEL_CARD.md for this model's limits"
        out.print(f"{kind}: {gain:+.2f} dB on average{verdict}", soft_wrap=True)
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
