"""``uniremoval train``'s own texts and options: the group help names every stage, ``export
--best`` says why a run without validation has no best checkpoint, and the adapt command
passes its folders and model files on as they are (no YAML reading of a path)."""
from __future__ import annotations

import sys
from pathlib import Path

import yaml
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_train_toydata import ToyPairs, tiny_config  # noqa: E402

from uniremoval.cli import app  # noqa: E402
from uniremoval.stages.teacher import train_teacher  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def test_train_help_names_every_stage() -> None:
    r = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    description = r.output.split("Options")[0]  # the group's own text, above the command list
    for stage in ("teacher", "transfer", "adapt", "pipeline", "ablation"):
        assert stage in description, f"train --help does not name {stage}:\n{description}"


def test_export_best_of_a_run_without_validation_says_why(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, "run.steps=2", "run.ckpt_every=2")
    res = train_teacher(cfg, ToyPairs(cfg.data.crop), [])  # no validation items: nothing to rank
    assert (res.run_dir / "ckpt" / "last.pt").is_file() and not (res.run_dir / "ckpt" / "best.pt").exists()
    runner = CliRunner()
    r = runner.invoke(app, ["train", "export", str(res.run_dir), "--best", "-o", str(tmp_path / "best.json")], env={"COLUMNS": "200"})
    assert r.exit_code == 1
    assert "never validated" in r.output and "without --best" in r.output
    r = runner.invoke(app, ["train", "export", str(res.run_dir), "-o", str(tmp_path / "last.json")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "last.json").is_file()


def test_adapt_keeps_paths_whole(tmp_path: Path) -> None:
    student = tmp_path / "my models #1" / "student: v2.json"
    real, clean = tmp_path / "real photos #2", tmp_path / "clean: photos"
    args = ["train", "adapt", "--student", str(student), "--real", str(real), "--clean", str(clean),
            "--teachers", f"haze={tmp_path / 'haze #3.json'}", "--config", str(ROOT / "configs" / "tiny_adapt.yaml"), "--dry-run"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    cfg = yaml.safe_load(r.output)
    assert cfg["student"] == str(student)
    assert cfg["data"]["real_dir"] == str(real) and cfg["data"]["clean_dir"] == str(clean)
    assert cfg["teachers"] == {"haze": str(tmp_path / "haze #3.json")}


def test_train_options_show_what_to_type() -> None:
    """Options name their value (KEY=VALUE, FILE.yaml, DIR, N), not a Python type such as
    ``<list[str]>``."""
    runner = CliRunner()
    for command in ("teacher", "transfer", "ablation", "show-config", "export", "adapt", "adapt-split", "pipeline"):
        r = runner.invoke(app, ["train", command, "--help"], env={"COLUMNS": "220"})
        assert r.exit_code == 0, r.output
        for label in ("<list[str]>", "<str>", "<int>", "<float>"):
            assert label not in r.output, f"train {command} --help shows {label}:\n{r.output}"
        if "--set" in r.output:
            assert "KEY=VALUE" in r.output, command
