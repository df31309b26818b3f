"""Data commands: `uniremoval synth` and `uniremoval data check|manifest|verify`.

Exit status: 0 all fine, 1 when any file failed or a check found problems, 2 on usage
errors. Heavy modules (numpy, torch, the synthesis code) are imported inside the commands
so `uniremoval --help` stays fast.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from ._console import err as _err, fail as _fail, out as _out

if TYPE_CHECKING:  # the commands import these lazily so that --help stays fast
    import numpy as np

    from ..degrade import Registry


data_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Check datasets and write/verify manifests.",
    context_settings={"help_option_names": ["-h", "--help"]},
)




def _problem(path: Path | str, reason: str) -> None:
    # One line per bad file: the file, then why; escaped so odd names print as they are.
    from rich.markup import escape

    _err.print(f"[yellow]{escape(str(path))}[/]: {escape(reason)}", soft_wrap=True)


def _parse_floats(text: str, name: str) -> list[float]:
    try:
        vals = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise _fail(f"{name} {text!r}: expected comma-separated numbers", 2)
    if not vals or any(not 0.0 <= v <= 1.0 for v in vals):
        raise _fail(f"{name} {text!r}: values must lie in [0, 1]", 2)
    return vals


def _is_within(child: Path, parent: Path) -> bool:
    try:
        child.resolve().relative_to(parent.resolve())
        return True
    except ValueError:
        return False


def synth(
    clean_dir: Path = typer.Argument(..., metavar="CLEAN_DIR", help="Folder of clean photos (searched recursively).", show_default=False),
    output: Path = typer.Option(..., "-o", "--output", metavar="OUT", help="Output folder (or a .png file with --preview)."),
    kinds: str = typer.Option("haze,rain,blur", metavar="KIND,...", help="Comma-separated degradation kinds (see --list-kinds)."),
    seed: int = typer.Option(0, help="Base seed; item i uses seed + i, so outputs are reproducible."),
    per_image: int = typer.Option(1, "--per-image", min=1, help="Degraded versions per photo and kind."),
    size: Optional[int] = typer.Option(None, min=8, metavar="PIXELS", help="Random square crop of this size (padded if smaller)."),
    resize: Optional[int] = typer.Option(None, min=8, metavar="PIXELS", help="Resize so the shorter side is this many pixels first."),
    config: Optional[Path] = typer.Option(None, metavar="YAML", help="YAML with kind parameter ranges and compound kinds."),
    preview: bool = typer.Option(False, "--preview", help="Write a contact sheet PNG instead: rows = kinds, columns = strengths."),
    strengths: str = typer.Option("0,0.25,0.5,0.75,1", metavar="S,...", help="Strengths for --preview (each in [0, 1])."),
    real_dir: Optional[Path] = typer.Option(None, "--real-dir", metavar="DIR", help="With --preview: real photos in DIR/hazy, DIR/rain, DIR/blur... beside each kind's row."),
    real_count: int = typer.Option(3, "--real-count", min=1, metavar="N", help="With --real-dir: real photos per kind."),
    seeds: int = typer.Option(1, "--seeds", min=1, metavar="N", help="With --preview: rows per kind, seeds SEED, SEED+1, ..."),
    scale: float = typer.Option(1.0, "--scale", min=1.0, max=16.0, metavar="S", help="With --preview: degrade at S x the size and downsample (as training at scale S)."),
    preset: Optional[str] = typer.Option(None, "--preset", metavar="NAME", help="Degradation ranges: r7 (default) or r6 (the shipped model's); --config applies on top."),
    overwrite: bool = typer.Option(False, help="Replace existing outputs."),
    list_kinds: bool = typer.Option(False, "--list-kinds", help="List the available kinds and exit."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Make a paired synthetic set: OUT/input, OUT/target and per-image parameter JSON in OUT/params."""
    registry = _registry(config, preset)
    if list_kinds:
        for name in registry.names():
            _out.print(name)
        return
    kind_list = [k.strip() for k in kinds.split(",") if k.strip()]
    unknown = [k for k in kind_list if k not in registry]
    if not kind_list or unknown:
        raise _fail(f"--kinds: unknown kind(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(registry.names())}", 2)
    if not clean_dir.is_dir():
        raise _fail(f"{clean_dir}: not a folder", 2)

    from ..data.synthetic import scan_clean

    good, bad = scan_clean(clean_dir, full=False)
    for path, reason in bad:
        _problem(path, reason)
    if not good:
        raise _fail(f"{clean_dir}: no readable images")
    crop = _Crop(size, resize)
    if preview:
        real = _real_photos(real_dir, kind_list, real_count) if real_dir is not None else None
        _synth_preview(good, len(bad), clean_dir, output, kind_list, _parse_floats(strengths, "--strengths"),
                       crop, seed, registry, overwrite, seeds, real, scale)
    if _is_within(output, clean_dir):
        raise _fail(f"{output}: output must not be inside the clean folder {clean_dir} (inputs are never modified)", 2)
    _synth_pairs(good, len(bad), clean_dir, output, kind_list, per_image, crop, seed, registry, overwrite, quiet)


def _registry(config: Optional[Path], preset: Optional[str] = None) -> "Registry":
    from ..degrade import REGISTRY, Registry

    try:
        start = Registry.preset(preset) if preset else None
    except KeyError as e:
        raise _fail(f"--preset: {e.args[0]}", 2)
    try:
        return Registry.from_config(config, start=start) if config else (start or REGISTRY)
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise _fail(f"{config}: bad kind config: {e}", 2)


def _real_photos(real_dir: Path, kind_list: list[str], count: int) -> "dict[str, list[np.ndarray]]":
    """Up to ``count`` photos per kind from the kind folders of ``real_dir`` (spread evenly
    over the sorted folder, so reruns show the same ones); a compound kind gets the photos of
    its first part, a kind with no folder none."""
    import numpy as np

    from ..data.io import list_images, read_image
    from ..data.real import FOLDER_KINDS

    if not real_dir.is_dir():
        raise _fail(f"--real-dir {real_dir}: not a folder", 2)
    folders: dict[str, list[Path]] = {}
    for sub in sorted(p for p in real_dir.iterdir() if p.is_dir()):
        kind = FOLDER_KINDS.get(sub.name.lower())
        if kind is not None:
            folders.setdefault(kind, []).extend(list_images(sub, True))
    out: dict[str, list[np.ndarray]] = {}
    for kind in kind_list:
        files = folders.get(kind.split("+")[0], [])
        picks = sorted({int(i) for i in np.linspace(0, len(files) - 1, min(count, len(files)))}) if files else []
        photos = []
        for i in picks:
            try:
                photos.append(_resize_short(read_image(files[i]), 256))
            except Exception as e:  # an unreadable real photo only leaves a gap in the sheet
                _problem(files[i], str(e).split(": ", 1)[-1])
        out[kind] = photos
    return out


@dataclass(frozen=True)
class _Crop:
    """How `synth` cuts a target out of a clean photo: resize the short side, then a square."""

    size: Optional[int]
    resize: Optional[int]

    def __call__(self, img: "np.ndarray", rng: "np.random.Generator | None") -> "np.ndarray":
        """The target for one item; ``rng`` None (preview) takes the centre crop."""
        import numpy as np

        from ..data.transforms import pad_to, random_crop_box

        if self.resize is not None:
            img = _resize_short(img, self.resize)
        if self.size is not None:
            size = self.size
            img = pad_to(img, size, size)
            if rng is None:
                y, x = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
            else:
                y, x = random_crop_box(rng, img.shape[0], img.shape[1], size)
            img = img[y : y + size, x : x + size]
        return np.ascontiguousarray(img)


def _synth_preview(good: list[Path], failures: int, clean_dir: Path, output: Path, kind_list: list[str],
                   svals: list[float], crop: _Crop, seed: int, registry: "Registry", overwrite: bool,
                   seeds: int = 1, real: "dict[str, list[np.ndarray]] | None" = None, scale: float = 1.0) -> None:
    """Write the contact sheet of the first readable photo; always ends with typer.Exit."""
    from PIL import Image

    from ..data.io import read_image, write_atomic
    from ..degrade.preview import contact_sheet

    target = output if output.suffix.lower() == ".png" else output / "preview.png"
    if target.exists() and not overwrite:
        raise _fail(f"{target}: exists; use --overwrite to replace it", 2)
    for path in good:
        try:
            img = read_image(path)
            break
        except Exception as e:  # unreadable despite a good header: try the next one
            _problem(path, str(e).split(": ", 1)[-1])
            failures += 1
    else:
        raise _fail(f"{clean_dir}: no readable images")
    if crop.size is None and crop.resize is None:
        img = _resize_short(img, 192)
    sheet = contact_sheet(crop(img, None), kind_list, svals, seed=seed, registry=registry, seeds=seeds, real=real,
                          scale=scale)
    write_atomic(target, lambda f: Image.fromarray(sheet).save(f, format="PNG"))
    _out.print(f"wrote {target} ({len(kind_list)} kinds x {len(svals)} strengths, from {path.name})")
    raise typer.Exit(1 if failures else 0)


def _synth_pairs(good: list[Path], skipped: int, clean_dir: Path, output: Path, kind_list: list[str], per_image: int,
                 crop: _Crop, seed: int, registry: "Registry", overwrite: bool, quiet: bool) -> None:
    """Write OUT/input, OUT/target, OUT/params and the manifest; exit 1 if any photo failed."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..data.io import read_image
    from ..data.manifest import write_manifest

    dirs = {d: output / d for d in ("input", "target", "params")}
    existing = [p for d in dirs.values() if d.is_dir() for p in d.iterdir()]
    if existing and not overwrite:
        raise _fail(f"{output}: already holds {len(existing)} files; use --overwrite to replace them", 2)
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    per_photo = len(kind_list) * per_image
    n_items, failures, written = len(good) * per_photo, skipped, []
    with Progress(TextColumn("synth"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=_err, disable=quiet, transient=True) as bar:
        task = bar.add_task("synth", total=n_items)
        for i, path in enumerate(good):
            try:
                clean = read_image(path)
            except Exception as e:
                _problem(path, str(e).split(": ", 1)[-1])
                failures += 1
                bar.advance(task, per_photo)
                continue
            for ki, kind in enumerate(kind_list):
                for j in range(per_image):
                    written += _synth_item(clean, path, clean_dir, kind, j, (i * len(kind_list) + ki) * per_image + j,
                                           seed, crop, registry, dirs)
                    bar.advance(task)
    # build_manifest takes paths absolute or relative to the root, not to the working folder
    write_manifest(output, [p.absolute() for p in written])
    _out.print(f"wrote {n_items - (failures - skipped) * per_photo} pairs to {output} "
               f"({len(good)} photos x {len(kind_list)} kinds x {per_image}); manifest: {output / 'manifest.json'}")
    if failures:
        _err.print(f"{failures} file(s) skipped")
        raise typer.Exit(1)


def _synth_item(clean: "np.ndarray", path: Path, clean_dir: Path, kind: str, j: int, index: int, seed: int, crop: _Crop,
                registry: "Registry", dirs: dict[str, Path]) -> list[Path]:
    """Degrade one crop of ``clean``; write input, target and params; return the three paths."""
    import numpy as np

    from ..data.io import write_atomic, write_png

    item_seed = seed + index
    rng = np.random.default_rng(item_seed)
    target_img = crop(clean, rng)
    degraded, record = registry.synthesize(target_img, kind, rng)
    record.update(seed=item_seed, index=index, source=path.relative_to(clean_dir).as_posix(),
                  resize=crop.resize, size=[int(target_img.shape[0]), int(target_img.shape[1])])
    name = f"{path.stem}_{kind.replace('+', '-')}_{j}"
    write_png(dirs["input"] / f"{name}.png", degraded)
    write_png(dirs["target"] / f"{name}.png", target_img)
    text = json.dumps(record, indent=1).encode()
    write_atomic(dirs["params"] / f"{name}.json", lambda f: f.write(text))
    return [dirs[d] / f"{name}{'.json' if d == 'params' else '.png'}" for d in dirs]


def _resize_short(img: "np.ndarray", short: int) -> "np.ndarray":
    """Resize a float HxWx3 image so its shorter side is `short` (Lanczos via Pillow)."""
    import numpy as np
    from PIL import Image

    h, w = img.shape[:2]
    scale = short / min(h, w)
    nh, nw = max(int(round(h * scale)), 1), max(int(round(w * scale)), 1)
    chans = [np.asarray(Image.fromarray(img[:, :, c].astype(np.float32), mode="F").resize((nw, nh), Image.LANCZOS))
             for c in range(3)]
    return np.clip(np.stack(chans, axis=2), 0.0, 1.0).astype(np.float32)


@data_app.command("check")
def check(
    root: Path = typer.Argument(..., metavar="ROOT", help="Dataset folder (a public layout, input/ + target/, or plain images).", show_default=False),
    layout: str = typer.Option("auto", metavar="LAYOUT", help="auto | reside | rain100 | rain13k | gopro | realblur | spa | input_target"),
    quick: bool = typer.Option(False, help="Read headers only (faster; misses truncated files)."),
) -> None:
    """Report missing pairs, size mismatches and unreadable files; exit 1 if any."""
    from ..data.check import check_dataset
    from ..data.layouts import LAYOUTS

    if layout != "auto" and layout not in LAYOUTS:
        raise _fail(f"--layout {layout!r}: use auto or one of {', '.join(LAYOUTS)}", 2)
    if not root.is_dir():
        raise _fail(f"{root}: not a folder", 2)
    rep = check_dataset(root, layout, full=not quick)
    for path, reason in rep.unreadable:
        _problem(path, reason)
    for path, reason in rep.missing:
        _problem(path, reason)
    for path, reason in rep.mismatched:
        _problem(path, f"size mismatch: {reason}")

    from rich.table import Table

    t = Table(title=f"{root} (layout: {rep.layout})", show_header=True)
    for col in ("pairs", "images", "missing partner", "size mismatch", "unreadable"):
        t.add_column(col, justify="right")
    t.add_row(str(rep.pairs), str(rep.images), str(len(rep.missing)), str(len(rep.mismatched)), str(len(rep.unreadable)))
    _out.print(t)
    if rep.layout != "clean" and rep.pairs == 0:
        _err.print("no pairs found")
        raise typer.Exit(1)
    raise typer.Exit(1 if rep.problems else 0)


@data_app.command("manifest")
def manifest(
    root: Path = typer.Argument(..., metavar="ROOT", help="Folder whose image files (recursively) are listed.", show_default=False),
    output: Optional[Path] = typer.Option(None, "-o", "--output", metavar="FILE", help="Manifest path (default ROOT/manifest.json)."),
) -> None:
    """Write a manifest (relative path, size, sha256) of every image under ROOT."""
    from ..data.io import list_images
    from ..data.manifest import write_manifest

    if not root.is_dir():
        raise _fail(f"{root}: not a folder", 2)
    files = list_images(root)
    if not files:
        raise _fail(f"{root}: no images")
    out = write_manifest(root, [f.absolute() for f in files], output)
    _out.print(f"wrote {out} ({len(files)} files)")


@data_app.command("verify")
def verify(
    manifest_path: Path = typer.Argument(..., metavar="MANIFEST", help="A manifest.json written by `data manifest` or `synth`.", show_default=False),
    root: Optional[Path] = typer.Option(None, metavar="ROOT", help="Dataset root (default: the manifest's folder)."),
) -> None:
    """Check files against a manifest: report missing and changed files; exit 1 if any."""
    from ..data.manifest import verify_manifest

    if not manifest_path.is_file():
        raise _fail(f"{manifest_path}: no such file", 2)
    try:
        rep = verify_manifest(manifest_path, root)
    except (ValueError, KeyError) as e:
        raise _fail(f"{manifest_path}: not a manifest ({e})", 2)
    for p in rep.missing:
        _problem(p, "missing")
    for p in rep.changed:
        _problem(p, "changed (size or sha256 differs)")
    _out.print(f"{len(rep.ok)} ok, {len(rep.missing)} missing, {len(rep.changed)} changed")
    raise typer.Exit(0 if rep.passed else 1)


def register(app: typer.Typer) -> None:
    """Attach `synth` and the `data` sub-commands to the top-level app."""
    app.command("synth")(synth)
    app.add_typer(data_app, name="data")
