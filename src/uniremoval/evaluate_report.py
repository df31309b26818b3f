"""Report writers of ``uniremoval eval`` / ``uniremoval bench`` (see :mod:`uniremoval.evaluate`):
per-image CSV, summary JSON and Markdown, the comparison grid PNG and the HTML report with
before/after sliders. Every file is written atomically.
"""
from __future__ import annotations

import base64
import csv
import html
import io
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image as PILImage
from PIL import ImageDraw

from .image_io import atomic_write_bytes

PAIRED_METRICS = ("psnr", "ssim", "psnr_y", "ssim_y")
REAL_METRICS = ("niqe", "brisque", "piqe")
LOWER_IS_BETTER = frozenset(REAL_METRICS)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        if math.isinf(v):
            return "inf"
        return f"{v:.6g}"
    return str(v)


def write_csv(path: Path, rows: list[dict[str, Any]], metric_names: Sequence[str]) -> Path:
    """One line per (method, image): kind, metrics, seconds, error (NaN written empty)."""
    buf = io.StringIO()
    cols = ["method", "image", "kind", *metric_names, "seconds", "error"]
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: _fmt(r.get(k, "")) for k in cols})
    atomic_write_bytes(path, buf.getvalue().encode())
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


def write_md(path: Path, summary: dict[str, Any], metric_names: Sequence[str]) -> Path:
    """The summary as Markdown: data and versions, the methods, then :func:`markdown_table`."""
    d, env = summary["data"], summary["environment"]
    text = [f"# Evaluation: {summary['set']} set", "",
            f"Data: `{d['root']}`, {d['files']} files, sha256 of file list `{d['files_sha256'][:16]}`"
            + (f", manifest sha256 `{d['manifest_sha256'][:16]}`" if "manifest_sha256" in d else ""),
            f"Versions: uniremoval {env['uniremoval']}, torch {env['torch']}, numpy {env['numpy']}, python {env['python']}; seed {env['seed']}", ""]
    def describe(info: dict[str, Any]) -> str:
        if info.get("type") == "model":
            scale = info.get("scale", 1)
            at = "" if scale == 1 else f", working scale {scale} (`--scale`)"
            return f"model `{info['path']}`, weights sha256 `{info['weights_sha256'][:16]}`{at}"
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


def write_html(path: Path, visuals: list[dict[str, Any]], rows: list[dict[str, Any]], summary: dict[str, Any],
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
