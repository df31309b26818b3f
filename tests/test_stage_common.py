"""What the stages share: the data section's named batch unit (and its old name), the loss
tables, and the padded PSNR/SSIM loop."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from uniremoval.stages import adapt_losses, transfer_losses
from uniremoval.stages.adapt import AdaptConfig
from uniremoval.stages.common import evaluate_net, pad_to, restore
from uniremoval.stages.teacher import TeacherConfig
from uniremoval.stages.terms import Term, needs, weighted_sum
from uniremoval.stages.transfer import TransferConfig
from uniremoval.train.config import ConfigError, dump_yaml, from_dict, load_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("cls", "unit", "yaml_name"), [
    (TeacherConfig, "images_per_step", "tiny_teacher.yaml"),
    (TransferConfig, "images_per_step", "tiny_transfer.yaml"),
    (AdaptConfig, "triplets_per_step", "tiny_adapt.yaml"),
])
def test_batch_unit_is_named_and_the_old_name_still_reads(cls: type, unit: str, yaml_name: str, tmp_path: Path) -> None:
    cfg = load_config(cls, ROOT / "configs" / yaml_name)
    assert getattr(cfg.data, unit) >= 1 and cfg.data.batch_size == getattr(cfg.data, unit)
    assert f"{unit}:" in dump_yaml(cfg) and "batch_size" not in dump_yaml(cfg)
    # The old key, in a file or an override; the last value given wins under either name.
    old = tmp_path / "old.yaml"
    old.write_text("data:\n  batch_size: 6\n")
    assert getattr(load_config(cls, old).data, unit) == 6
    assert getattr(load_config(cls, old, [f"data.{unit}=12"]).data, unit) == 12
    assert getattr(load_config(cls, ROOT / "configs" / yaml_name, ["data.batch_size=12"]).data, unit) == 12
    with pytest.raises(ConfigError, match=f"data.{unit} \\(formerly batch_size\\): expected an integer"):
        load_config(cls, old, ["data.batch_size=x"])
    with pytest.raises(ConfigError, match="one key under two names"):
        from_dict(cls, {"data": {"batch_size": 6, unit: 6}})
    with pytest.raises(ConfigError, match=f"data.{unit}: must be at least 1"):
        load_config(cls, old, [f"data.{unit}=0"])


def test_weighted_sum_follows_the_table() -> None:
    class Lo:
        a, b, c = 2.0, 0.0, 0.5

    calls: list[str] = []

    def term(name: str, value: float | None):  # type: ignore[no-untyped-def]
        def fn(ctx: object) -> torch.Tensor | None:
            calls.append(name)
            return None if value is None else torch.tensor(value)

        return fn

    table = (
        Term("a", "a", term("a", 1.0), lambda lo: frozenset({"x"})),
        Term("b", "b", term("b", 5.0), lambda lo: frozenset({"y"})),
        Term("c", "c", term("c", 3.0)),
        Term("d", "a", term("d", None)),  # on, but nothing to compute this step
    )
    total, values = weighted_sum(table, Lo(), None, torch.zeros(()))
    assert calls == ["a", "c", "d"]  # b is off: never computed
    assert set(values) == {"a", "c"} and float(total) == pytest.approx(2.0 * 1.0 + 0.5 * 3.0)
    assert needs(table, Lo()) == {"x"}


def test_stage_tables_match_their_configs() -> None:
    for table, lo_cls in ((transfer_losses.TERMS, transfer_losses.TransferLossConfig), (adapt_losses.TERMS, adapt_losses.AdaptLossConfig)):
        lo = lo_cls()
        for t in table:
            assert isinstance(getattr(lo, t.weight), float), t.weight
    # What stage 1 loads derives from the active terms.
    cfg = TransferConfig()
    assert cfg.needs_teachers()
    for w in ("out_weight", "feat_weight", "fcl_weight", "img_weight"):
        setattr(cfg.loss, w, 0.0)
    assert not cfg.needs_teachers() and cfg.needs() == frozenset()
    cfg.loss.img_weight, cfg.loss.img_positive, cfg.loss.img_phi = 0.1, "target", "vgg"
    assert cfg.needs() == {"vgg_phi"} and not cfg.needs_teachers()
    cfg.loss.img_phi = "teachers"
    assert cfg.needs_teachers()
    with pytest.raises(ConfigError, match="loss.fcl_weight: must be >= 0"):
        from_dict(TransferConfig, {"loss": {"fcl_weight": -1}})


def test_padded_restore_and_scores() -> None:
    x = torch.rand(1, 3, 13, 18)
    xp, h, w = pad_to(x, 8)
    assert xp.shape[-2:] == (16, 24) and (h, w) == (13, 18) and torch.equal(xp[..., :13, :18], x)

    class Multiple16(torch.nn.Identity):
        size_multiple = 16

        def forward(self, t: torch.Tensor) -> torch.Tensor:
            assert t.shape[-1] % 16 == 0 and t.shape[-2] % 16 == 0
            return t

    out = restore(Multiple16(), x)
    assert torch.equal(out, x)
    items = [{"input": x[0], "target": x[0].clamp(0, 0.9)}]
    r = evaluate_net(Multiple16(), items)
    assert r["psnr"] == pytest.approx(r["input_psnr"]) and r["ssim"] == pytest.approx(r["input_ssim"])


def test_ablation_rows_switch_term_groups_off(tmp_path: Path) -> None:
    from uniremoval.stages.ablation import ROWS, row_config

    base = TransferConfig()
    weights = {k: {w: getattr(row_config(base, k, tmp_path).loss, w) for w in ("gt_weight", "out_weight", "feat_weight", "img_weight", "fcl_weight")} for k in ROWS}
    assert weights["all-in-one"] == {"gt_weight": 1.0, "out_weight": 0.0, "feat_weight": 0.0, "img_weight": 0.0, "fcl_weight": 0.0}
    assert weights["transfer"] == {"gt_weight": 1.0, "out_weight": 1.0, "feat_weight": 1.0, "img_weight": 0.0, "fcl_weight": 0.0}
    assert weights["contrast"] == {"gt_weight": 1.0, "out_weight": 1.0, "feat_weight": 1.0, "img_weight": 0.1, "fcl_weight": 0.1}
    base.loss.out_weight = base.loss.feat_weight = 0.0
    with pytest.raises(ConfigError, match="loss.out_weight or loss.feat_weight > 0"):
        row_config(base, "transfer", tmp_path)


def test_data_scales_are_checked_and_reach_the_training_pairs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """data.scales ([lo, hi]) is validated on load and handed to SyntheticPairs, so a stage
    trains on degradations drawn at several scales (issue [1/5])."""
    import pytest as _pytest

    from uniremoval.stages.common import StageDataConfig
    from uniremoval.train.config import ConfigError

    class D(StageDataConfig):
        images_per_step: int = 2

    assert D().train_scales() is None
    d = D(scales=[1, 4])
    d.images_per_step = 2
    d.check("data", "images_per_step")
    assert d.train_scales() == (1.0, 4.0)
    for bad in ([4, 1], [0.5, 2], [1], ["a", 2], [1, 9]):
        with _pytest.raises(ConfigError, match="data.scales"):
            D(scales=bad).check("data", "images_per_step")  # type: ignore[arg-type]


def test_teacher_config_scales_reach_the_dataset(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import numpy as np
    from PIL import Image

    from uniremoval.stages.teacher import build_datasets, load_teacher_config

    clean = tmp_path / "clean"
    clean.mkdir()
    Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)).save(clean / "a.png")
    root = __import__("pathlib").Path(__file__).resolve().parents[1]
    cfg = load_teacher_config(root / "configs" / "tiny_teacher.yaml", "haze", [f"data.clean_dir={clean}", "data.scales=[1, 2]", "data.crop=16"])
    train, _, _ = build_datasets(cfg)
    assert train.scales == (1.0, 2.0)
    assert train[0]["input"].shape[-2:] == (16, 16)
