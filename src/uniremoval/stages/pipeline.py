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

from ..train.config import ConfigError, dump_yaml, load_config, to_dict

#: Kinds the default pipeline trains (one teacher each).
DEFAULT_KINDS = ["haze", "rain", "blur"]


@dataclass
class StageRef:
    """One stage's experiment YAML and extra overrides (applied after the pipeline's own)."""

    #: Stage YAML; a relative path is looked up next to the pipeline YAML first, then in the cwd.
    config: str | None = None
    set: list[str] = field(default_factory=list)


@dataclass
class SplitConfig:
    """How the real photos are split (see :mod:`.realsplit`)."""

    holdout: float = 0.25
    seed: int = 0
    #: Copy files instead of symlinking them (for file systems without links).
    copy: bool = False

    def validate(self, where: str) -> None:
        if not 0.0 < self.holdout < 1.0:
            raise ConfigError(f"{where}.holdout: must be in (0, 1)")


@dataclass
class EvalConfig:
    """The final evaluation: fixed synthetic pairs per kind from ``val_dir`` + held-out real photos."""

    count: int = 8
    crop: int = 256
    seed: int = 2023
    #: Evaluation device for the models ("auto", "cpu", "cuda").
    device: str = "auto"
    #: Evaluate the held-out real photos (NIQE/BRISQUE/PIQE).
    real: bool = True
    #: Include the dark-channel-prior baseline row (slow on large real photos).
    dcp: bool = True

    def validate(self, where: str) -> None:
        if self.count < 1 or self.crop < 16:
            raise ConfigError(f"{where}: count >= 1 and crop >= 16 required")


@dataclass
class FinalConfig:
    """Where the shipped model goes and in what precision."""

    name: str = "default"
    #: Store fp16 weights when the fp32 weights file is larger than this many MB.
    half_over_mb: float = 20.0
    #: Which student ships: ``adapt`` (stage 2, the method's end point) or ``transfer``
    #: (stage 1), for budgets where adaptation costs more than it gives; both are evaluated.
    stage: str = "adapt"

    def validate(self, where: str) -> None:
        if self.stage not in ("adapt", "transfer"):
            raise ConfigError(f"{where}: final.stage must be adapt or transfer, not {self.stage!r}")


@dataclass
class PipelineConfig:
    """The default-model pipeline: data folders, stage configs, evaluation, output."""

    #: Clean photos (synthetic pairs for every stage; the discriminator's clean class).
    clean_dir: str | None = None
    #: Clean photos of the fixed synthetic validation and evaluation sets.
    val_dir: str | None = None
    #: Real degraded photos with hazy/ rain/ blur/ subfolders (split into train / held-out).
    real_dir: str | None = None
    #: Everything is written under this folder (runs/, split/, report/, final/).
    out_dir: str = "runs/default"
    kinds: list[str] = field(default_factory=lambda: list(DEFAULT_KINDS))
    #: Pre-trained teachers (kind -> model file): stage 0 is skipped for these kinds.
    teachers: dict[str, str] = field(default_factory=dict)
    teacher: StageRef = field(default_factory=StageRef)
    #: Per-kind teacher overrides, applied after ``teacher.set`` (e.g. blur: [run.steps=900]).
    teacher_kind_set: dict[str, list[str]] = field(default_factory=dict)
    transfer: StageRef = field(default_factory=StageRef)
    adapt: StageRef = field(default_factory=StageRef)
    split: SplitConfig = field(default_factory=SplitConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    final: FinalConfig = field(default_factory=FinalConfig)
    #: Folder of the pipeline YAML (set on load; resolves relative stage config paths).
    base_dir: str | None = None

    def validate(self, where: str) -> None:
        if not self.kinds or len(set(self.kinds)) != len(self.kinds):
            raise ConfigError(f"{where}.kinds: need distinct kinds")
        extra = sorted(set(self.teachers) - set(self.kinds))
        if extra:
            raise ConfigError(f"{where}.teachers: kinds {', '.join(extra)} are not in kinds")


def load_pipeline_config(path: str | Path | None, overrides: Sequence[str] = ()) -> PipelineConfig:
    """Read a pipeline YAML with ``--set`` overrides; checks the data folders and stage YAMLs exist."""
    cfg = load_config(PipelineConfig, path, list(overrides))
    if path is not None and cfg.base_dir is None:
        cfg.base_dir = str(Path(path).resolve().parent)
    for key in ("clean_dir", "val_dir", "real_dir"):
        value = getattr(cfg, key)
        if not value:
            raise ConfigError(f"{key}: not set (use --set {key}=PATH)")
        if not Path(value).expanduser().is_dir():
            raise ConfigError(f"{key}: {value} is not a folder")
    for name in ("teacher", "transfer", "adapt"):
        ref: StageRef = getattr(cfg, name)
        if ref.config is not None:
            ref.config = str(_stage_yaml(cfg, ref.config, name))
    for kind, p in cfg.teachers.items():
        if not Path(p).expanduser().is_file():
            raise ConfigError(f"teachers.{kind}: {p} is not a file")
    stage_configs(cfg)  # fail now, not after the teachers trained, on a bad stage YAML or override
    return cfg


def _stage_yaml(cfg: PipelineConfig, value: str, name: str) -> Path:
    """A stage YAML path: as given if absolute, else next to the pipeline YAML, else from the cwd."""
    p = Path(value).expanduser()
    candidates = [p] if p.is_absolute() else ([Path(cfg.base_dir) / p] if cfg.base_dir else []) + [p]
    for c in candidates:
        if c.is_file():
            return c.resolve()
    raise ConfigError(f"{name}.config: {value} not found (looked in {', '.join(str(c) for c in candidates)})")


# ---------------------------------------------------------------------------- stage configs


def _out(cfg: PipelineConfig) -> Path:
    return Path(cfg.out_dir).expanduser()


def teacher_config(cfg: PipelineConfig, kind: str) -> Any:
    """Stage-0 config of ``kind``: its YAML, then the pipeline's folders, then the user's overrides."""
    from .teacher import load_teacher_config

    pre = [f"run.name=teacher-{kind}", f"run.out_dir={_out(cfg) / 'runs'}", f"data.clean_dir={cfg.clean_dir}", f"data.val_dir={cfg.val_dir}"]
    return load_teacher_config(cfg.teacher.config, kind=kind, overrides=pre + cfg.teacher.set + cfg.teacher_kind_set.get(kind, []))


def transfer_config(cfg: PipelineConfig, teachers: dict[str, str]) -> Any:
    """Stage-1 config: teachers = ``teachers`` (kind -> export), the pipeline's folders."""
    from .transfer import load_transfer_config

    pre = ["run.name=transfer", f"run.out_dir={_out(cfg) / 'runs'}", f"data.clean_dir={cfg.clean_dir}", f"data.val_dir={cfg.val_dir}"]
    tc = load_transfer_config(cfg.transfer.config, None, pre + cfg.transfer.set)
    tc.teachers = {k: teachers[k] for k in cfg.kinds}  # kinds' order = the student's kinds order
    return tc


def adapt_config(cfg: PipelineConfig, student: str, teachers: dict[str, str]) -> Any:
    """Stage-2 config: student = stage 1's export, real = the split's train side."""
    from .adapt import load_adapt_config

    pre = [
        "run.name=adapt", f"run.out_dir={_out(cfg) / 'runs'}", f"student={student}",
        f"data.real_dir={_out(cfg) / 'split' / 'train'}", f"data.clean_dir={cfg.clean_dir}", f"data.val_dir={cfg.val_dir}",
        f"data.kinds={json.dumps(list(cfg.kinds))}",
    ] + [f"teachers.{k}={v}" for k, v in teachers.items()]
    return load_adapt_config(cfg.adapt.config, pre + cfg.adapt.set)


def stage_configs(cfg: PipelineConfig) -> dict[str, Any]:
    """Every stage's resolved config, with placeholder paths for exports that do not exist yet
    (``OUT/runs/<stage>/export/...``): validates all stage YAMLs and overrides before hours of
    training, and is what ``--dry-run`` prints."""
    runs = _out(cfg) / "runs"
    teachers = {k: cfg.teachers.get(k, str(runs / f"teacher-{k}" / "export" / f"teacher-{k}.json")) for k in cfg.kinds}
    out: dict[str, Any] = {f"teacher-{k}": teacher_config(cfg, k) for k in cfg.kinds if k not in cfg.teachers}
    out["transfer"] = transfer_config(cfg, teachers)
    out["adapt"] = adapt_config(cfg, str(_export_path(out["transfer"])), teachers)
    return out


def _export_path(stage_cfg: Any) -> Path:
    """Where a stage's trainer writes its export (``RUN/export/<name>.json``)."""
    return Path(stage_cfg.run.out_dir).expanduser() / stage_cfg.run.name / "export" / f"{stage_cfg.run.name}.json"


def stage_done(stage_cfg: Any) -> Path | None:
    """The stage's export when it exists and was made with exactly ``stage_cfg``; else None."""
    from ..modelfile import ModelError, read_config

    path = _export_path(stage_cfg)
    if not path.is_file():
        return None
    try:
        recorded = (read_config(path)[0].provenance or {}).get("stage_config")
    except (ModelError, OSError, ValueError):
        return None
    # Through JSON so tuples/lists and int/float spellings compare like the recorded copy.
    return path if recorded == json.loads(json.dumps(to_dict(stage_cfg))) else None


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
    out = _out(cfg)
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
        detail = f"{tc.run.steps} steps ({tc.model.arch}, crop {tc.data.crop}, batch {tc.data.batch_size})"
        done = _run_stage(f"teacher-{kind}", f"teacher {kind}", tc, train_teacher, detail, res, stop_after, log)
        if done is None:
            return res
        res.teachers[kind] = str(done.resolve())

    # 3. transfer.
    tc = transfer_config(cfg, res.teachers)
    detail = f"{tc.run.steps} steps (batch {tc.data.batch_size}, crop {tc.data.crop})"
    res.transfer = _run_stage("transfer", "transfer", tc, train_transfer, detail, res, stop_after, log)
    if res.transfer is None:
        return res

    # 4. adaptation.
    ac = adapt_config(cfg, str(res.transfer.resolve()), res.teachers)
    detail = f"{ac.run.steps} steps (batch {ac.data.batch_size}, crop {ac.data.crop})"
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

    split = _out(cfg) / "split"
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
    from .transfer import validation_items

    return write_pairs(validation_items(cfg.val_dir, cfg.kinds, cfg.eval.count, cfg.eval.crop, cfg.eval.seed), dest)  # type: ignore[arg-type]


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

    report = _out(cfg) / "report"
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
        held = _out(cfg) / "split" / "heldout"
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
    dest = _out(cfg) / "final" / f"{cfg.final.name}.json"
    if dest.is_file() and (read_config(dest)[0].provenance or {}).get("source_sha256") == mc.sha256:
        return dest  # already shipped from these weights
    m = load_model(adapted)
    prov = dict(mc.provenance or {}, pipeline=to_dict(cfg), pipeline_inputs=inputs, source=str(adapted), source_sha256=mc.sha256)
    dest.parent.mkdir(parents=True, exist_ok=True)
    return save_model(m.net, dest, mc.arch, dict(mc.arch_args or {}), list(mc.kinds), prov, half=half)


__all__ = [
    "PipelineConfig", "PipelineResult", "StageRef", "SplitConfig", "EvalConfig", "FinalConfig",
    "load_pipeline_config", "run_pipeline", "stage_configs", "stage_done", "teacher_config", "transfer_config", "adapt_config",
    "ensure_split", "evaluate_pipeline", "ship_final",
]
