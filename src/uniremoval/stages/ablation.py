"""Stage-1 ablation runner: equal data and step budget per row, evaluated per kind.

Rows (docs/method.md, "What the project must show"):

| key | row | loss |
|---|---|---|
| ``all-in-one`` | all-in-one | the student network trained plainly on the mixture: ``L_gt`` only, no teachers |
| ``transfer`` | + transfer | ``L_out + L_gt + L_feat`` (no contrast) |
| ``contrast`` | + multi-grained contrast | full stage 1: ``+ L_img + L_fcl`` |

Every row shares the base config (same seed, so the same batches in the same order, same
steps, same schedule); only the loss weights differ. The table also has the input (do
nothing) and each teacher on its own kind, all on one fixed synthetic evaluation set.
A rerun resumes unfinished rows and re-evaluates.

An untaught kind (``untaught: [clean]``) is evaluated like the others: its column says what
each row does to photos that need nothing (input PSNR ``inf``: the input is the target). The
mean columns average the degraded kinds only, so that every row's mean covers the same kinds.
"""
from __future__ import annotations

import copy
import json
import platform
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from ..jsonio import write_json
from ..train.config import ConfigError, to_dict
from .common import evaluate_net, synthetic_val_sets
from .terms import weights_of
from .transfer import TransferConfig, train_transfer
from .transfer_losses import TERMS

def _off(*groups: str) -> dict[str, float]:
    """Zero weights for every stage-1 term of ``groups`` (:data:`.transfer_losses.TERMS`)."""
    return {w: 0.0 for w in weights_of(TERMS, *groups)}


#: Row key -> (label, loss-weight overrides, the term group the row adds: one of its terms must be on).
ROWS: dict[str, tuple[str, dict[str, float], str]] = {
    "all-in-one": ("all-in-one", {**_off("transfer", "contrast"), **{w: 1.0 for w in weights_of(TERMS, "supervised")}}, "supervised"),
    "transfer": ("+ transfer", _off("contrast"), "transfer"),
    "contrast": ("+ multi-grained contrast", {}, "contrast"),
}
ROW_NAMES = tuple(ROWS)


def row_config(base: TransferConfig, key: str, out_dir: Path) -> TransferConfig:
    """The base config with row ``key``'s loss weights and its own run folder."""
    if key not in ROWS:
        raise ConfigError(f"unknown ablation row {key!r}; known: {', '.join(ROWS)}")
    label, overrides, adds = ROWS[key]
    cfg = copy.deepcopy(base)
    for name, value in overrides.items():
        setattr(cfg.loss, name, value)
    added = weights_of(TERMS, adds)
    if not any(getattr(cfg.loss, w) > 0 for w in added):
        raise ConfigError(f"the {label!r} row needs {' or '.join(f'loss.{w}' for w in added)} > 0 in the base config")
    cfg.run.name = f"ablation-{key}"
    cfg.run.out_dir = str(out_dir / "runs")
    cfg.run.export = True
    return cfg


def _fmt(v: float | None, digits: int) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def markdown(results: dict[str, Any], kinds: Sequence[str], averaged: Sequence[str] | None = None) -> str:
    """The table: one row per method, PSNR/SSIM per kind and their means over ``averaged``
    (default: every kind)."""
    averaged = list(kinds) if averaged is None else list(averaged)
    which = "" if averaged == list(kinds) else f" ({', '.join(averaged)})"
    head = "| row | " + " | ".join(f"{k} PSNR | {k} SSIM" for k in kinds) + f" | mean PSNR{which} | mean SSIM{which} |"
    sep = "|---|" + "---:|---:|" * len(kinds) + "---:|---:|"
    lines = [head, sep]
    for row in results["rows"]:
        cells = []
        ps, ss = [], []
        for k in kinds:
            m = row["per_kind"].get(k)
            cells += [_fmt(m["psnr"] if m else None, 2), _fmt(m["ssim"] if m else None, 4)]
            if m and k in averaged:
                ps.append(m["psnr"])
                ss.append(m["ssim"])
        full = len(ps) == len(averaged) > 0
        cells += [_fmt(sum(ps) / len(ps) if full else None, 2), _fmt(sum(ss) / len(ss) if full else None, 4)]
        lines.append(f"| {row['label']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run_ablation(
    base: TransferConfig,
    out_dir: str | Path,
    rows: Sequence[str] = ROW_NAMES,
    eval_dir: str | Path | None = None,
    eval_count: int = 14,
    eval_crop: int = 256,
    eval_seed: int = 2023,
    log: Callable[[str], Any] = print,
) -> Path:
    """Train every row of ``rows`` (resuming), evaluate input / teachers / rows, write the table.

    Returns the path of ``ablation.md`` (``ablation.json`` beside it has every number, the
    configs, the budget and wall times).
    """
    from ..modelfile import load_model

    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    kinds = base.all_kinds()
    eval_dir = eval_dir or base.data.val_dir
    if not eval_dir:
        raise ConfigError("an evaluation set is needed: --eval-dir or data.val_dir")
    timing_path = out / "timing.json"
    timing: dict[str, float] = json.loads(timing_path.read_text()) if timing_path.is_file() else {}
    exports: dict[str, Path] = {}
    for key in rows:
        cfg = row_config(base, key, out)
        log(f"== row {ROWS[key][0]}: {cfg.run.steps} steps, {cfg.data.images_per_step} images a step, crop {cfg.data.crop}")
        t0 = time.perf_counter()
        res = train_transfer(cfg)
        timing[key] = timing.get(key, 0.0) + (time.perf_counter() - t0)
        timing_path.write_text(json.dumps(timing, indent=2))
        if res.export is None:
            raise RuntimeError(f"row {key} did not finish")
        exports[key] = res.export

    items = synthetic_val_sets(eval_dir, kinds, eval_count, eval_crop, eval_seed)
    results: dict[str, Any] = {"rows": []}
    inputs = {k: evaluate_net(torch.nn.Identity(), v) for k, v in items.items()}
    results["rows"].append({"key": "input", "label": "input", "per_kind": {k: {"psnr": r["input_psnr"], "ssim": r["input_ssim"]} for k, r in inputs.items()}})
    teacher_row: dict[str, Any] = {}
    for k, path in base.teachers.items():
        if k in items:
            r = evaluate_net(load_model(path).net, items[k])
            teacher_row[k] = {"psnr": r["psnr"], "ssim": r["ssim"]}
    if teacher_row:
        results["rows"].append({"key": "teachers", "label": "teachers (each on its own kind)", "per_kind": teacher_row})
    for key, path in exports.items():
        net = load_model(path).net
        per = {}
        for k, v in items.items():
            r = evaluate_net(net, v)
            per[k] = {"psnr": r["psnr"], "ssim": r["ssim"]}
        results["rows"].append({"key": key, "label": ROWS[key][0], "per_kind": per, "model": str(path), "train_seconds": round(timing.get(key, 0.0), 1)})
    results.update(
        {
            "kinds": kinds,
            "eval": {"dir": str(eval_dir), "per_kind": eval_count, "crop": eval_crop, "seed": eval_seed, "metrics": "PSNR/SSIM on RGB, no border crop"},
            "budget": {"steps": base.run.steps, "images_per_step": base.data.images_per_step, "crop": base.data.crop, "student": base.model.arch, "amp": base.run.amp},
            "hardware": {"machine": platform.machine(), "processor": platform.processor(), "torch": torch.__version__, "threads": torch.get_num_threads()},
            "base_config": to_dict(base),
        }
    )
    results["mean_over"] = degraded = [k for k in kinds if k not in base.untaught] or list(kinds)
    write_json(out / "ablation.json", results)
    md = out / "ablation.md"
    md.write_text(markdown(results, kinds, degraded))
    return md
