"""Whole-photo synthesis: the crop is cut from the degraded WHOLE photo, and a network that
reads the whole photo gets that photo's thumbnail with every crop, in every stage."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_stage_transfer import ToyTuples, cfg_for, random_nafnet, toy_val  # noqa: E402

from uniremoval import nets  # noqa: E402
from uniremoval.data import SyntheticPairs  # noqa: E402
from uniremoval.data.io import read_image  # noqa: E402
from uniremoval.stages.common import StageDataConfig, ThumbnailContext  # noqa: E402
from uniremoval.stages.transfer import train_transfer  # noqa: E402
from uniremoval.train.config import ConfigError  # noqa: E402

TINY_CTX = {"width": 8, "enc_blocks": [1, 1], "middle_blocks": 1, "context_width": 8, "context_dim": 16, "fix_scale": 4, "refine": 4}


class Recorder:
    """A context function that keeps every whole degraded photo it was given."""

    def __init__(self) -> None:
        self.photos: list[torch.Tensor] = []

    def __call__(self, photo: torch.Tensor) -> torch.Tensor:
        self.photos.append(photo.clone())
        return photo.mean((1, 2))


def _photo(tmp: Path, h: int = 60, w: int = 90) -> Path:
    d = tmp / "clean"
    d.mkdir()
    Image.fromarray((np.random.default_rng(0).random((h, w, 3)) * 255).astype(np.uint8)).save(d / "a.png")
    return d


def test_the_crop_is_cut_from_the_degraded_whole_photo(tmp_path: Path) -> None:
    d = _photo(tmp_path)
    clean = torch.from_numpy(read_image(d / "a.png").transpose(2, 0, 1).copy())
    rec = Recorder()
    ds = SyntheticPairs(d, kinds=("haze", "rain"), crop=24, seed=3, length=8, context=rec)
    flips = set()
    for i in range(8):
        it = ds[i]
        whole = rec.photos[-1]
        assert whole.shape == (3, 60, 90)  # scale 1: the photo at its own size, not a crop
        y, x, side = it["params"]["crop"]
        assert side == 24 and it["params"]["whole"]
        assert torch.equal(it["input"], whole[:, y : y + 24, x : x + 24])
        src = clean.flip(-1) if it["params"].get("hflip") else clean
        assert torch.allclose(it["target"], src[:, y : y + 24, x : x + 24])
        assert torch.equal(it["context"], whole.mean((1, 2)))
        flips.add(bool(it["params"].get("hflip")))
    assert flips == {True, False}
    again = SyntheticPairs(d, kinds=("haze", "rain"), crop=24, seed=3, length=8, context=Recorder())[5]
    assert torch.equal(again["input"], ds[5]["input"]) and torch.equal(again["context"], ds[5]["context"])


def test_scale_upsamples_the_whole_photo_just_enough(tmp_path: Path) -> None:
    d = _photo(tmp_path)
    at2 = SyntheticPairs(d, kinds=("blur",), crop=24, length=2, whole=True, scales=(2.0, 2.0))[0]
    assert at2["params"]["synth_size"] == [60, 90] and at2["params"]["crop"][2] == 48  # fits: no upsampling
    at4 = SyntheticPairs(d, kinds=("blur",), crop=24, length=2, whole=True, scales=(4.0, 4.0))[0]
    assert at4["params"]["synth_size"] == [96, 144] and at4["params"]["crop"][2] == 96
    assert at4["input"].shape == at4["target"].shape == (3, 24, 24) and "context" not in at4
    capped = SyntheticPairs(d, kinds=("haze",), crop=16, length=2, whole=True, max_whole_pixels=1200)[1]
    wy, wx, wh, ww = capped["params"]["window"]
    assert wh * ww <= 1200 and min(wh, ww) >= 16 and capped["input"].shape == (3, 16, 16)
    with pytest.raises(ValueError, match="crop"):
        SyntheticPairs(d, crop=None, whole=True)


def test_bits_round_both_images_after_the_resize(tmp_path: Path) -> None:
    """At scale > 1 a pair is resized, so it is float; ``bits=8`` puts both images back on the
    8-bit grid a photo file has, changing them by at most half a level, and the clean kind
    stays input == target."""
    d = _photo(tmp_path)
    kw = {"kinds": ("haze", "clean"), "crop": 24, "seed": 1, "length": 4, "whole": True, "scales": (2.5, 2.5)}
    plain, eight = SyntheticPairs(d, **kw), SyntheticPairs(d, bits=8, **kw)
    for i in range(4):
        a, b = plain[i], eight[i]
        for key in ("input", "target"):
            on_grid = torch.isclose(a[key] * 255, torch.round(a[key] * 255), atol=1e-3).float().mean()
            assert on_grid < 0.5  # resized: float
            assert torch.equal(b[key], torch.round(b[key] * 255) / 255)
            assert float((a[key] - b[key]).abs().max()) <= 0.5 / 255 + 1e-6
        assert b["params"]["bits"] == 8 and "bits" not in a["params"]
        if b["kind"] == "clean":
            assert torch.equal(b["input"], b["target"])
    with pytest.raises(ValueError, match="bits"):
        SyntheticPairs(d, bits=0, **kw)
    with pytest.raises(ConfigError, match="data.bits"):
        StageDataConfig(bits=24).check("data", "crop")
    assert StageDataConfig(bits=8).synthesis(None)["bits"] == 8


def test_thumbnail_context_is_the_networks_thumbnail() -> None:
    photo = torch.rand(3, 40, 70)
    ctx = ThumbnailContext(16)(photo)
    assert ctx.shape == (3, 16, 16) and torch.equal(ctx, nets.thumbnail(photo, 16)[0])


def test_data_config_turns_whole_photo_on_for_context_networks() -> None:
    on = StageDataConfig().synthesis(32)
    assert on["whole"] and isinstance(on["context"], ThumbnailContext) and on["context"].size == 32
    assert StageDataConfig().synthesis(None) == {"whole": False, "context": None, "bits": None}
    assert StageDataConfig(whole_photo=True).synthesis(None) == {"whole": True, "context": None, "bits": None}
    with pytest.raises(ConfigError, match="whole_photo"):
        StageDataConfig(whole_photo=False).synthesis(32)


class ContextTuples(ToyTuples):
    """Toy tuples whose every image carries a context tensor that names it (its mean input)."""

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = super().__getitem__(i)
        item["context"] = item["input"].mean((1, 2, 3))[:, None, None, None].expand(-1, 3, 16, 16).clone()
        return item


def test_transfer_gives_student_and_teachers_each_crops_own_context(tmp_path: Path) -> None:
    kinds = ["veil", "dark"]
    student = nets.build("uniremoval-net", **TINY_CTX, context_size=16)
    ctx_teacher = nets.build("uniremoval-net", **TINY_CTX, context_size=16)
    teachers = {"veil": random_nafnet(1, width=8, enc_blocks=[1, 1], middle_blocks=1), "dark": ctx_teacher}
    seen: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {"student": [], "teacher": []}

    def spy(name: str):  # type: ignore[no-untyped-def]
        def hook(module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            if module.training or name == "teacher":
                seen[name].append((args[0].detach().clone(), kwargs.get("context")))

        return hook

    student.register_forward_pre_hook(spy("student"), with_kwargs=True)
    ctx_teacher.register_forward_pre_hook(spy("teacher"), with_kwargs=True)
    args = "{width: 8, enc_blocks: [1, 1], middle_blocks: 1, context_width: 8, context_dim: 16, fix_scale: 4, refine: 4, context_size: 16}"
    cfg = cfg_for(tmp_path, "run.steps=2", "run.val_every=100", "model.arch=uniremoval-net", f"model.args={args}", "loss.img_weight=0", "loss.fcl_weight=0")
    cfg.model.build = lambda: student  # type: ignore[method-assign]  # the spied instance
    res = train_transfer(cfg, ContextTuples(kinds), toy_val(kinds, 1), teachers=teachers)
    assert res.step == 2
    for name in ("student", "teacher"):
        assert seen[name], name
        for x, ctx in seen[name]:
            assert ctx is not None and ctx.shape == (x.shape[0], 3, 16, 16)
            # each image got its own context: the one its dataset item carried
            torch.testing.assert_close(ctx[:, 0, 0, 0], x.mean((1, 2, 3)), rtol=1e-5, atol=1e-6)
