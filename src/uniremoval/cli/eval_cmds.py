"""``uniremoval eval`` (metrics, reports and pictures for models and baselines) and
``uniremoval bench`` (the ablation table of docs/method.md on one synthetic and one real set)."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, List, Optional

import typer

from ._console import err, fail as _fail, out

if TYPE_CHECKING:  # imported lazily by the commands so that --help stays fast
    from ..evaluate import Item, Method





def _log(msg: str) -> None:
    err.print(msg, soft_wrap=True, markup=False, style="yellow")


def _load_methods(specs: list[str], device: str, tile: int | str, scale: int | str | None = None) -> "list[Method]":
    from ..evaluate import load_method
    from ..modelfile import ModelError

    methods = []
    for spec in specs:
        try:
            methods.append(load_method(spec, device=device, tile=tile, scale=scale))
        except (ModelError, KeyError, FileNotFoundError, ValueError) as e:
            raise _fail(f"--model {spec}: {str(e).strip(chr(39))}", 2)
    seen: set[str] = set()
    for i, m in enumerate(methods):  # two files called model.json must stay apart in the report
        if m.name in seen:
            m.name = f"{m.name}#{i + 1}"
        seen.add(m.name)
    return methods


def _items(kind: str, root: Path, layout: str, limit: Optional[int]) -> "list[Item]":
    from ..evaluate import paired_items, real_items

    if not root.is_dir():
        raise _fail(f"{root}: not a folder", 2)
    try:
        items = paired_items(root, layout) if kind == "paired" else real_items(root)
    except (KeyError, FileNotFoundError) as e:
        raise _fail(f"{root}: {e}", 2)
    if not items:
        what = "input/target pairs" if kind == "paired" else "images"
        raise _fail(f"{root}: no {what} found", 2)
    return items[:limit] if limit else items


def _run(methods: "list[Method]", sets: "list[tuple[str, Path, list[Item]]]", out_dir: Path, crop_border: int, html: bool,
         grid_rows: int, extra: dict[str, Any] | None = None) -> int:
    from ..evaluate import PAIRED_METRICS, REAL_METRICS, evaluate_set, markdown_table

    failed = 0
    for kind, root, items in sets:
        out.print(f"{kind}: {len(items)} images x {len(methods)} method(s) from {root}")
        res = evaluate_set(methods, items, kind, out_dir, root, crop_border=crop_border, html_report=html,
                           grid_rows=grid_rows, log=_log, extra_meta=extra)
        out.print(markdown_table(res.summary, PAIRED_METRICS if kind == "paired" else REAL_METRICS), markup=False)
        out.print("wrote " + ", ".join(str(f) for f in res.files), markup=False)
        failed += sum(1 for r in res.rows if r.get("error") and not r["error"].startswith(("niqe:", "brisque:", "piqe:")))
    return failed


TILE_HELP = "auto (tile large images), 0 (never), or a tile size in pixels."


def parse_tile(tile: str) -> int | str:
    """``--tile`` exactly as restore and serve read it (:func:`uniremoval.options.parse_tile`:
    "auto", 0 / "none" (never tile) or a size of at least 16 pixels); exit 2 otherwise."""
    from ..options import parse_tile as parse

    try:
        value = parse(tile)
    except ValueError as e:
        raise _fail(f"--{e}", 2) from None
    assert value is not None
    return value


def parse_scale(scale: str | None) -> int | str:
    """``--scale`` exactly as restore reads it (:func:`uniremoval.options.parse_scale`); exit 2
    otherwise."""
    from ..options import parse_scale as parse

    try:
        return parse(scale)
    except ValueError as e:
        raise _fail(f"--{e}", 2) from None


def eval_(
    model: List[str] = typer.Option(..., "--model", "-m", metavar="MODEL", help="Model name/path, or a baseline: identity, dcp. Repeat to compare."),
    paired: Optional[Path] = typer.Option(None, "--paired", metavar="DIR", help="Folder of input/target pairs (any layout 'data check' knows, or 'synth' output)."),
    real: Optional[Path] = typer.Option(None, "--real", metavar="DIR", help="Folder of real photos (kind from hazy/, rain/, blur/ subfolders)."),
    out_dir: Path = typer.Option(Path("eval_out"), "--out", "-o", metavar="DIR", help="Folder for the CSV/JSON/Markdown/PNG/HTML reports."),
    html: bool = typer.Option(False, "--html", help="Also write a self-contained HTML report with before/after sliders."),
    crop_border: int = typer.Option(0, "--crop-border", min=0, metavar="PIXELS", help="Pixels removed on each side before PSNR/SSIM."),
    layout: str = typer.Option("auto", "--layout", metavar="LAYOUT", help="Layout of --paired (see 'uniremoval data check --help')."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, metavar="N", help="Evaluate only the first N images of each set."),
    grid_rows: int = typer.Option(4, "--grid-rows", min=1, metavar="N", help="Images in the comparison grid."),
    device: str = typer.Option("auto", "--device", metavar="DEVICE", help="auto, cpu, cuda, cuda:N, mps."),
    tile: str = typer.Option("auto", "--tile", metavar="TILE", help=TILE_HELP),
    scale: Optional[str] = typer.Option(None, "--scale", metavar="SCALE", help="Working resolution of the models: 1, a factor d, auto or pyramid (as 'restore --scale'; default: restore's)."),
) -> None:
    """Score models and baselines: per-image CSV, summary JSON + Markdown, grid PNG, optional HTML."""
    if paired is None and real is None:
        raise _fail("give --paired DIR and/or --real DIR", 2)
    tile_arg = parse_tile(tile)
    scale_arg = parse_scale(scale)
    sets = []
    if paired is not None:
        sets.append(("paired", paired, _items("paired", paired, layout, limit)))
    if real is not None:
        sets.append(("real", real, _items("real", real, layout, limit)))
    methods = _load_methods(model, device, tile_arg, scale_arg)
    failed = _run(methods, sets, out_dir, crop_border, html, grid_rows)
    if failed:
        err.print(f"{failed} image/method row(s) failed; see the CSV", markup=False)
        raise typer.Exit(1)


def bench(
    paired: Path = typer.Option(..., "--paired", metavar="DIR", help="Synthetic paired set (e.g. 'uniremoval synth' output)."),
    real: Path = typer.Option(..., "--real", metavar="DIR", help="Real photos with hazy/, rain/, blur/ subfolders."),
    row: List[str] = typer.Option([], "--row", metavar="LABEL=MODEL", help="Ablation row LABEL=MODEL, or LABEL=kind:MODEL,kind:MODEL for per-kind teachers. Repeatable, in table order."),
    out_dir: Path = typer.Option(Path("bench_out"), "--out", "-o", metavar="DIR", help="Folder for the reports."),
    html: bool = typer.Option(False, "--html", help="Also write the HTML reports."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, metavar="N", help="Evaluate only the first N images of each set."),
    device: str = typer.Option("auto", "--device", metavar="DEVICE", help="auto, cpu, cuda, cuda:N, mps."),
    tile: str = typer.Option("auto", "--tile", metavar="TILE", help=TILE_HELP),
) -> None:
    """The ablation table of docs/method.md: input (identity) and dcp, then the --row models,
    on one synthetic and one real set; checksums, versions and seed in every report."""
    from ..evaluate import per_kind_method

    tile_arg = parse_tile(tile)
    methods = _load_methods(["identity", "dcp"], device, tile_arg)
    methods[0].name = "input"
    for spec in row:
        label, sep, value = spec.partition("=")
        if not sep or not label or not value:
            raise _fail(f"--row {spec}: expected LABEL=MODEL or LABEL=kind:MODEL,...", 2)
        if ":" in value.split(",")[0] and not Path(value).exists():
            parts = dict(p.split(":", 1) for p in value.split(","))
            sub = dict(zip(parts, _load_methods(list(parts.values()), device, tile_arg)))
            methods.append(per_kind_method(label, sub))
        else:
            m = _load_methods([value], device, tile_arg)[0]
            m.name = label
            methods.append(m)
    sets = [("paired", paired, _items("paired", paired, "auto", limit)), ("real", real, _items("real", real, "auto", limit))]
    rows = [m.name for m in methods]
    failed = _run(methods, sets, out_dir, 0, html, 4, extra={"ablation_rows": rows})
    if failed:
        err.print(f"{failed} image/method row(s) failed; see the CSVs", markup=False)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``eval`` and ``bench`` to the CLI."""
    app.command("eval")(eval_)
    app.command("bench")(bench)
