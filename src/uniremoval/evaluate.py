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
stderr and does not stop the others. All outputs are written atomically.
"""
from __future__ import annotations

import base64
import csv
import hashlib
import html
import io
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
from PIL import Image as PILImage
from PIL import ImageDraw

from . import __version__
from .baselines import BASELINES, get_baseline
from .image_io import ImageReadError, atomic_write_bytes, read_image

PAIRED_METRICS = ("psnr", "ssim", "psnr_y", "ssim_y")
REAL_METRICS = ("niqe", "brisque", "piqe")
LOWER_IS_BETTER = frozenset(REAL_METRICS)
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


def load_method(spec: str, device: str = "auto", tile: int | str | None = "auto", precision: str = "fp32") -> Method:
    """A baseline by name (``identity``, ``dcp``) or a model by bundled name / path.

    Raises KeyError/ModelError with one line naming the model and the reason.
    """
    if spec in BASELINES:
        b = get_baseline(spec)
        return Method(b.name, b.restore_pixels, {"type": "baseline", "description": b.description, "params": b.params})
    from .modelfile import read_config, sha256_file
    from .restorer import Restorer

    cfg, json_path = read_config(spec)
    restorer = Restorer.from_pretrained(spec, device=device, precision=precision, tile=tile)
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
    }
    return Method(json_path.stem, restorer.restore_pixels, info)


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
        try:
            x = _load(it.input)
            y = _load(it.target) if it.target is not None else None
            if y is not None and y.shape[:2] != x.shape[:2]:
                raise ImageReadError(f"{it.target}: size {y.shape[1]}x{y.shape[0]} differs from the input's {x.shape[1]}x{x.shape[0]}")
        except (ImageReadError, OSError) as e:
            log(f"{it.input}: {e}")
            for m in methods:
                rows.append({"method": m.name, "image": it.name, "kind": it.kind, "seconds": float("nan"), "error": str(e),
                             **{k: float("nan") for k in metric_names}})
            continue
        vis = {"name": it.name, "kind": it.kind, "input": thumbnail(x), "target": thumbnail(y) if y is not None else None, "outputs": {}}
        for m in methods:
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
                if idx in keep:
                    vis["outputs"][m.name] = thumbnail(out)
            except Exception as e:  # one image or method failing must not stop the run
                msg = f"{type(e).__name__}: {e}"
                log(f"{it.input}: {m.name}: {msg}")
                row.setdefault("seconds", float("nan"))
                row["error"] = msg
                for k in metric_names:
                    row.setdefault(k, float("nan"))
            rows.append(row)
        if idx in keep:
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
        _write_csv(out_dir / f"{set_kind}_per_image.csv", rows, metric_names),
        _write_json(out_dir / f"{set_kind}_summary.json", summary),
        _write_md(out_dir / f"{set_kind}_summary.md", summary, metric_names),
    ]
    if visuals:
        files.append(write_grid(out_dir / f"{set_kind}_grid.png", visuals[:grid_rows], [m.name for m in methods]))
    if html_report:
        files.append(_write_html(out_dir / f"{set_kind}_report.html", visuals, rows, summary, metric_names))
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


# -- writers ------------------------------------------------------------------------------

def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        if math.isinf(v):
            return "inf"
        return f"{v:.6g}"
    return str(v)


def _write_csv(path: Path, rows: list[dict[str, Any]], metric_names: Sequence[str]) -> Path:
    buf = io.StringIO()
    cols = ["method", "image", "kind", *metric_names, "seconds", "error"]
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: _fmt(r.get(k, "")) for k in cols})
    atomic_write_bytes(path, buf.getvalue().encode())
    return path


def _json_safe(o: Any) -> Any:
    if isinstance(o, float) and not math.isfinite(o):
        return None if math.isnan(o) else ("inf" if o > 0 else "-inf")
    if isinstance(o, dict):
        return {str(k): _json_safe(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_json_safe(v) for v in o]
    if isinstance(o, (np.floating, np.integer)):
        return _json_safe(o.item())
    if isinstance(o, Path):
        return str(o)
    return o


def _write_json(path: Path, data: dict[str, Any]) -> Path:
    atomic_write_bytes(path, (json.dumps(_json_safe(data), indent=1) + "\n").encode())
    return path


def markdown_table(summary: dict[str, Any], metric_names: Sequence[str]) -> str:
    """Rows = methods, columns = metric per kind (then all); arrows say which way is better."""
    means = summary["means"]
    kinds = sorted({k for m in means.values() for k in m if k != "all"}) + ["all"]
    head = ["method"] + [f"{k} {mn} {'↓' if mn in LOWER_IS_BETTER else '↑'}" for k in kinds for mn in metric_names]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method, per in means.items():
        cells = [method]
        for k in kinds:
            for mn in metric_names:
                v = per.get(k, {}).get(mn)
                cells.append("" if v is None else (f"{v:.4f}" if mn.startswith("ssim") else f"{v:.2f}"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _write_md(path: Path, summary: dict[str, Any], metric_names: Sequence[str]) -> Path:
    d, env = summary["data"], summary["environment"]
    text = [f"# Evaluation: {summary['set']} set", "",
            f"Data: `{d['root']}`, {d['files']} files, sha256 of file list `{d['files_sha256'][:16]}`"
            + (f", manifest sha256 `{d['manifest_sha256'][:16]}`" if "manifest_sha256" in d else ""),
            f"Versions: uniremoval {env['uniremoval']}, torch {env['torch']}, numpy {env['numpy']}, python {env['python']}; seed {env['seed']}", ""]
    def describe(info: dict[str, Any]) -> str:
        if info.get("type") == "model":
            return f"model `{info['path']}`, weights sha256 `{info['weights_sha256'][:16]}`"
        if info.get("type") == "per-kind":
            return "per kind: " + "; ".join(f"{k}: {describe(v)}" for k, v in info["by_kind"].items())
        return f"baseline, {info.get('description', '')}"

    text += [f"- `{name}`: {describe(info)}" for name, info in summary["methods"].items()]
    text += ["", markdown_table(summary, metric_names),
             f"Conventions: see docs/evaluation.md (crop border {summary['conventions']['crop_border']}). "
             "Means over the images where the metric is defined; failures are counted in the JSON."]
    atomic_write_bytes(path, ("\n".join(text) + "\n").encode())
    return path


def thumbnail(px: np.ndarray | None, max_side: int = 512) -> PILImage.Image | None:
    """An 8-bit RGB PIL preview of float pixels (None passes through), at most max_side."""
    if px is None:
        return None
    a = np.clip(np.asarray(px, dtype=np.float32), 0, 1)
    a = np.round(a * 255).astype(np.uint8)
    im = PILImage.fromarray(a[:, :, 0] if a.shape[2] == 1 else a[:, :, :3]).convert("RGB")
    im.thumbnail((max_side, max_side), PILImage.LANCZOS)
    return im


def write_grid(path: Path, visuals: list[dict[str, Any]], method_names: list[str], cell: int = 256) -> Path:
    """Rows = images; columns = input | methods | ground truth (when there is one)."""
    has_gt = any(v["target"] is not None for v in visuals)
    cols = ["input", *method_names] + (["ground truth"] if has_gt else [])
    label_h, pad = 18, 4
    width = len(cols) * (cell + pad) + pad
    height = label_h + len(visuals) * (cell + pad) + pad
    sheet = PILImage.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for c, name in enumerate(cols):
        draw.text((pad + c * (cell + pad) + 2, 3), name[:36], fill=(0, 0, 0))
    for r, v in enumerate(visuals):
        ims = [v["input"], *[v["outputs"].get(m) for m in method_names]] + ([v["target"]] if has_gt else [])
        for c, im in enumerate(ims):
            x0, y0 = pad + c * (cell + pad), label_h + r * (cell + pad)
            if im is None:
                draw.rectangle([x0, y0, x0 + cell - 1, y0 + cell - 1], outline=(200, 0, 0))
                continue
            t = im.copy()
            t.thumbnail((cell, cell), PILImage.LANCZOS)
            sheet.paste(t, (x0 + (cell - t.width) // 2, y0 + (cell - t.height) // 2))
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
    return path


def _data_uri(im: PILImage.Image) -> str:
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


_CSS = """body{font-family:sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#f3f3f3}
.cmp{position:relative;display:inline-block;margin:4px;vertical-align:top}.cmp img{display:block;max-width:512px}
.cmp .after{position:absolute;top:0;left:0;width:100%;height:100%;overflow:hidden;clip-path:inset(0 0 0 50%)}
.cmp input{width:100%}.cap{font-size:12px}"""
_JS = """document.querySelectorAll('.cmp input').forEach(function(s){s.addEventListener('input',function(){
s.parentNode.querySelector('.after').style.clipPath='inset(0 0 0 '+s.value+'%)';});});"""


def _write_html(path: Path, visuals: list[dict[str, Any]], rows: list[dict[str, Any]], summary: dict[str, Any],
                metric_names: Sequence[str]) -> Path:
    """Self-contained page: the summary table, then per image a slider (left = input, right =
    output) for each method, and the ground truth when there is one."""
    esc = html.escape
    by_key = {(r["method"], r["image"]): r for r in rows}
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>uniremoval eval: {esc(summary['set'])}</title>",
             f"<style>{_CSS}</style></head><body><h1>uniremoval evaluation: {esc(summary['set'])} set</h1>",
             f"<p>{summary['images']} images, data sha256 <code>{esc(summary['data']['files_sha256'][:16])}</code>, "
             f"uniremoval {esc(summary['environment']['uniremoval'])}. Drag a slider: left of it is the input, right the output.</p>",
             _html_table(summary, metric_names)]
    for v in visuals:
        parts.append(f"<h3>{esc(v['name'])} <small>({esc(v['kind'])})</small></h3><div>")
        before = _data_uri(v["input"])
        for m, out in v["outputs"].items():
            r = by_key.get((m, v["name"]), {})
            cap = ", ".join(f"{k} {_fmt(r.get(k))}" for k in metric_names if _fmt(r.get(k)))
            parts.append(f"<div class='cmp'><div style='position:relative'><img src='{before}' alt='input'>"
                         f"<div class='after'><img src='{_data_uri(out)}' alt='{esc(m)}'></div></div>"
                         f"<input type='range' min='0' max='100' value='50' aria-label='before/after {esc(m)}'>"
                         f"<div class='cap'><b>{esc(m)}</b> {esc(cap)}</div></div>")
        if v["target"] is not None:
            parts.append(f"<div class='cmp'><img src='{_data_uri(v['target'])}' alt='ground truth'><div class='cap'><b>ground truth</b></div></div>")
        parts.append("</div>")
    parts.append(f"<script>{_JS}</script></body></html>\n")
    atomic_write_bytes(path, "".join(parts).encode())
    return path


def _html_table(summary: dict[str, Any], metric_names: Sequence[str]) -> str:
    esc = html.escape
    means = summary["means"]
    kinds = sorted({k for m in means.values() for k in m if k != "all"}) + ["all"]
    head = "".join(f"<th>{esc(k)} {esc(mn)} {'↓' if mn in LOWER_IS_BETTER else '↑'}</th>" for k in kinds for mn in metric_names)
    body = []
    for method, per in means.items():
        cells = "".join(f"<td>{'' if per.get(k, {}).get(mn) is None else f'{per[k][mn]:.4g}'}</td>" for k in kinds for mn in metric_names)
        body.append(f"<tr><th>{esc(method)}</th>{cells}</tr>")
    return f"<table><tr><th>method</th>{head}</tr>{''.join(body)}</table>"
