"""Stage 2 (adaptation): end to end through the CLI on tiny made-up photos, the stability
guard (a forced NaN and a gradient spike roll back and lower the learning rate, and no
checkpoint ever holds a non-finite weight), exact resume, pseudo-target routing and the
real-photo split. Nothing here reads /work/shared."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from uniremoval import nets
from uniremoval.data.io import write_png
from uniremoval.losses.extended import pseudo_targets
from uniremoval.modelfile import save_model
from uniremoval.stages import adapt as adapt_mod
from uniremoval.stages.adapt import load_adapt_config, train_adapt
from uniremoval.stages.realsplit import plan_split, write_split
from uniremoval.train import checkpoint as ckpt

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny_adapt.yaml"
ARGS = {"width": 8, "enc_blocks": [1, 1], "middle_blocks": 1}


def _photo(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A smooth made-up photo: colour gradients plus a few rectangles (edges to blur/rain on)."""
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([0.3 + 0.5 * x, 0.2 + 0.6 * y, 0.5 + 0.3 * np.sin(6 * x * y)], axis=-1)
    for _ in range(4):
        y0, x0 = rng.integers(0, h - 16), rng.integers(0, w - 16)
        img[y0 : y0 + rng.integers(8, 40), x0 : x0 + rng.integers(8, 40)] = rng.random(3)
    return np.clip(img + 0.02 * rng.standard_normal(img.shape), 0, 1).astype(np.float32)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("adapt")
    rng = np.random.default_rng(0)
    for i in range(6):
        write_png(root / "clean" / f"c{i}.png", _photo(rng, 80, 96))
    for i in range(3):
        write_png(root / "val" / f"v{i}.png", _photo(rng, 64, 64))
    for sub, n in (("hazy", 3), ("rain", 2), ("misc", 2)):
        for i in range(n):
            img = _photo(rng, 144, 208)
            if sub == "hazy":
                img = 0.5 * img + 0.45  # washed out, like haze
            write_png(root / "real" / sub / f"{sub}{i}.png", img)
    write_png(root / "real_val" / "hazy" / "h.png", 0.5 * _photo(rng, 144, 208) + 0.45)
    torch.manual_seed(0)
    student = save_model(nets.build("nafnet", **ARGS), root / "models" / "student.json", "nafnet", ARGS, ["haze", "rain", "blur"])
    teacher = save_model(nets.build("nafnet", **ARGS), root / "models" / "haze.json", "nafnet", ARGS, ["haze"])
    return {"root": root, "student": student, "teacher": teacher}


def _cfg(world: dict[str, Path], name: str, *extra: str):  # type: ignore[no-untyped-def]
    r = world["root"]
    return load_adapt_config(
        TINY,
        [
            f"student={world['student']}", f"teachers.haze={world['teacher']}",
            f"data.real_dir={r / 'real'}", f"data.clean_dir={r / 'clean'}", f"data.val_dir={r / 'val'}",
            f"run.out_dir={r / 'runs'}", f"run.name={name}", *extra,
        ],
    )


def _all_finite(state: dict) -> bool:  # type: ignore[type-arg]
    for comp in state["components"].values():
        for v in comp["module"].values():
            if torch.is_tensor(v) and v.is_floating_point() and not torch.isfinite(v).all():
                return False
    return True


def test_cli_end_to_end(world: dict[str, Path]) -> None:
    from uniremoval.cli import app

    r = world["root"]
    res = CliRunner().invoke(
        app,
        [
            "train", "adapt", "--student", str(world["student"]), "--real", str(r / "real"), "--clean", str(r / "clean"),
            "--teachers", f"haze={world['teacher']}", "--config", str(TINY),
            "--set", f"run.out_dir={r / 'runs'}", "--set", "run.name=cli", "--set", f"data.val_dir={r / 'val'}",
            "--set", f"data.real_val_dir={r / 'real_val'}", "--set", "data.real_val_crop=192", "--steps", "6",
        ],
    )
    assert res.exit_code == 0, res.output
    run = r / "runs" / "cli"
    export = run / "export" / "cli.json"
    assert export.is_file()
    meta = json.loads(export.read_text())
    assert meta["arch"] == "nafnet" and meta["kinds"] == ["haze", "rain", "blur"]
    val = meta["provenance"]["val"]
    for key in ("psnr", "psnr_init", "psnr_haze", "niqe", "niqe_init"):
        assert key in val and np.isfinite(val[key]), key
    assert meta["provenance"]["data"]["real_kinds"] == {"haze": 3, "rain": 2, "unknown": 2}
    state = ckpt.load(run / "ckpt" / "last.pt")
    assert set(state["components"]) == {"student", "disc", "bank"}
    assert bool(state["components"]["bank"]["module"]["valid"][0])  # clean prototypes exist
    # adaptation moved the weights
    from uniremoval.modelfile import load_model

    w0, w1 = load_model(world["student"]).net.state_dict(), load_model(export).net.state_dict()
    assert any(not torch.equal(w0[k], w1[k]) for k in w0)
    assert not (run / "guard.jsonl").exists()


def test_forced_nan_and_spike_roll_back(world: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """A NaN loss at step 5 and a 1e8x loss (gradient spike) at step 9: each rolls back to the
    last good state and halves both learning rates; training goes on to the end and every
    checkpoint written holds finite weights and the lowered rate."""
    cfg = _cfg(world, "faults")
    written: list[dict] = []  # type: ignore[type-arg]
    real_save = ckpt.save_atomic

    def spy(state, path):  # type: ignore[no-untyped-def]
        if "components" in state:
            written.append({"step": state["step"], "finite": _all_finite(state), "lr": state["components"]["student"]["optimizer"]["param_groups"][0]["lr"]})
        return real_save(state, path)

    def fault(total: torch.Tensor, step: int) -> torch.Tensor:
        if step == 4:
            return total * float("nan")
        if step == 8:
            return total * 1e8
        return total

    monkeypatch.setattr(ckpt, "save_atomic", spy)
    monkeypatch.setattr(adapt_mod, "fault_hook", fault)
    res = train_adapt(cfg)
    assert res.step == cfg.run.steps and res.rollbacks == 2
    events = [json.loads(line) for line in (res.run_dir / "guard.jsonl").read_text().splitlines()]
    assert [e["step"] for e in events] == [5, 9]
    assert "non-finite student loss" in events[0]["reason"] and "gradient norm" in events[1]["reason"]
    assert events[0]["lr"]["student"] == pytest.approx(0.5e-4) and events[1]["lr"]["student"] == pytest.approx(0.25e-4)
    assert events[1]["lr"]["disc"] == pytest.approx(0.5e-4)
    assert written and all(w["finite"] for w in written)
    assert written[-1]["lr"] == pytest.approx(0.25e-4)
    final = ckpt.load(res.run_dir / "ckpt" / "last.pt")
    # the lowered rate survives a resume: it is in the scheduler's base_lrs
    assert final["components"]["student"]["scheduler"]["base_lrs"] == [pytest.approx(0.25e-4)]
    assert res.export is not None and res.export.is_file()


def test_checkpoint_never_holds_nan_weights(tmp_path: Path) -> None:
    """Weights that turned non-finite behind the guard's back (no loss or norm showed it) are
    caught when the trainer writes a checkpoint: it rolls back first and writes the good state."""
    from uniremoval.train.config import OptimConfig, RunConfig
    from uniremoval.train.guard import GuardConfig, StabilityGuard
    from uniremoval.train.trainer import Trainer

    run = RunConfig(name="g", out_dir=str(tmp_path), steps=2, progress=False, threads=1)
    tr = Trainer(run, run, global_batch=1)
    net = tr.add("net", torch.nn.Linear(2, 2), OptimConfig(lr=1e-2))
    guard = StabilityGuard(tr, GuardConfig()).install()
    guard.snapshot()
    good = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        net.weight[0, 0] = float("nan")
    tr.save_checkpoint()
    state = ckpt.load(tr.last_path)
    assert guard.rollbacks == 1 and _all_finite(state)
    assert torch.equal(state["components"]["net"]["module"]["weight"], good["weight"])
    assert state["components"]["net"]["optimizer"]["param_groups"][0]["lr"] == pytest.approx(5e-3)
    tr.close()


def test_resume_is_exact(world: dict[str, Path]) -> None:
    full = train_adapt(_cfg(world, "full", "run.export=false"))
    _ = train_adapt(_cfg(world, "parted", "run.export=false"), stop_after=6)
    parted = train_adapt(_cfg(world, "parted", "run.export=false"))
    a = ckpt.load(full.run_dir / "ckpt" / "last.pt")["components"]
    b = ckpt.load(parted.run_dir / "ckpt" / "last.pt")["components"]
    for comp in ("student", "disc", "bank"):
        for k, v in a[comp]["module"].items():
            assert torch.equal(v, b[comp]["module"][k]), (comp, k)


def test_pseudo_targets_route_by_kind() -> None:
    class Const(torch.nn.Module):
        def __init__(self, v: float) -> None:
            super().__init__()
            self.v = v

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.full_like(x, self.v)

    x = torch.rand(4, 3, 8, 8)
    out, src = pseudo_targets(x, ["haze", "unknown", "rain", "haze"], {"haze": Const(0.25)}, Const(0.75))
    assert src == ["haze", "student", "student", "haze"]
    assert out[[0, 3]].eq(0.25).all() and out[[1, 2]].eq(0.75).all()


def test_real_split(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    for sub, n in (("hazy", 8), ("rain", 3), ("blur", 1)):
        for i in range(n):
            write_png(tmp_path / "real" / sub / f"{i:02d}.png", rng.random((8, 8, 3)).astype(np.float32))
    plan = write_split(tmp_path / "real", tmp_path / "split", holdout=0.25, seed=0)
    assert plan["counts"] == {"blur": {"train": 1, "heldout": 0}, "hazy": {"train": 6, "heldout": 2}, "rain": {"train": 2, "heldout": 1}}
    held = sorted(p.relative_to(tmp_path / "split" / "heldout").as_posix() for p in (tmp_path / "split" / "heldout").rglob("*.png"))
    assert held == sorted(f["path"] for f in plan["files"] if f["side"] == "heldout")
    assert json.loads((tmp_path / "split" / "split.json").read_text())["files"] == plan["files"]
    # deterministic, and another seed gives another split
    assert plan_split(tmp_path / "real", 0.25, 0)["files"] == plan["files"]
    assert plan_split(tmp_path / "real", 0.25, 7)["files"] != plan["files"]
    # rerunning over an existing output works (links replaced)
    write_split(tmp_path / "real", tmp_path / "split", holdout=0.25, seed=0)


def test_guard_leaves_fp16_scaler_skips_alone(tmp_path: Path) -> None:
    """With fp16 loss scaling an inf gradient norm is the GradScaler skipping a step (normal),
    not divergence: no rollback. Without a scaler the same norm rolls back."""
    from uniremoval.train.config import OptimConfig, RunConfig
    from uniremoval.train.guard import GuardConfig, StabilityGuard
    from uniremoval.train.trainer import Trainer

    run = RunConfig(name="s", out_dir=str(tmp_path), steps=2, progress=False, threads=1)
    tr = Trainer(run, run, global_batch=1)
    tr.add("net", torch.nn.Linear(2, 2), OptimConfig(lr=1e-2, grad_clip=1.0))
    guard = StabilityGuard(tr, GuardConfig())
    guard.snapshot()
    tr.components["net"].scaler = object()  # type: ignore[assignment]  # stands in for a GradScaler
    assert guard.grad_ok("net", float("inf")) and guard.rollbacks == 0
    tr.components["net"].scaler = None
    assert not guard.grad_ok("net", float("inf")) and guard.rollbacks == 1
    tr.close()


def test_a_context_student_adapts_with_each_photos_thumbnail(world: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Real crops, replayed synthetic crops and held-out photos all reach a student (and a
    teacher) that reads the whole photo together with that photo's own thumbnail."""
    from uniremoval.nets.ctxnet import CtxUNet

    r = world["root"]
    args = {**ARGS, "context_width": 8, "context_dim": 16, "fix_scale": 4, "refine": 4, "context_size": 16}
    torch.manual_seed(0)
    student = save_model(nets.build("uniremoval-net", **args), r / "models" / "ctx_student.json", "uniremoval-net", args, ["haze", "rain", "blur"])
    teacher = save_model(nets.build("uniremoval-net", **args), r / "models" / "ctx_haze.json", "uniremoval-net", args, ["haze"])
    calls: list[tuple[int, Any]] = []
    forward = CtxUNet.forward

    def spy(self: CtxUNet, x: torch.Tensor, context: torch.Tensor | None = None, **kw: Any) -> Any:
        calls.append((x.shape[0], None if context is None else tuple(context.shape)))
        return forward(self, x, context, **kw)

    monkeypatch.setattr(CtxUNet, "forward", spy)
    cfg = _cfg(world, "ctx", f"student={student}", f"teachers.haze={teacher}", f"data.real_val_dir={r / 'real_val'}", "data.real_val_crop=192", "run.steps=3", "run.val_every=3")
    res = train_adapt(cfg)
    assert res.step == 3 and res.export is not None
    assert calls and all(c == (n, 3, 16, 16) for n, c in calls), calls
    assert {n for n, _ in calls} >= {1, 2}  # batches of crops and single validation photos


def test_the_shipped_haze_prior_architecture_adapts_with_its_prior_frozen(world: dict[str, Path]) -> None:
    """Release 7's architecture (a haze prior in front of a body) goes through stage 2: the
    body trains, the prior that was trained on true transmission and airlight stays as it was,
    and the export is again a haze-prior model."""
    from uniremoval.modelfile import load_model

    r = world["root"]
    args = {"body": "nafnet", "body_args": ARGS, "prior_width": 8}
    torch.manual_seed(0)
    net = nets.build("haze-prior", **args)
    student = save_model(net, r / "models" / "hp_student.json", "haze-prior", args, ["haze", "rain", "blur", "clean"])
    res = train_adapt(_cfg(world, "hp", f"student={student}", "run.steps=3", "run.val_every=3"))
    assert res.step == 3 and res.export is not None
    out = load_model(res.export)
    assert out.config.arch == "haze-prior"
    before, after = net.state_dict(), out.net.state_dict()
    # (EMA of an unchanged weight may move it by rounding only)
    assert all(torch.allclose(before[k], after[k], atol=1e-6) for k in before if k.startswith("prior."))
    assert any(not torch.allclose(before[k], after[k], atol=1e-6) for k in before if k.startswith("body."))
