"""The whole method in one resumable run: split, teachers, transfer, adaptation, evaluation, ship.

``uniremoval train pipeline --config configs/default/pipeline.yaml`` runs, in order:

1. **split**: the real photos into ``OUT/split/{train,heldout}`` (:mod:`.realsplit`), written
   once; the held-out share is only ever evaluated on.
2. **teachers**: one stage-0 teacher per kind (skipped for a kind given in ``teachers``).
3. **transfer**: stage 1, teachers = the teachers' exports.
4. **adapt**: stage 2, student = transfer's export, real = ``OUT/split/train``.
5. **eval**: :mod:`uniremoval.evaluate` on a fixed synthetic set made from ``val_dir`` and on
   ``OUT/split/heldout``: input, dcp, teachers, stage-1 and stage-2 student rows, into
   ``OUT/report/`` (which names the student ``final.stage`` ships).
6. **final**: the student of ``final.stage`` (the adapted one by default) copied to
   ``OUT/final/<name>.json`` (fp16 when large).

Every stage writes its run under ``OUT/runs/<name>``. A stage is *done* when its export exists
and the stage config recorded in the export equals the one this run would use; otherwise it is
(re)entered, and the stage itself resumes from its last checkpoint. So killing the process at
any point (even SIGKILL) and rerunning the same command continues where it stopped.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..train.config import ConfigError, dump_yaml, from_dict, to_dict
from .pipeline_config import (
    DEFAULT_KINDS, EvalConfig, FinalConfig, PipelineConfig, SplitConfig, StageRef, adapt_config, export_path,
    load_pipeline_config, out_dir, stage_configs, teacher_config, transfer_config,
)


def stage_done(stage_cfg: Any) -> Path | None:
    """The stage's export when it exists and was made with exactly ``stage_cfg``; else None."""
    from ..modelfile import ModelError, read_config

    path = export_path(stage_cfg)
    if not path.is_file():
        return None
    try:
        recorded = (read_config(path)[0].provenance or {}).get("stage_config")
    except (ModelError, OSError, ValueError):
        return None
    if not isinstance(recorded, dict):
        return None
    try:
        # Read back as a config, so a key recorded under an older name compares as today's.
        recorded = to_dict(from_dict(type(stage_cfg), recorded))
    except ConfigError:
        return None
    # Through JSON so tuples/lists and int/float spellings compare like the recorded copy.
    return path if json.loads(json.dumps(recorded)) == json.loads(json.dumps(to_dict(stage_cfg))) else None


# ---------------------------------------------------------------------------- the run


@dataclass
class PipelineResult:
    """What :func:`run_pipeline` leaves behind."""

    out_dir: Path
    teachers: dict[str, str]
    transfer: Path | None = None
    adapt: Path | None = None
    report: Path | None = None
    final: Path | None = None
    #: Stages that trained (or evaluated) in this call; empty on a rerun of a finished pipeline.
    ran: list[str] = field(default_factory=list)


def run_pipeline(
    cfg: PipelineConfig,
    log: Callable[[str], Any] = print,
    stop_after: dict[str, int] | None = None,
) -> PipelineResult:
    """Run (or resume) the whole pipeline; see the module docstring.

    ``stop_after`` (tests) maps a stage (``teacher-<kind>``, ``transfer``, ``adapt``) to a step
    at which that stage stops as if killed; the pipeline then returns unfinished.
    """
    from .adapt import train_adapt
    from .teacher import train_teacher
    from .transfer import train_transfer

    stop_after = stop_after or {}
    out = out_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    (out / "pipeline.yaml").write_text(dump_yaml(cfg))
    res = PipelineResult(out, {})

    # 1. split (once: rewriting it later would move photos between train and held-out).
    if ensure_split(cfg):
        res.ran.append("split")
    log(f"== split: {out / 'split'}")

    # 2. teachers: given ones are used as they are; the others are trained (or resumed).
    for kind in cfg.kinds:
        if kind in cfg.teachers:
            res.teachers[kind] = str(Path(cfg.teachers[kind]).expanduser().resolve())
            log(f"== teacher {kind}: given, {res.teachers[kind]}")
            continue
        tc = teacher_config(cfg, kind)
        detail = f"{tc.run.steps} steps ({tc.model.arch}, crop {tc.data.crop}, {tc.data.images_per_step} images a step)"
        done = _run_stage(f"teacher-{kind}", f"teacher {kind}", tc, train_teacher, detail, res, stop_after, log)
        if done is None:
            return res
        res.teachers[kind] = str(done.resolve())

    # 3. transfer.
    tc = transfer_config(cfg, res.teachers)
    detail = f"{tc.run.steps} steps ({tc.data.images_per_step} images a step, crop {tc.data.crop})"
    res.transfer = _run_stage("transfer", "transfer", tc, train_transfer, detail, res, stop_after, log)
    if res.transfer is None:
        return res

    # 4. adaptation.
    ac = adapt_config(cfg, str(res.transfer.resolve()), res.teachers)
    detail = f"{ac.run.steps} steps ({ac.data.triplets_per_step} triplets a step, crop {ac.data.crop})"
    res.adapt = _run_stage("adapt", "adapt", ac, train_adapt, detail, res, stop_after, log)
    if res.adapt is None:
        return res

    # 5. evaluation, 6. the shipped model.
    res.report, evaluated = evaluate_pipeline(cfg, res.teachers, res.transfer, res.adapt, log)
    if evaluated:
        res.ran.append("eval")
    shipped = res.adapt if cfg.final.stage == "adapt" else res.transfer
    res.final = ship_final(cfg, shipped, {"teachers": res.teachers, "transfer": str(res.transfer), "adapt": str(res.adapt), "shipped_stage": cfg.final.stage})
    log(f"== final model: {res.final}")
    return res


def ensure_split(cfg: PipelineConfig) -> bool:
    """Write ``OUT/split`` unless a split of the same folder, share and seed is there; True if written."""
    from .realsplit import write_split

    split = out_dir(cfg) / "split"
    manifest = split / "split.json"
    root = Path(cfg.real_dir).expanduser()  # type: ignore[arg-type]
    if manifest.is_file():
        plan = json.loads(manifest.read_text())
        same = plan.get("root") == str(root.resolve()) and plan.get("holdout") == cfg.split.holdout and plan.get("seed") == cfg.split.seed
        if not same:
            raise ConfigError(f"{split} holds a split of other photos or another share/seed; remove it (and the adapt run) to re-split")
        return False
    write_split(root, split, cfg.split.holdout, cfg.split.seed, cfg.split.copy)
    return True


# ---------------------------------------------------------------------------- evaluation


def write_pairs(sets: Mapping[str, Sequence[dict[str, Any]]], dest: Path) -> list[Any]:
    """Write per-kind ``{"input", "target"}`` tensors as ``dest/KIND/NNN_{input,target}.png``
    so the evaluation reads them like any paired set; returns the evaluation items."""
    from ..data.io import write_png
    from ..evaluate import Item

    items = []
    for kind, vs in sets.items():
        for i, it in enumerate(vs):
            x, y = dest / kind / f"{i:03d}_input.png", dest / kind / f"{i:03d}_target.png"
            write_png(x, it["input"].permute(1, 2, 0).numpy())
            write_png(y, it["target"].permute(1, 2, 0).numpy())
            items.append(Item(f"{kind}/{i:03d}", kind, x, y))
    return items


def _synthetic_set(cfg: PipelineConfig, dest: Path) -> list[Any]:
    """The fixed synthetic evaluation pairs (``eval.count`` per kind, seeded), as PNGs."""
    from ..degrade import Registry
    from .common import synthetic_val_sets

    sets = synthetic_val_sets(cfg.val_dir, cfg.kinds, cfg.eval.count, cfg.eval.crop, cfg.eval.seed, Registry.preset(cfg.eval.preset))  # type: ignore[arg-type]
    return write_pairs(sets, dest)


def evaluate_pipeline(
    cfg: PipelineConfig, teachers: dict[str, str], transfer: Path, adapted: Path, log: Callable[[str], Any] = print
) -> tuple[Path, bool]:
    """Evaluate input, dcp, teachers and the stage-1 and stage-2 students; write ``OUT/report``
    (which names the one ``final.stage`` ships).

    Skipped (returns False) when ``report/stamp.json`` shows the same models and settings were
    evaluated already.
    """
    from ..evaluate import Method, evaluate_set, load_method, per_kind_method, real_items
    from ..modelfile import read_config

    report = out_dir(cfg) / "report"
    models = {"teachers": teachers, "stage1": str(transfer), "stage2": str(adapted)}
    sums = {k: read_config(p)[0].sha256 for k, p in [*teachers.items(), ("stage1", transfer), ("stage2", adapted)]}
    stamp = {"eval": to_dict(cfg.eval), "val_dir": cfg.val_dir, "models": models, "sha256": sums, "shipped": cfg.final.stage}
    stamp_path = report / "stamp.json"
    if stamp_path.is_file() and json.loads(stamp_path.read_text()) == stamp and (report / "report.md").is_file():
        log(f"== eval: done, {report / 'report.md'}")
        return report / "report.md", False

    log(f"== eval: {cfg.eval.count} synthetic pairs per kind{' + held-out real photos' if cfg.eval.real else ''}")
    dev = cfg.eval.device
    methods: list[Method] = [load_method("identity")]
    methods[0].name = "input"
    if cfg.eval.dcp:
        methods.append(load_method("dcp"))
    tm = {k: load_method(p, device=dev) for k, p in teachers.items()}
    methods.append(per_kind_method("teachers", tm))
    stage1, stage2 = load_method(str(transfer), device=dev), load_method(str(adapted), device=dev)
    stage1.name, stage2.name = "stage1-student", "stage2-student"
    methods += [stage1, stage2]

    syn_dir = report / "synthetic_set"
    items = _synthetic_set(cfg, syn_dir)
    shipped = "stage2-student" if cfg.final.stage == "adapt" else "stage1-student"
    parts = ["# Default pipeline evaluation\n", f"Shipped as `final/{cfg.final.name}.json`: `{shipped}` (final.stage: {cfg.final.stage}).\n"]
    evaluate_set(methods, items, "paired", report, syn_dir, log=log)
    parts.append(f"## Synthetic pairs from `{cfg.val_dir}` ({cfg.eval.count} per kind, crop {cfg.eval.crop}, seed {cfg.eval.seed})\n")
    parts.append((report / "paired_summary.md").read_text())
    if cfg.eval.real:
        held = out_dir(cfg) / "split" / "heldout"
        # Real photos of a kind without a teacher (e.g. unknown/) only get the single-model rows.
        ritems = [it for it in real_items(held) if it.kind in cfg.kinds]
        if ritems:
            evaluate_set(methods, ritems, "real", report, held, log=log)
            parts.append(f"\n## Held-out real photos (`{held}`, {len(ritems)} photos)\n")
            parts.append((report / "real_summary.md").read_text())
    (report / "report.md").write_text("\n".join(parts))
    stamp_path.write_text(json.dumps(stamp, indent=1))
    return report / "report.md", True


def _run_stage(
    key: str, label: str, stage_cfg: Any, train: Callable[..., Any], detail: str,
    res: "PipelineResult", stop_after: Mapping[str, int], log: Callable[[str], None],
) -> Path | None:
    """A stage's export: the existing one when it was made with exactly ``stage_cfg``, else
    train (or resume) it. None when training stopped early (``stop_after``) without export."""
    done = stage_done(stage_cfg)
    if done is not None:
        log(f"== {label}: done, {done}")
        return done
    log(f"== {label}: training {detail}")
    r = train(stage_cfg, stop_after=stop_after.get(key))
    res.ran.append(key)
    return r.export


def ship_final(cfg: PipelineConfig, adapted: Path, inputs: dict[str, Any]) -> Path:
    """Copy a student (``adapted``: the stage ``final.stage`` names) to
    ``OUT/final/<name>.json`` (+ .safetensors): fp16 weights when the fp32 file is over
    ``final.half_over_mb`` MB, else as it is."""
    from ..modelfile import load_model, read_config, save_model

    mc, json_path = read_config(adapted)
    weights = json_path.parent / mc.weights
    half = weights.stat().st_size > cfg.final.half_over_mb * 1e6
    dest = out_dir(cfg) / "final" / f"{cfg.final.name}.json"
    if dest.is_file() and (read_config(dest)[0].provenance or {}).get("source_sha256") == mc.sha256:
        return dest  # already shipped from these weights
    m = load_model(adapted)
    prov = dict(mc.provenance or {}, pipeline=to_dict(cfg), pipeline_inputs=inputs, source=str(adapted), source_sha256=mc.sha256)
    dest.parent.mkdir(parents=True, exist_ok=True)
    return save_model(m.net, dest, mc.arch, dict(mc.arch_args or {}), list(mc.kinds), prov, half=half)


__all__ = [
    "PipelineConfig", "PipelineResult", "StageRef", "SplitConfig", "EvalConfig", "FinalConfig",
    "load_pipeline_config", "run_pipeline", "stage_configs", "stage_done", "teacher_config", "transfer_config", "adapt_config",
    "write_pairs", "DEFAULT_KINDS",
    "ensure_split", "evaluate_pipeline", "ship_final",
]
