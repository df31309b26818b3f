"""The pipeline's config (:class:`PipelineConfig`) and every stage's config it resolves.

The pipeline decides some of each stage's values (run names and folders, data folders, the
teachers and the student to start from); they are merged over the stage's YAML as typed
values, and the user's ``--set`` overrides of that stage come last.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..train.config import ConfigError, load_config

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
    #: Synthesis ranges of the fixed evaluation pairs: ``r6`` keeps the pairs every release
    #: so far was measured on, whatever ranges training uses.
    preset: str = "r6"

    def validate(self, where: str) -> None:
        if self.count < 1 or self.crop < 16:
            raise ConfigError(f"{where}: count >= 1 and crop >= 16 required")
        from ..degrade.presets import PRESETS

        if self.preset not in PRESETS:
            raise ConfigError(f"{where}.preset: unknown {self.preset!r}; known: {', '.join(PRESETS)}")


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


def out_dir(cfg: PipelineConfig) -> Path:
    """The pipeline's output folder."""
    return Path(cfg.out_dir).expanduser()


def _fixed(cfg: PipelineConfig, name: str, **data: Any) -> dict[str, Any]:
    """What the pipeline decides for a stage, as typed values merged over the stage's YAML
    (never as ``key=value`` text: a folder named ``my photos #2`` must stay whole)."""
    return {"run": {"name": name, "out_dir": str(out_dir(cfg) / "runs")}, "data": {"clean_dir": cfg.clean_dir, "val_dir": cfg.val_dir, **data}}


def teacher_config(cfg: PipelineConfig, kind: str) -> Any:
    """Stage-0 config of ``kind``: its YAML, then the pipeline's folders, then the user's overrides."""
    from .teacher import load_teacher_config

    overrides = cfg.teacher.set + cfg.teacher_kind_set.get(kind, [])
    return load_teacher_config(cfg.teacher.config, kind=kind, overrides=overrides, fixed=_fixed(cfg, f"teacher-{kind}"))


def transfer_config(cfg: PipelineConfig, teachers: dict[str, str]) -> Any:
    """Stage-1 config: teachers = ``teachers`` (kind -> export), the pipeline's folders."""
    from .transfer import load_transfer_config

    tc = load_transfer_config(cfg.transfer.config, None, cfg.transfer.set, fixed=_fixed(cfg, "transfer"))
    tc.teachers = {k: teachers[k] for k in cfg.kinds}  # kinds' order = the student's kinds order
    return tc


def adapt_config(cfg: PipelineConfig, student: str, teachers: dict[str, str]) -> Any:
    """Stage-2 config: student = stage 1's export, real = the split's train side."""
    from .adapt import load_adapt_config

    fixed = _fixed(cfg, "adapt", real_dir=str(out_dir(cfg) / "split" / "train"), kinds=list(cfg.kinds))
    fixed.update(student=student, teachers=dict(teachers))
    return load_adapt_config(cfg.adapt.config, cfg.adapt.set, fixed=fixed)


def stage_configs(cfg: PipelineConfig) -> dict[str, Any]:
    """Every stage's resolved config, with placeholder paths for exports that do not exist yet
    (``OUT/runs/<stage>/export/...``): validates all stage YAMLs and overrides before hours of
    training, and is what ``--dry-run`` prints."""
    runs = out_dir(cfg) / "runs"
    teachers = {k: cfg.teachers.get(k, str(runs / f"teacher-{k}" / "export" / f"teacher-{k}.json")) for k in cfg.kinds}
    out: dict[str, Any] = {f"teacher-{k}": teacher_config(cfg, k) for k in cfg.kinds if k not in cfg.teachers}
    out["transfer"] = transfer_config(cfg, teachers)
    out["adapt"] = adapt_config(cfg, str(export_path(out["transfer"])), teachers)
    return out


def export_path(stage_cfg: Any) -> Path:
    """Where a stage's trainer writes its export (``RUN/export/<name>.json``)."""
    return Path(stage_cfg.run.out_dir).expanduser() / stage_cfg.run.name / "export" / f"{stage_cfg.run.name}.json"
