"""Evaluation runner and report writers (``uniremoval eval`` / ``uniremoval bench``).

One run restores every image of a set with every method (a model file or a baseline name)
and writes, per set (``paired`` = synthetic or benchmark pairs with ground truth, ``real`` =
photos without):

- ``<set>_per_image.csv``: one row per (method, image): kind, metrics, seconds, error;
- ``<set>_summary.json``: means per method and kind, plus what makes the numbers reproducible
  (model checksums, data digest and manifest checksum, versions, seed, metric conventions);
- ``<set>_summary.md``: the same means as a Markdown table (rows = methods);
- ``<set>_grid.png``: input | each method's output | ground truth, a few images;
- ``<set>_report.html`` (``html=True``): self-contained page, one before/after slider per
  image and method (base64 JPEG thumbnails, a few lines of inline JS/CSS).

Metrics (conventions in docs/evaluation.md): paired sets get PSNR/SSIM on RGB and on the
BT.601 Y channel (``crop_border`` pixels removed), real sets get NIQE, BRISQUE and PIQE.
A file that fails (unreadable, wrong size, metric undefined) is reported on its row and on
stderr and does not stop the others. All outputs are written atomically; the writers live
in :mod:`uniremoval.evaluate_report` (``markdown_table``, ``thumbnail`` and ``write_grid`` are
re-exported here). Images are read with :mod:`uniremoval.image_io`, as restore reads them.
"""
from __future__ import annotations

import hashlib
import json
import math
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch

from . import __version__
from .baselines import BASELINES, get_baseline
from .evaluate_report import (  # markdown_table is re-exported for the CLI
    LOWER_IS_BETTER,
    PAIRED_METRICS,
    REAL_METRICS,
    markdown_table,
    thumbnail,
    write_csv,
    write_grid,
    write_html,
    write_md,
)
from .image_io import ImageReadError, read_image
from .jsonio import write_json

SEED = 0

CONVENTIONS = {
    "psnr": "RGB in [0, 1], data range 1, mean over all pixels and channels, 10 log10(1 / MSE)",
    "ssim": "11x11 Gaussian window sigma 1.5, K1 0.01, K2 0.03, population covariance, valid region; RGB = mean of channels (= skimage structural_similarity(gaussian_weights=True, use_sample_covariance=False, data_range=1))",
    "psnr_y/ssim_y": "Y of ITU-R BT.601 studio range as MATLAB rgb2ycbcr, scaled to [0, 1]",
    "niqe": "Mittal et al. 2013, MATLAB release algorithm and pristine model, rgb2gray of the 8-bit image, 96x96 patches",
    "brisque": "Mittal et al. 2012, MATLAB release algorithm, LIVE SVR (allmodel) and allrange scaling",
    "piqe": "Venkatanath et al. 2015, as MATLAB piqe (16x16 blocks, thresholds 0.1)",
    "lower_is_better": sorted(LOWER_IS_BETTER),
}


# -- methods ------------------------------------------------------------------------------

@dataclass
class Method:
    """Something that restores float32 (H, W, 1|3) pixels in [0, 1], with its provenance."""

    name: str
    restore: Callable[[np.ndarray], np.ndarray]
    info: dict[str, Any] = field(default_factory=dict)
    #: for a row like "teachers": one method per degradation kind, chosen by the image's kind
    by_kind: dict[str, "Method"] | None = None

    def restore_item(self, pixels: np.ndarray, kind: str) -> np.ndarray:
        """Restore one image of the given kind."""
        if self.by_kind is None:
            return self.restore(pixels)
        if kind not in self.by_kind:
            raise KeyError(f"no method for kind {kind!r} (have: {', '.join(self.by_kind)})")
        return self.by_kind[kind].restore(pixels)


def per_kind_method(name: str, methods: dict[str, Method]) -> Method:
    """A method that sends each image to the method of its kind (the ablation's teachers row)."""
    info = {"type": "per-kind", "by_kind": {k: m.info for k, m in methods.items()}}
    return Method(name, lambda p: (_ for _ in ()).throw(KeyError("per-kind method needs the kind")), info, dict(methods))


def load_method(spec: str, device: str = "auto", tile: int | str | None = "auto", precision: str = "fp32", scale: int | str | None = None) -> Method:
    """A baseline by name (``identity``, ``dcp``) or a model by bundled name / path, optionally
    followed by ``@SCALE`` (a working scale as ``restore --scale`` reads it, e.g.
    ``default@pyramid``), which overrides ``scale`` and names the method apart.

    Raises KeyError/ModelError with one line naming the model and the reason.
    """
    path, sep, at = spec.rpartition("@")
    suffix = ""
    if sep and path and spec not in BASELINES:
        from .options import parse_scale

        try:
            scale, spec, suffix = parse_scale(at), path, f"@{at.strip().lower()}"
        except ValueError:
            pass  # not a scale: the '@' is part of a file name
    if spec in BASELINES:
        b = get_baseline(spec)
        return Method(b.name, b.restore_pixels, {"type": "baseline", "description": b.description, "params": b.params})
    from .modelfile import read_config, sha256_file
    from .restorer import Restorer

    cfg, json_path = read_config(spec)
    restorer = Restorer.from_pretrained(spec, device=device, precision=precision, tile=tile, scale=scale)
    info = {
        "type": "model",
        "path": str(json_path),
        "config_sha256": sha256_file(json_path),
        "weights_sha256": cfg.sha256,
        "arch": cfg.arch,
        "arch_args": cfg.arch_args,
        "kinds": cfg.kinds,
        "provenance": cfg.provenance,
        "device": str(restorer.device),
        "scale": restorer.engine.scale,
    }
    return Method(json_path.stem + suffix, restorer.restore_pixels, info)


# -- data ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Item:
    """One image to evaluate: degraded input, optional ground truth, its kind."""

    name: str
    kind: str
    input: Path
    target: Path | None = None


def paired_items(root: Path, layout: str = "auto") -> list[Item]:
    """Pairs under ``root`` (any layout ``find_pairs`` knows). The kind of a ``uniremoval
    synth`` pair comes from its ``params/<name>.json``; otherwise from the layout."""
    from .data import find_pairs

    root = Path(root)
    rep = find_pairs(root, layout)
    items = []
    for p in rep.pairs:
        kind = p.kind
        params = root / "params" / f"{p.input.stem}.json"
        if params.is_file():
            try:
                kind = str(json.loads(params.read_text()).get("kind", kind))
            except (OSError, ValueError):
                pass
        rel = p.input.relative_to(root).as_posix() if p.input.is_relative_to(root) else p.input.name
        items.append(Item(p.name or rel, kind, p.input, p.target))
    return items


def real_items(root: Path) -> list[Item]:
    """Photos under ``root``; the kind comes from the top folder (``hazy/``, ``rain/``, ``blur/``...)."""
    from .data.io import list_images
    from .data.real import FOLDER_KINDS

    root = Path(root)
    items = []
    for p in list_images(root):
        rel = p.relative_to(root)
        kind = FOLDER_KINDS.get(rel.parts[0].lower(), "unknown") if len(rel.parts) > 1 else "unknown"
        items.append(Item(rel.as_posix(), kind, p))
    return items


def data_digest(root: Path, items: Sequence[Item]) -> dict[str, Any]:
    """Checksums of the evaluated files (digest over sorted path + sha256) and of the set's
    ``manifest.json`` when it has one, so a report names exactly the data it measured."""
    from .data.manifest import sha256_file

    root = Path(root)
    files = sorted({f for it in items for f in (it.input, it.target) if f is not None})
    h = hashlib.sha256()
    for f in files:
        rel = f.relative_to(root).as_posix() if f.is_relative_to(root) else str(f)
        h.update(f"{rel}\t{sha256_file(f)}\n".encode())
    out: dict[str, Any] = {"root": str(root), "files": len(files), "files_sha256": h.hexdigest()}
    manifest = root / "manifest.json"
    if manifest.is_file():
        out["manifest_sha256"] = sha256_file(manifest)
    return out


def environment() -> dict[str, Any]:
    """Versions recorded in every report."""
    return {
        "uniremoval": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "seed": SEED,
    }


# -- metrics ------------------------------------------------------------------------------

def paired_metrics(out: np.ndarray, target: np.ndarray, crop_border: int = 0) -> dict[str, float]:
    """PSNR/SSIM (RGB and Y) of float (H, W, C) arrays in [0, 1]."""
    from .metrics import psnr, ssim

    o = torch.from_numpy(np.ascontiguousarray(out, dtype=np.float64)).permute(2, 0, 1)
    t = torch.from_numpy(np.ascontiguousarray(target, dtype=np.float64)).permute(2, 0, 1)
    res = {"psnr": float(psnr(o, t, crop_border=crop_border)), "ssim": float(ssim(o, t, crop_border=crop_border))}
    if o.shape[0] == 3:
        res["psnr_y"] = float(psnr(o, t, crop_border=crop_border, y_channel=True))
        res["ssim_y"] = float(ssim(o, t, crop_border=crop_border, y_channel=True))
    else:  # a grey image is its own luma
        res["psnr_y"], res["ssim_y"] = res["psnr"], res["ssim"]
    return res


def real_metrics(out: np.ndarray) -> tuple[dict[str, float], list[str]]:
    """NIQE/BRISQUE/PIQE; a metric that is undefined for the image is NaN plus a note."""
    from .metrics import brisque, niqe, piqe

    res: dict[str, float] = {}
    notes = []
    for name, fn in (("niqe", niqe), ("brisque", brisque), ("piqe", piqe)):
        try:
            res[name] = float(fn(out))
        except ValueError as e:
            res[name] = float("nan")
            notes.append(f"{name}: {e}")
    return res, notes


# -- the run ------------------------------------------------------------------------------

@dataclass
class SetResult:
    """Rows and summary of one set, plus the files written."""

    kind: str
    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    files: list[Path]


def _load(path: Path) -> np.ndarray:
    return read_image(path).pixels


def _match_channels(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if a.shape[2] == b.shape[2]:
        return a, b
    return (np.repeat(a, 3, 2) if a.shape[2] == 1 else a), (np.repeat(b, 3, 2) if b.shape[2] == 1 else b)


def _failed_rows(methods: Sequence[Method], it: Item, error: str, metric_names: Sequence[str]) -> list[dict[str, Any]]:
    return [{"method": m.name, "image": it.name, "kind": it.kind, "seconds": float("nan"), "error": error,
             **{k: float("nan") for k in metric_names}} for m in methods]


def _score(m: Method, it: Item, x: np.ndarray, y: np.ndarray | None, crop_border: int,
           log: Callable[[str], None], metric_names: Sequence[str]) -> tuple[dict[str, Any], np.ndarray | None]:
    """One method on one image: its row, and its output (None when it failed)."""
    row: dict[str, Any] = {"method": m.name, "image": it.name, "kind": it.kind, "error": ""}
    try:
        t0 = time.perf_counter()
        out = np.asarray(m.restore_item(x, it.kind), dtype=np.float32)
        row["seconds"] = time.perf_counter() - t0
        if out.shape != x.shape:
            raise ValueError(f"output shape {out.shape} differs from the input's {x.shape}")
        if y is not None:
            o, t = _match_channels(out, y)
            row.update(paired_metrics(o, t, crop_border))
        else:
            vals, notes = real_metrics(out)
            row.update(vals)
            row["error"] = "; ".join(notes)
        return row, out
    except Exception as e:  # one image or method failing must not stop the run
        msg = f"{type(e).__name__}: {e}"
        log(f"{it.input}: {m.name}: {msg}")
        row.setdefault("seconds", float("nan"))
        row["error"] = msg
        for k in metric_names:
            row.setdefault(k, float("nan"))
        return row, None


def _evaluate_item(methods: Sequence[Method], it: Item, crop_border: int, keep: bool,
                   log: Callable[[str], None], metric_names: Sequence[str]) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Every method on one image: the rows, and the thumbnails for the grid/HTML when ``keep``."""
    try:
        x = _load(it.input)
        y = _load(it.target) if it.target is not None else None
        if y is not None and y.shape[:2] != x.shape[:2]:
            raise ImageReadError(f"{it.target}: size {y.shape[1]}x{y.shape[0]} differs from the input's {x.shape[1]}x{x.shape[0]}")
    except (ImageReadError, OSError) as e:
        log(f"{it.input}: {e}")
        return _failed_rows(methods, it, str(e), metric_names), None
    vis = {"name": it.name, "kind": it.kind, "input": thumbnail(x), "target": thumbnail(y) if y is not None else None, "outputs": {}}
    rows = []
    for m in methods:
        row, out = _score(m, it, x, y, crop_border, log, metric_names)
        rows.append(row)
        if keep and out is not None:
            vis["outputs"][m.name] = thumbnail(out)
    return rows, vis if keep else None


def evaluate_set(
    methods: Sequence[Method],
    items: Sequence[Item],
    set_kind: str,
    out_dir: Path,
    root: Path,
    crop_border: int = 0,
    html_report: bool = False,
    grid_rows: int = 4,
    log: Callable[[str], None] | None = None,
    extra_meta: dict[str, Any] | None = None,
) -> SetResult:
    """Evaluate ``methods`` on ``items`` (``set_kind`` "paired" or "real"); write the reports."""
    if set_kind not in ("paired", "real"):
        raise ValueError(f"set_kind must be 'paired' or 'real', got {set_kind!r}")
    log = log or (lambda s: print(s, file=sys.stderr))
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    metric_names = PAIRED_METRICS if set_kind == "paired" else REAL_METRICS
    rows: list[dict[str, Any]] = []
    visuals: list[dict[str, Any]] = []  # images kept (as thumbnails) for the grid and HTML
    keep = set(range(min(grid_rows, len(items)))) if not html_report else set(range(len(items)))
    for idx, it in enumerate(items):
        item_rows, vis = _evaluate_item(methods, it, crop_border, idx in keep, log, metric_names)
        rows += item_rows
        if vis is not None:
            visuals.append(vis)

    summary = {
        "set": set_kind,
        "data": data_digest(root, items),
        "methods": {m.name: m.info for m in methods},
        "environment": environment(),
        "conventions": {**CONVENTIONS, "crop_border": crop_border},
        "images": len(items),
        "failed_rows": sum(1 for r in rows if any(isinstance(r.get(k), float) and math.isnan(r[k]) for k in metric_names)),
        "means": summarize(rows, metric_names),
        **(extra_meta or {}),
    }
    out_dir = Path(out_dir)
    files = [
        write_csv(out_dir / f"{set_kind}_per_image.csv", rows, metric_names),
        write_json(out_dir / f"{set_kind}_summary.json", summary),
        write_md(out_dir / f"{set_kind}_summary.md", summary, metric_names),
    ]
    if visuals:
        files.append(write_grid(out_dir / f"{set_kind}_grid.png", visuals[:grid_rows], [m.name for m in methods]))
    if html_report:
        files.append(write_html(out_dir / f"{set_kind}_report.html", visuals, rows, summary, metric_names))
    return SetResult(set_kind, rows, summary, files)


def summarize(rows: Iterable[dict[str, Any]], metric_names: Sequence[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """``{method: {kind or "all": {metric: mean, "n": images, "failed": n}}}``; NaNs are left
    out of the means and counted in ``failed`` (the count is what keeps a mean honest)."""
    groups: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for r in rows:
        g = groups.setdefault(r["method"], {})
        g.setdefault(r["kind"], []).append(r)
        g.setdefault("all", []).append(r)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for method, kinds in groups.items():
        out[method] = {}
        for kind in sorted(kinds, key=lambda k: (k == "all", k)):
            rs = kinds[kind]
            entry: dict[str, Any] = {"n": len(rs)}
            failed = 0
            for k in metric_names:
                vals = [float(r[k]) for r in rs if isinstance(r.get(k), (int, float)) and math.isfinite(float(r[k]))]
                failed = max(failed, len(rs) - len(vals))
                entry[k] = float(np.mean(vals)) if vals else None
            entry["failed"] = failed
            out[method][kind] = entry
    return out
