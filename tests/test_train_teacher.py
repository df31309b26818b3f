"""Stage 0: a tiny teacher learns its degradation; the CLI trains on real synthetic pairs."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_train_toydata import ToyPairs, degrade, smooth_image, tiny_config, val_items  # noqa: E402

from uniremoval.metrics import psnr, ssim  # noqa: E402
from uniremoval.modelfile import load_model  # noqa: E402
from uniremoval.stages.teacher import train_teacher  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def test_tiny_teacher_beats_input_on_held_back_images(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, "run.steps=300")
    res = train_teacher(cfg, ToyPairs(cfg.data.crop), val_items())
    assert res.step == 300 and res.export is not None
    assert res.metrics["psnr"] > res.metrics["input_psnr"] + 10
    # Held-back images the run never saw (not even in validation), through the exported file.
    model = load_model(res.export)
    assert model.config.kinds == ["toy"] and model.config.provenance["steps"] == 300
    assert model.config.provenance["weights"] == "ema"
    g = torch.Generator().manual_seed(2024)
    clean = torch.stack([smooth_image(64, g) for _ in range(4)])
    hazy = degrade(clean)
    with torch.no_grad():
        out = model.net(hazy).clamp(0, 1)
    assert float(psnr(out, clean).mean()) > float(psnr(hazy, clean).mean()) + 10
    assert float(ssim(out, clean).mean()) > float(ssim(hazy, clean).mean())
    run = res.run_dir
    assert (run / "ckpt" / "best.pt").is_file() and (run / "config.yaml").is_file()
    assert list((run / "tb").glob("events.out.tfevents.*")), "no TensorBoard log"


def _clean_folder(path: Path, n: int, seed: int) -> Path:
    path.mkdir(parents=True)
    g = torch.Generator().manual_seed(seed)
    for i in range(n):
        img = smooth_image(80, g).permute(1, 2, 0).numpy()
        Image.fromarray((img * 255 + 0.5).astype(np.uint8)).save(path / f"img{i}.png")
    return path


def test_cli_trains_teacher_on_synthetic_pairs_and_resumes(tmp_path: Path) -> None:
    from uniremoval.cli import app

    train = _clean_folder(tmp_path / "clean" / "train", 4, 0)
    val = _clean_folder(tmp_path / "clean" / "val", 2, 1)
    args = ["train", "teacher", "--kind", "haze", "--config", str(ROOT / "configs" / "tiny_teacher.yaml"),
            "--set", f"data.clean_dir={train}", "--set", f"data.val_dir={val}", "--set", f"run.out_dir={tmp_path / 'runs'}",
            "--set", "data.epoch_size=16", "--set", "data.val_count=2", "--set", "run.val_every=4", "--set", "run.ckpt_every=4"]
    runner = CliRunner()
    r = runner.invoke(app, args + ["--steps", "4"])
    assert r.exit_code == 0, r.output
    run = tmp_path / "runs" / "tiny-teacher"
    first = json.loads((run / "export" / "tiny-teacher.json").read_text())
    assert first["kinds"] == ["haze"] and first["provenance"]["steps"] == 4
    assert first["provenance"]["data"]["source"] == "synthetic"
    r = runner.invoke(app, args + ["--steps", "8"])  # resumes at step 4
    assert r.exit_code == 0, r.output
    assert "resumed" in r.output
    m = load_model(run / "export" / "tiny-teacher.json")
    assert m.config.provenance["steps"] == 8 and m.config.provenance["date"]
    assert list(run.glob("config.*.yaml")), "the changed config should keep the previous one"
    r = runner.invoke(app, ["train", "export", str(run), "--best", "-o", str(tmp_path / "best.json")])
    assert r.exit_code == 0, r.output
    assert load_model(tmp_path / "best.json").config.kinds == ["haze"]


def test_cli_reports_config_errors(tmp_path: Path) -> None:
    from uniremoval.cli import app

    r = CliRunner().invoke(app, ["train", "teacher", "--kind", "haze", "--set", "optim.lrr=1"])
    assert r.exit_code == 2 and "lrr" in r.output
    r = CliRunner().invoke(app, ["train", "teacher", "--kind", "haze", "--set", f"run.out_dir={tmp_path}"])
    assert r.exit_code == 2 and "clean_dir" in r.output


def test_bf16_autocast_and_channels_last_on_cpu(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, "run.steps=6", "run.amp=bf16", "run.channels_last=true", "run.deterministic=false", "run.val_every=6")
    res = train_teacher(cfg, ToyPairs(cfg.data.crop), val_items(2, 32))
    assert res.step == 6 and res.export is not None
    assert all(np.isfinite(v) for v in res.metrics.values())
    assert load_model(res.export).net(torch.rand(1, 3, 32, 32)).isfinite().all()


def test_fp16_needs_cuda(tmp_path: Path) -> None:
    import pytest

    from uniremoval.train.config import ConfigError

    if torch.cuda.is_available():
        pytest.skip("has CUDA")
    cfg = tiny_config(tmp_path, "run.amp=fp16")
    with pytest.raises(ConfigError, match="CUDA"):
        train_teacher(cfg, ToyPairs(cfg.data.crop), val_items(2, 32))
