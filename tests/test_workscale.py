"""Working resolution (uniremoval.workscale, Engine(scale=...), --scale): the factor rule, the
strip-wise carry-up against the guided filter, the engine path, and the option parsers."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from typer.testing import CliRunner

from uniremoval import nets
from uniremoval.infer import Engine
from uniremoval.nets.globalctx import guided_upsample
from uniremoval.options import MAX_SCALE, parse_scale
from uniremoval.workscale import (MAX_AUTO_FACTOR, MIN_WORK_SIDE, auto_factor, carry_up, downscale, pyramid_factors,
                                  restore_pyramid)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_train_toydata import smooth_image  # noqa: E402


@pytest.mark.parametrize(
    "size, factor",
    [((300, 500), 1), ((600, 724), 1), ((600, 725), 2), ((1000, 1448), 2), ((1000, 1449), 4),
     ((3000, 4000), 8), ((4000, 6000), MAX_AUTO_FACTOR), ((200, 6000), 1), ((300, 6000), 2), ((100, 100), 1)],
)
def test_auto_factor_brings_the_long_side_near_512(size: tuple[int, int], factor: int) -> None:
    assert auto_factor(*size) == factor
    assert factor == 1 or min(size) / factor >= MIN_WORK_SIDE


@pytest.mark.parametrize("shape, factor, strip", [((3, 203, 317), 4, 16), ((3, 64, 40), 2, 1000), ((3, 7, 5), 8, 8)])
def test_carry_up_in_strips_equals_the_guided_filter_on_the_whole_photo(shape: tuple[int, int, int], factor: int, strip: int) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(shape, generator=g)
    lo = downscale(x, factor)
    assert lo.shape[-2:] == (-(-shape[1] // factor), -(-shape[2] // factor))
    y = (lo * 0.7 + 0.2 + 0.05 * torch.rand(lo.shape, generator=g)).clamp(0, 1)
    got = carry_up(x, lo, y, factor, strip=strip)
    mode = "reflect" if -shape[1] % factor < shape[1] and -shape[2] % factor < shape[2] else "replicate"
    xp = F.pad(x[None], (0, -shape[2] % factor, 0, -shape[1] % factor), mode=mode)
    assert torch.allclose(F.avg_pool2d(xp, factor)[0], lo)
    want = (xp + guided_upsample((y - lo)[None], lo[None], xp, factor))[0, :, : shape[1], : shape[2]].clamp(0, 1)
    assert got.shape == x.shape and torch.allclose(got, want, atol=1e-6)


def test_no_change_at_the_working_resolution_is_no_change_at_all() -> None:
    x = torch.rand(3, 50, 70, generator=torch.Generator().manual_seed(1))
    lo = downscale(x, 4)
    assert torch.allclose(carry_up(x, lo, lo.clone(), 4), x, atol=1e-6)
    with pytest.raises(ValueError, match="sizes differ"):
        carry_up(x, lo, lo[:, :-1], 4)


def test_a_smooth_change_is_carried_up_nearly_exactly() -> None:
    """A global colour change (what haze removal mostly is) made at 1/4 resolution comes back
    at full resolution as that change, on textured content."""
    x = smooth_image(128, torch.Generator().manual_seed(2)) * 0.5 + 0.25
    lo = downscale(x, 4)
    out = carry_up(x, lo, (lo - 0.2) * 1.5 + 0.1, 4)
    want = (x - 0.2) * 1.5 + 0.1
    assert float((out - want).abs().mean()) < 0.01


class _Halve(torch.nn.Module):
    """A 'network' whose output is a fixed function of its input: 0.5 x + 0.25."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x + 0.25


def test_engine_at_a_working_scale_is_downscale_restore_carry_up() -> None:
    torch.manual_seed(0)
    net = nets.build("nafnet", width=8, enc_blocks=[1, 1], middle_blocks=1).eval()
    x = torch.rand(3, 90, 130)
    full = Engine(net, device="cpu", precision="fp32", tile=0)
    assert full.scale == 1 and full.work_factor(3000, 4000) == 1
    two = full.with_tiling(scale=2)
    assert two.net is full.net and two.scale == 2 and full.scale == 1
    lo = downscale(x, 2)
    assert torch.allclose(two(x), carry_up(x, lo, full(lo), 2), atol=1e-6)
    auto = Engine(_Halve(), device="cpu", precision="fp32", tile=0, scale="auto")
    assert auto.work_factor(90, 130) == 1 and auto.work_factor(1000, 1400) == 2
    assert torch.allclose(auto(x), 0.5 * x + 0.25, atol=1e-6)  # small: full resolution
    big = torch.rand(3, 700, 1500)
    out = auto(big)
    assert out.shape == big.shape
    # Noise has little variance left at 1/4 (regularised by eps): the fit carries the
    # change's mean and part of its slope, never more.
    want = 0.5 * big + 0.25
    assert abs(float(out.mean() - want.mean())) < 0.01 and float((out - want).abs().mean()) < float((big - want).abs().mean())


@pytest.mark.parametrize(
    "size, factors",
    [((255, 900), []), ((256, 256), [2]), ((1024, 1024), [8, 4, 2]), ((3000, 4000), [16, 8, 4, 2]), ((4000, 6000), [16, 8, 4, 2])],
)
def test_pyramid_levels_stop_at_the_smallest_working_side(size: tuple[int, int], factors: list[int]) -> None:
    assert pyramid_factors(*size) == factors
    assert all(min(size) / d >= MIN_WORK_SIDE for d in factors)


def test_engine_pyramid_restores_every_level_coarse_to_fine_then_full() -> None:
    seen: list[tuple[int, ...]] = []

    def restore(t: torch.Tensor, progress: object) -> torch.Tensor:
        seen.append((tuple(t.shape), progress is not None))
        return t * 0.9  # a change the guided filter carries up exactly (a = -0.1, b = 0)

    x = torch.rand(3, 300, 520)
    out = restore_pyramid(x, restore, pyramid_factors(300, 520), lambda done, total: None)
    assert [s for s, _ in seen] == [(3, 150, 260), (3, 300, 520)] and [p for _, p in seen] == [False, True]
    # Each level multiplies by 0.9 (up to the filter's eps on a flat window): two levels, 0.81.
    assert float((out - 0.81 * x).abs().max()) < 0.02
    engine = Engine(_Halve(), device="cpu", precision="fp32", tile=0, scale="pyramid")
    assert engine.work_factor(3000, 4000) == 1
    small = torch.rand(3, 90, 130)  # under 2 x 128 px: no coarse level, one full-resolution pass
    assert torch.allclose(engine(small), 0.5 * small + 0.25, atol=1e-6)
    big = torch.rand(3, 300, 520)
    lo = downscale(big, 2)
    want = 0.5 * carry_up(big, lo, 0.5 * lo + 0.25, 2) + 0.25
    assert torch.allclose(engine(big), want, atol=1e-6)


@pytest.mark.parametrize("value, expected", [("auto", "auto"), (" Auto ", "auto"), ("pyramid", "pyramid"), (" Pyramid", "pyramid"), ("1", 1), (4, 4), ("32", 32), (None, 1)])
def test_parse_scale_accepts(value: str | int | None, expected: int | str) -> None:
    assert parse_scale(value) == expected


@pytest.mark.parametrize("value", ["0", 0, "33", -2, "1.5", 1.5, "big", "", True])
def test_parse_scale_refuses_with_one_line(value: str | int | float) -> None:
    with pytest.raises(ValueError) as info:
        parse_scale(value)
    message = str(info.value)
    assert "\n" not in message and "scale" in message and str(MAX_SCALE) in message


def test_restore_cli_scale_option(tmp_path: Path) -> None:
    from uniremoval.cli import app

    src = tmp_path / "photo.png"
    Image.fromarray((np.random.default_rng(0).random((40, 56, 3)) * 255).astype(np.uint8)).save(src)
    r = CliRunner().invoke(app, ["restore", str(src), "--scale", "0", "-o", str(tmp_path / "out.png")])
    assert r.exit_code == 2 and "scale" in r.output and not (tmp_path / "out.png").exists()
    r = CliRunner().invoke(app, ["restore", str(src), "--scale", "2", "-o", str(tmp_path / "out.png"), "--quiet"])
    assert r.exit_code == 0, r.output
    with Image.open(tmp_path / "out.png") as im:
        assert im.size == (56, 40)
