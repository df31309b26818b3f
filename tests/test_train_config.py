"""Typed configs: validation, overrides, resolved config round trip; schedules; EMA; checkpoints."""
from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch

from uniremoval.train import checkpoint as ckpt
from uniremoval.train.config import ConfigError, RunConfig, ScheduleConfig, apply_override, dump_yaml, from_dict, load_config
from uniremoval.train.ema import EMA
from uniremoval.train.schedule import build_scheduler, lr_factor
from uniremoval.stages.teacher import TeacherConfig, load_teacher_config

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_configs_validate() -> None:
    for name in ("teacher.yaml", "tiny_teacher.yaml"):
        cfg = load_teacher_config(ROOT / "configs" / name, kind="rain")
        assert cfg.kind == "rain"
    cfg = load_teacher_config(ROOT / "configs" / "teacher.yaml", kind="haze")
    assert cfg.run.name == "teacher-haze" and cfg.model.arch == "nafnet-small" and cfg.data.crop == 128
    assert cfg.data.batch_size == 16 and cfg.optim.lr == pytest.approx(2e-4)


def test_unknown_keys_and_types_are_rejected(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("run: {stepz: 3}\n")
    with pytest.raises(ConfigError, match=r"run: unknown key\(s\) stepz"):
        load_config(TeacherConfig, p)
    p.write_text("run: {steps: ten}\n")
    with pytest.raises(ConfigError, match="run.steps: expected an integer"):
        load_config(TeacherConfig, p)
    p.write_text("optim: {name: sgd}\n")
    with pytest.raises(ConfigError, match="optim.name"):
        load_config(TeacherConfig, p)
    p.write_text("run: {steps: 0}\n")
    with pytest.raises(ConfigError, match="at least 1"):
        load_config(TeacherConfig, p)
    p.write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(TeacherConfig, p)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(TeacherConfig, tmp_path / "missing.yaml")


def test_overrides_parse_yaml_values() -> None:
    cfg = load_config(
        TeacherConfig,
        None,
        ["optim.lr=1e-4", "model.args.enc_blocks=[1, 2]", "run.threads=null", "run.channels_last=true", "data.clean_dir=/x y"],
    )
    assert cfg.optim.lr == pytest.approx(1e-4)  # YAML "1e-4" is a string; floats accept it
    assert cfg.model.args == {"enc_blocks": [1, 2]}
    assert cfg.run.threads is None and cfg.run.channels_last is True
    assert cfg.data.clean_dir == "/x y"
    with pytest.raises(ConfigError, match="key=value"):
        load_config(TeacherConfig, None, ["optim.lr"])
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(TeacherConfig, None, ["optim.learning_rate=1"])
    d: dict = {"a": 1}
    with pytest.raises(ConfigError, match="not a mapping"):
        apply_override(d, "a.b=2")


def test_resolved_config_round_trips() -> None:
    cfg = load_teacher_config(ROOT / "configs" / "teacher.yaml", kind="blur", overrides=["run.steps=7"])
    import yaml

    back = from_dict(TeacherConfig, yaml.safe_load(dump_yaml(cfg)))
    assert back == cfg and back.run.steps == 7


@dataclass
class _Nested:
    xs: list[int] = field(default_factory=list)
    maybe: float | None = None


def test_nested_types() -> None:
    assert from_dict(_Nested, {"xs": [1, 2], "maybe": 3}).maybe == 3.0
    with pytest.raises(ConfigError, match=r"xs\[1\]"):
        from_dict(_Nested, {"xs": [1, "b"]})
    with pytest.raises(ConfigError, match="true/false"):
        from_dict(RunConfig, {"resume": "yes"})


def test_warmup_cosine_schedule() -> None:
    cfg = ScheduleConfig(name="cosine", warmup_steps=10, warmup_start=0.0, min_lr_ratio=0.1)
    assert lr_factor(0, 110, cfg) == 0.0
    assert lr_factor(5, 110, cfg) == pytest.approx(0.5)
    assert lr_factor(10, 110, cfg) == pytest.approx(1.0)
    assert lr_factor(60, 110, cfg) == pytest.approx(0.1 + 0.9 * 0.5)
    assert lr_factor(110, 110, cfg) == pytest.approx(0.1)
    assert lr_factor(500, 110, cfg) == pytest.approx(0.1)
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([p], lr=2.0)
    sched = build_scheduler(opt, 110, cfg)
    for _ in range(60):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(2.0 * (0.1 + 0.9 * 0.5))
    vals = [lr_factor(s, 110, cfg) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(vals, vals[1:]))  # monotone decay after warm-up
    assert math.isclose(lr_factor(3, 110, ScheduleConfig(name="constant")), 1.0)


def test_ema_tracks_weights() -> None:
    net = torch.nn.Linear(2, 2)
    ema = EMA(net, decay=0.9)
    with torch.no_grad():
        net.weight.fill_(1.0)
    for _ in range(200):
        ema.update(net)
    assert torch.allclose(ema.module.weight, torch.ones(2, 2), atol=1e-6)
    assert not any(p.requires_grad for p in ema.module.parameters())
    state = ema.state_dict()
    other = EMA(torch.nn.Linear(2, 2), decay=0.9)
    other.load_state_dict(state)
    assert other.num_updates == 200 and torch.equal(other.module.weight, ema.module.weight)


def test_checkpoint_is_weights_only_loadable_and_restores_rng(tmp_path: Path) -> None:
    random.seed(3)
    np.random.seed(4)
    torch.manual_seed(5)
    np.random.standard_normal()  # leaves a cached gaussian in the state
    state = {"rng": ckpt.rng_state(), "w": torch.arange(3)}
    path = ckpt.save_atomic(state, tmp_path / "c" / "x.pt")
    expect = (random.random(), np.random.standard_normal(), torch.rand(1))
    loaded = ckpt.load(path)  # weights_only=True inside
    ckpt.set_rng_state(loaded["rng"])
    got = (random.random(), np.random.standard_normal(), torch.rand(1))
    assert got[0] == expect[0] and got[1] == expect[1] and torch.equal(got[2], expect[2])
    assert [p.name for p in path.parent.iterdir()] == ["x.pt"]  # no temporary left behind


def test_bare_off_in_yaml_means_the_word() -> None:
    from uniremoval.stages.teacher import load_teacher_config

    cfg = load_teacher_config(Path(__file__).resolve().parents[1] / "configs" / "tiny_teacher.yaml", "haze", ["run.amp=off"])
    assert cfg.run.amp == "off"


def test_model_init_starts_from_a_model_file_and_refuses_another_architecture(tmp_path: Path) -> None:
    import torch

    from uniremoval import nets
    from uniremoval.modelfile import save_model
    from uniremoval.train.config import ConfigError, ModelConfig

    torch.manual_seed(3)
    src = nets.build("plain", width=4, depth=2)
    path = save_model(src, tmp_path / "start.json", "plain", {"width": 4, "depth": 2})
    fresh = ModelConfig(arch="plain", args={"width": 4, "depth": 2}).build()
    warm = ModelConfig(arch="plain", args={"width": 4, "depth": 2}, init=str(path)).build()
    for k, v in src.state_dict().items():
        assert torch.equal(warm.state_dict()[k], v)
    assert any(not torch.equal(fresh.state_dict()[k], v) for k, v in src.state_dict().items())
    assert warm.training and all(p.requires_grad for p in warm.parameters())
    with pytest.raises(ConfigError, match="start.json"):
        ModelConfig(arch="plain", args={"width": 8, "depth": 2}, init=str(path)).build()


def test_amp_auto_is_bf16_only_on_cpus_with_native_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    import uniremoval.train.amp as amp
    from uniremoval.train.trainer import resolve_amp

    cpu = torch.device("cpu")
    monkeypatch.setattr(amp, "cpu_has_fast_bf16", lambda: True)
    assert resolve_amp("auto", cpu) is torch.bfloat16
    assert resolve_amp("off", cpu) is None
    monkeypatch.setattr(amp, "cpu_has_fast_bf16", lambda: False)
    assert resolve_amp("auto", cpu) is None  # emulated bf16 would be slower than fp32
    assert resolve_amp("bf16", cpu) is torch.bfloat16  # forced, whatever the CPU
    assert resolve_amp("auto", torch.device("cuda")) is torch.float16
    with pytest.raises(ConfigError, match="CUDA"):
        resolve_amp("fp16", cpu)


def test_exports_name_their_input_models_by_checksum(tmp_path: Path) -> None:
    from uniremoval import nets
    from uniremoval.modelfile import save_model
    from uniremoval.stages.transfer import TransferConfig
    from uniremoval.train.config import ModelConfig
    from uniremoval.train.trainer import input_models

    path = save_model(nets.build("plain", width=4, depth=2), tmp_path / "start.json", "plain", {"width": 4, "depth": 2})
    sha = json.loads(path.read_text())["sha256"]
    cfg = TransferConfig(teachers={"haze": str(path), "rain": str(tmp_path / "gone.json")}, model=ModelConfig(arch="plain", init=str(path)))
    rec = input_models(cfg)
    assert rec["model.init"] == {"path": str(path), "sha256": sha}
    assert rec["teachers.haze"]["sha256"] == sha
    assert "sha256" not in rec["teachers.rain"] and "gone.json" in rec["teachers.rain"]["error"]
    assert input_models(TransferConfig()) == {}


def test_model_grow_starts_a_deeper_nafnet_as_the_same_function(tmp_path: Path) -> None:
    from uniremoval import nets
    from uniremoval.modelfile import save_model
    from uniremoval.train.config import ConfigError, ModelConfig

    torch.manual_seed(5)
    small = nets.build("nafnet-small")
    # Non-zero residual scales, as after training: a zero-scale block is an identity already.
    with torch.no_grad():
        for name, p in small.named_parameters():
            if name.endswith(("beta", "gamma")):
                p.normal_(0, 0.5)
    path = save_model(small, tmp_path / "small.json", "nafnet-small", {})
    with pytest.raises(ConfigError, match="model.grow"):
        ModelConfig(arch="nafnet-small-deep", init=str(path)).build()
    deep = ModelConfig(arch="nafnet-small-deep", init=str(path), grow=True).build()
    assert deep.training
    assert sum(p.numel() for p in deep.parameters()) > 1.5 * sum(p.numel() for p in small.parameters())
    x = torch.rand(2, 3, 48, 64)
    small.eval(), deep.eval()
    with torch.no_grad():
        torch.testing.assert_close(deep(x), small(x), atol=1e-5, rtol=0)
    # The grown blocks train: their residual scales get gradients (their other weights follow
    # once the scales leave zero).
    deep.train()
    (deep(x) - x.flip(-1)).abs().mean().backward()
    for block in (deep.middle[2], deep.middle[3], deep.encoders[2][1], deep.encoders[3][3]):
        assert block.beta.grad is not None and block.beta.grad.abs().sum() > 0
    # A wider network is no growth of this one.
    with pytest.raises(ConfigError, match="no place of that shape"):
        ModelConfig(arch="nafnet-base", init=str(path), grow=True).build()


def test_model_warm_start_starts_a_context_network_from_a_nafnet(tmp_path: Path) -> None:
    """model.warm_start: uniremoval-net takes a NAFNet's blocks (issue [2/5]: start the new
    student from release 6); refused for an architecture it cannot fill, or with grow."""
    import torch

    from uniremoval import nets
    from uniremoval.modelfile import save_model
    from uniremoval.train.config import ConfigError, ModelConfig

    torch.manual_seed(0)
    small = {"width": 8, "enc_blocks": [1, 1], "middle_blocks": 1}
    src = nets.build("nafnet", **small)
    init = save_model(src, tmp_path / "src.json", "nafnet", small, ["haze"])
    args = {**small, "context_width": 8, "context_dim": 16, "context_size": 64, "fix_scale": 4, "refine": 4}
    net = ModelConfig(arch="uniremoval-net", args=args, init=str(init), warm_start=True).build()
    moved = [k for k, v in src.state_dict().items() if k.startswith("encoders") and k in net.state_dict()]
    assert moved and all(torch.equal(net.state_dict()[k], src.state_dict()[k]) for k in moved)
    with pytest.raises(ConfigError, match="uniremoval-net"):
        ModelConfig(arch="nafnet", args=small, init=str(init), warm_start=True).build()
    with pytest.raises(ConfigError, match="choose one"):
        ModelConfig(arch="uniremoval-net", args=args, init=str(init), warm_start=True, grow=True).build()
