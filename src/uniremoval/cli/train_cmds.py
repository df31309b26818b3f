"""Training commands: ``uniremoval train teacher`` (stage 0), ``train transfer`` (stage 1),
``train ablation`` (stage-1 ablation rows), ``train adapt`` (stage 2), ``train pipeline``
(everything, resumable), ``train show-config``, ``train export``.

Runs on one process as is, or data-parallel under torchrun with the same config::

    torchrun --standalone --nproc_per_node=2 $(which uniremoval) train teacher --kind haze --config configs/teacher.yaml
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, List, Optional

import typer

from ._console import fail as _fail, out

train_app = typer.Typer(
    no_args_is_help=True,
    help=(
        "Train the method's networks: teacher (stage 0, one specialist per kind), transfer (stage 1, one "
        "student from the teachers), adapt (stage 2, the student on real photos), pipeline (all of it, "
        "resumable), ablation (stage-1 ablation rows)."
    ),
    context_settings={"help_option_names": ["-h", "--help"]},
)
SET_HELP = "Override a config value: --set optim.lr=1e-4 (repeatable; the value is parsed as YAML)."




def _run_stage(load: Callable[[], Any], train: Callable[[Any], Any], dry_run: bool) -> tuple[Any, Any] | None:
    """What every stage command does: resolve the config (errors exit 2), print it on
    --dry-run (returns None), else train, resuming, and return (config, result)."""
    from ..train.config import ConfigError, dump_yaml

    try:
        cfg = load()
    except ConfigError as e:
        raise _fail(str(e), 2)
    if dry_run:
        typer.echo(dump_yaml(cfg), nl=False)
        return None
    try:
        return cfg, train(cfg)
    except ConfigError as e:
        raise _fail(str(e), 2)
    except KeyboardInterrupt:
        raise _fail("interrupted; run the same command again to resume from the last checkpoint", 130)


@train_app.command()
def teacher(
    kind: str = typer.Option(..., "--kind", "-k", metavar="KIND", help="Degradation kind this teacher removes (haze, rain, blur, or any registered kind)."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", metavar="FILE.yaml", help="Experiment YAML (e.g. configs/teacher.yaml)."),
    set_: List[str] = typer.Option([], "--set", "-s", metavar="KEY=VALUE", help=SET_HELP),
    steps: Optional[int] = typer.Option(None, "--steps", metavar="N", help="Shortcut for --set run.steps=N."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the resolved config and exit."),
) -> None:
    """Train (or resume) a specialist teacher for one degradation kind; export its EMA weights."""
    from ..stages.teacher import load_teacher_config, train_teacher

    overrides = list(set_) + ([f"run.steps={steps}"] if steps is not None else [])
    done = _run_stage(lambda: load_teacher_config(config, kind=kind, overrides=overrides), train_teacher, dry_run)
    if done is not None and done[1].export is not None:
        out.print(f"teacher ({kind}) after {done[1].step} steps: {done[1].export}")


@train_app.command()
def transfer(
    teachers: Optional[str] = typer.Option(None, "--teachers", "-t", metavar="KIND=PATH,...", help="Teacher model files per kind: haze=PATH,rain=PATH,blur=PATH (replaces the config's teachers)."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", metavar="FILE.yaml", help="Experiment YAML (e.g. configs/transfer.yaml)."),
    set_: List[str] = typer.Option([], "--set", "-s", metavar="KEY=VALUE", help=SET_HELP),
    steps: Optional[int] = typer.Option(None, "--steps", metavar="N", help="Shortcut for --set run.steps=N."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the resolved config and exit."),
) -> None:
    """Stage 1: train (or resume) one student from frozen teachers; export the student."""
    from ..stages.transfer import load_transfer_config, parse_teachers, train_transfer

    overrides = list(set_) + ([f"run.steps={steps}"] if steps is not None else [])
    done = _run_stage(
        lambda: load_transfer_config(config, parse_teachers(teachers) if teachers else None, overrides), train_transfer, dry_run
    )
    if done is not None and done[1].export is not None:
        cfg, res = done
        out.print(f"student ({', '.join(cfg.all_kinds())}) after {res.step} steps: {res.export}")


@train_app.command()
def ablation(
    teachers: str = typer.Option(..., "--teachers", "-t", metavar="KIND=PATH,...", help="Teacher model files per kind: haze=PATH,rain=PATH,blur=PATH."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", metavar="FILE.yaml", help="Base transfer YAML shared by every row (e.g. configs/ablation.yaml)."),
    out_dir: Path = typer.Option(..., "--out", "-o", metavar="DIR", help="Folder for the rows' runs and the table (reruns resume)."),
    set_: List[str] = typer.Option([], "--set", "-s", metavar="KEY=VALUE", help=SET_HELP),
    rows: Optional[str] = typer.Option(None, "--rows", metavar="ROW,...", help="Comma-separated subset of rows (default: all-in-one,transfer,contrast)."),
    eval_dir: Optional[Path] = typer.Option(None, "--eval-dir", metavar="DIR", help="Clean photos of the fixed evaluation set (default: data.val_dir)."),
    eval_count: int = typer.Option(14, "--eval-count", metavar="N", help="Evaluation pairs per kind."),
    eval_crop: int = typer.Option(256, "--eval-crop", metavar="PIXELS", help="Side of the evaluation crops."),
    eval_seed: int = typer.Option(2023, "--eval-seed", metavar="N", help="Seed of the evaluation pairs."),
) -> None:
    """Train the stage-1 ablation rows with equal data and steps; write a per-kind Markdown table."""
    from ..train.config import ConfigError
    from ..stages.ablation import ROW_NAMES, run_ablation
    from ..stages.transfer import load_transfer_config, parse_teachers

    try:
        cfg = load_transfer_config(config, parse_teachers(teachers), list(set_))
        chosen = [r.strip() for r in rows.split(",")] if rows else list(ROW_NAMES)
        table = run_ablation(cfg, out_dir, chosen, eval_dir=eval_dir, eval_count=eval_count, eval_crop=eval_crop, eval_seed=eval_seed, log=out.print)
    except ConfigError as e:
        raise _fail(str(e), 2)
    except KeyboardInterrupt:
        raise _fail("interrupted; run the same command again to resume", 130)
    typer.echo(table.read_text(), nl=False)


@train_app.command("show-config")
def show_config(
    config: Optional[Path] = typer.Argument(None, metavar="[FILE.yaml]", help="Experiment YAML (default: built-in defaults)."),
    kind: Optional[str] = typer.Option(None, "--kind", "-k", metavar="KIND", help="Degradation kind (replaces the file's)."),
    set_: List[str] = typer.Option([], "--set", "-s", metavar="KEY=VALUE", help=SET_HELP),
) -> None:
    """Validate a teacher config and print it fully resolved (defaults filled in)."""
    from ..train.config import ConfigError, dump_yaml
    from ..stages.teacher import load_teacher_config

    try:
        cfg = load_teacher_config(config, kind=kind, overrides=set_)
    except ConfigError as e:
        raise _fail(str(e), 2)
    typer.echo(dump_yaml(cfg), nl=False)


@train_app.command("export")
def export(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help="A run folder (holds config.yaml and ckpt/)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", metavar="FILE.json", help="Model .json to write (default: RUN/export/NAME-STEP.json)."),
    best: bool = typer.Option(False, "--best", help="Export the best validated weights instead of the last checkpoint."),
    raw: bool = typer.Option(False, "--raw", help="Export the raw weights instead of the EMA."),
    half: bool = typer.Option(False, "--half", help="Store fp16 weights."),
) -> None:
    """Export a checkpoint of a teacher or stage-1 (transfer) run, e.g. an unfinished one, as a
    model file (a stage-1 run exports its student)."""
    import yaml

    from ..modelfile import save_model
    from ..nets import build
    from ..stages.teacher import load_teacher_config
    from ..stages.transfer import load_transfer_config
    from ..train import checkpoint as ckpt
    from ..train.config import ConfigError
    from ..train.trainer import git_commit

    config = run_dir / "config.yaml"
    try:
        top = yaml.safe_load(config.read_text()) if config.is_file() else None
        # A stage-1 config names its teachers or kinds; a teacher's names its one kind.
        transfer = isinstance(top, dict) and ("teachers" in top or "kinds" in top)
        cfg = load_transfer_config(config) if transfer else load_teacher_config(config)
    except (ConfigError, yaml.YAMLError) as e:
        raise _fail(str(e), 2)
    path = run_dir / "ckpt" / ("best.pt" if best else "last.pt")
    if not path.is_file() and best and (run_dir / "ckpt" / "last.pt").is_file():
        # best.pt is the best *validated* state: a run without validation never writes one.
        raise _fail(f"{path}: none, as this run never validated (no data.val_dir); export the last checkpoint (without --best)")
    if not path.is_file():
        raise _fail(f"{path}: no such checkpoint")
    state = ckpt.load(path)
    name = "model" if transfer else "net"
    if best:
        weights = state["modules"][name] if raw or name not in state["ema"] else state["ema"][name]
    else:
        comp = state["components"][name]
        weights = comp["module"] if raw or comp["ema"] is None else comp["ema"]["module"]
    if transfer:
        # The trained module is the student plus its feature projectors; only the student runs.
        weights = {k[len("student."):]: v for k, v in weights.items() if k.startswith("student.")}
    net = build(cfg.model.arch, **cfg.model.args)
    net.load_state_dict(weights)
    step = int(state["step"])
    dest = output or run_dir / "export" / f"{cfg.run.name}-{step}{'-best' if best else ''}.json"
    prov = {"stage_config": state.get("config"), "steps": step, "checkpoint": str(path), "weights": "raw" if raw else "ema", "git_commit": git_commit()}
    if transfer:
        prov["stage"] = "transfer"
    kinds = cfg.all_kinds() if transfer else [cfg.kind]  # type: ignore[union-attr]
    written = save_model(net, dest, cfg.model.arch, cfg.model.args, kinds, prov, half=half)
    out.print(str(written))


@train_app.command("adapt")
def adapt(
    student: Optional[str] = typer.Option(None, "--student", metavar="FILE.json", help="Model file of the student to adapt (stage 1's export)."),
    real: Optional[Path] = typer.Option(None, "--real", metavar="DIR", help="Real degraded photos (hazy/, rain/, blur/ subfolders give the kind; others are unlabelled)."),
    clean: Optional[Path] = typer.Option(None, "--clean", metavar="DIR", help="Clean photos (the discriminator's 'real' class; also synthetic replay unless data.synthetic_dir is set)."),
    teachers: Optional[str] = typer.Option(None, "--teachers", metavar="KIND=PATH,...", help="haze=PATH,rain=PATH,...: pseudo-targets for real photos of known kind (optional)."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", metavar="FILE.yaml", help="Experiment YAML (e.g. configs/adapt.yaml)."),
    set_: List[str] = typer.Option([], "--set", "-s", metavar="KEY=VALUE", help=SET_HELP),
    steps: Optional[int] = typer.Option(None, "--steps", metavar="N", help="Shortcut for --set run.steps=N."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the resolved config and exit."),
) -> None:
    """Stage 2: adapt a student to unpaired real photos (GAN + extended and cluster contrast + synthetic replay); resumable."""
    from ..stages.adapt import load_adapt_config, parse_teachers, train_adapt

    # Typed values, not "key=value" text: a path holding " #" or ": " must not be read as YAML.
    fixed: dict[str, Any] = {"student": student} if student else {}
    folders = {k: str(v) for k, v in (("real_dir", real), ("clean_dir", clean)) if v}
    if folders:
        fixed["data"] = folders

    def load() -> Any:
        if teachers:
            fixed["teachers"] = parse_teachers(teachers)
        return load_adapt_config(config, list(set_) + ([f"run.steps={steps}"] if steps is not None else []), fixed=fixed)

    done = _run_stage(load, train_adapt, dry_run)
    if done is not None and done[1].export is not None:
        res = done[1]
        out.print(f"adapted student after {res.step} steps ({res.rollbacks} rollbacks): {res.export}")


@train_app.command("adapt-split")
def adapt_split(
    real: Path = typer.Argument(..., metavar="REAL_DIR", help="Folder of real photos (kind subfolders kept)."),
    output: Path = typer.Option(..., "-o", "--output", metavar="DIR", help="Writes OUT/train, OUT/heldout (links) and OUT/split.json."),
    holdout: float = typer.Option(0.25, "--holdout", metavar="SHARE", help="Share of each kind folder held out."),
    seed: int = typer.Option(0, "--seed", metavar="N", help="Seed of the hash ranking."),
    copy: bool = typer.Option(False, "--copy", help="Copy files instead of linking them."),
) -> None:
    """Split real photos deterministically into train / held-out (per kind, by seeded name hash)."""
    from ..stages.realsplit import write_split

    try:
        plan = write_split(real, output, holdout, seed, copy)
    except (OSError, ValueError) as e:
        raise _fail(str(e), 2)
    for g, c in plan["counts"].items():
        out.print(f"{g}: {c['train']} train, {c['heldout']} held out")
    out.print(str(output / "split.json"))


@train_app.command("pipeline")
def pipeline(
    config: Optional[Path] = typer.Option(None, "--config", "-c", metavar="FILE.yaml", help="Pipeline YAML (e.g. configs/default/pipeline.yaml)."),
    set_: List[str] = typer.Option([], "--set", "-s", metavar="KEY=VALUE", help=SET_HELP + " Paths: clean_dir, val_dir, real_dir, out_dir; teachers.haze=PATH skips that teacher."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the resolved pipeline config and every stage's config, and exit."),
) -> None:
    """The whole method in one resumable command: real-photo split, teachers, transfer,
    adaptation, evaluation report, and OUT/final/default.json. Rerun the same command after
    an interruption (even a kill): finished stages are skipped, the current one resumes."""
    from ..train.config import dump_yaml
    from ..stages.pipeline import load_pipeline_config, run_pipeline, stage_configs

    done = _run_stage(lambda: load_pipeline_config(config, list(set_)), lambda cfg: run_pipeline(cfg, log=out.print), dry_run)
    if done is None:
        cfg = load_pipeline_config(config, list(set_))
        for name, sc in stage_configs(cfg).items():
            typer.echo(f"# ---- stage {name}\n{dump_yaml(sc)}", nl=False)
        return
    res = done[1]
    if res.final is None:
        raise _fail("the pipeline stopped before the end; run the same command again to resume")
    out.print(f"report: {res.report}\nfinal model: {res.final}")


def register(app: typer.Typer) -> None:
    """Attach ``train`` to the top-level app."""
    app.add_typer(train_app, name="train")
