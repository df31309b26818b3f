"""Networks that read the whole photo: thumbnail, FiLM conditioning, global fix, warm start,
the engine passing one context to every tile, descriptor fields."""
from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F

from uniremoval import nets
from uniremoval.infer import Engine
from uniremoval.modelfile import load_model
from uniremoval.nets.ctxnet import CtxUNet, warm_start
from uniremoval.nets.globalctx import GlobalFix, guided_upsample, thumbnail

TINY = {"width": 8, "enc_blocks": [1, 1], "middle_blocks": 1, "context_width": 8, "context_dim": 16}
TINY_FAST = {**TINY, "fix_scale": 4, "refine": 4}


def _nudge(net: torch.nn.Module, scale: float = 0.05, seed: int = 0) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn(p.shape, generator=g) * scale)
    return net.eval()


def test_thumbnail_is_the_area_downsampled_photo_mirrored_to_a_square() -> None:
    x = torch.rand(3, 96, 192)
    t = thumbnail(x, 48)
    assert t.shape == (1, 3, 48, 48) and t.dtype == torch.float32
    assert torch.allclose(t[0, :, :24], F.avg_pool2d(x[None], 4)[0], atol=1e-6)
    assert torch.equal(t[0, :, 24:47].flip(1), t[0, :, :23])  # mirrored (edge not repeated), not stretched
    assert torch.allclose(thumbnail(torch.full((2, 3, 7, 5), 0.3), 16), torch.full((2, 3, 16, 16), 0.3))


def test_nafnet_ctx_loads_release6_exactly_and_ignores_context_until_trained() -> None:
    release6 = load_model("release6").net.eval()
    assert nets.descriptor(release6).arch == "nafnet-small-deep"
    ctx = nets.build("nafnet-ctx")
    nets.grow(release6, ctx)  # the zero-initialised context and FiLM layers are accepted as new
    x = torch.rand(2, 3, 48, 64, generator=torch.Generator().manual_seed(1))
    other = thumbnail(torch.rand(1, 3, 300, 200))
    with torch.no_grad():
        ref = release6(x)
        assert torch.equal(ctx.eval()(x), ref)
        assert torch.equal(ctx(x, context=other), ref)
        ctx.train(), release6.train()
        assert torch.equal(ctx(x, context=other), release6(x))


def test_context_changes_the_output_once_the_conditioning_is_nudged() -> None:
    for fix in ("none", "affine", "haze"):
        net = nets.build("uniremoval-net", **TINY_FAST, fix=fix).eval()
        x = torch.rand(1, 3, 32, 40)
        a, b = thumbnail(torch.rand(1, 3, 64, 64)), thumbnail(torch.rand(1, 3, 64, 64) * 0.5)
        with torch.no_grad():
            assert torch.equal(net(x, context=a), net(x, context=b))  # zero FiLM: no effect yet
            _nudge(net, scale=0.3)
            assert (net(x, context=a) - net(x, context=b)).abs().max() > 1e-3, fix


@pytest.mark.parametrize("fix", ["affine", "haze"])
@pytest.mark.parametrize("guided", [True, False])
def test_fresh_global_fix_and_refine_are_exact_no_ops(fix: str, guided: bool) -> None:
    gf = GlobalFix(fix, 8, 16, 4, guided=guided)
    x = torch.rand(2, 3, 32, 24)
    assert torch.equal(gf(x, torch.rand(2, 8, 8, 6), torch.rand(1, 16)), x)
    gf.per_photo.bias.data[:] = 0.2
    assert not torch.equal(gf(x, torch.rand(2, 8, 8, 6), torch.rand(1, 16)), x)


def test_guided_upsampling_keeps_zeros_and_follows_the_guide_edges() -> None:
    guide = torch.zeros(1, 1, 64, 64)
    guide[..., 30:] = 1.0  # a vertical edge not on the 8 px grid
    lo = F.avg_pool2d(guide, 8)
    assert torch.equal(guided_upsample(torch.zeros(1, 2, 8, 8), lo, guide, 8), torch.zeros(1, 2, 64, 64))
    field = 0.5 * lo  # a correction that is 0.5 on the bright side, 0 on the dark side
    target = 0.5 * guide
    guided = guided_upsample(field, lo, guide, 8, radius=1, eps=1e-4)
    bilinear = F.interpolate(field, scale_factor=8, mode="bilinear", align_corners=False)
    assert (guided - target).abs().mean() < 0.3 * (bilinear - target).abs().mean()


def test_warm_start_runs_the_source_at_half_resolution() -> None:
    # Global pooling (no TLC window) so both pool over the same pixels; fresh fix and refine.
    src = _nudge(nets.build("nafnet", width=8, enc_blocks=[1, 1], middle_blocks=1, inference_window=None))
    dst = nets.build("uniremoval-net", **TINY_FAST, inference_window=None).eval()
    fresh = warm_start(src, dst)
    assert fresh and all(k.split(".")[0] in ("context", "fix", "refine") or ".film." in k for k in fresh)
    x = torch.rand(1, 3, 32, 48)
    small = F.avg_pool2d(x, 2)
    with torch.no_grad():
        want = x + F.interpolate(src(small) - small, scale_factor=2, mode="nearest")
        assert (dst(x) - want).abs().max() < 1e-5


def test_descriptor_declares_the_context() -> None:
    d = nets.build("uniremoval-net").descriptor
    assert (d.arch, d.context_size, d.takes_context, d.size_multiple) == ("uniremoval-net", 192, True, 32)
    assert d.feature_channels == (16, 32, 64, 128, 256) and d.encoder_features and d.growable
    assert {"context", "film"} <= set(d.zero_init_modules)
    assert not nets.build("nafnet-small").descriptor.takes_context
    assert nets.build("nafnet-ctx", context_size=128).descriptor.context_size == 128
    net = nets.build("uniremoval-net", **TINY_FAST).eval()
    x = torch.rand(2, 3, 32, 32)
    feats = nets.features(net, x, context=thumbnail(x[:1]))
    assert [f.shape[1] for f in feats] == list(net.descriptor.feature_channels)
    with pytest.raises(ValueError, match="fix_scale"):
        CtxUNet(**TINY, unshuffle=2, fix="affine", fix_scale=16)


class _Spy(torch.nn.Module):
    """Delegates to ``net`` and records the context of every call."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net
        self.descriptor = nets.descriptor(net)
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor, context: Any = None) -> torch.Tensor:
        self.seen.append(context.clone())
        return self.net(x, context=context)


def test_engine_gives_every_tile_the_whole_photos_context() -> None:
    net = _nudge(nets.build("uniremoval-net", **TINY_FAST, inference_window=64), scale=0.02)
    x = torch.rand(3, 70, 101, generator=torch.Generator().manual_seed(2))
    spy = _Spy(net)
    tiled = Engine(spy, device="cpu", precision="fp32", tile=48, overlap=16, tile_batch=2)(x)
    assert len(spy.seen) > 2
    spy.seen.clear()
    whole = Engine(spy, device="cpu", precision="fp32", tile=0)(x)
    assert len(spy.seen) == 1
    want = thumbnail(x, 192)
    assert all(torch.equal(c, want) for c in spy.seen)
    assert tiled.shape == whole.shape == x.shape
    # Same context, local pooling windows: tiles agree closely with the one-pass run.
    assert (tiled - whole).abs().mean() < 2e-3 and (tiled - whole).abs().max() < 0.05


@pytest.mark.parametrize("shape", [(37, 53), (33, 8), (1, 1)])
def test_odd_sizes_come_back_at_their_size_in_bf16_too(shape: tuple[int, int]) -> None:
    net = _nudge(nets.build("uniremoval-net", **TINY_FAST), scale=0.02)
    x = torch.rand(3, *shape)
    a = Engine(net, device="cpu", precision="fp32", tile=0)(x)
    b = Engine(net, device="cpu", precision="bf16", tile=0)(x)
    assert a.shape == b.shape == x.shape
    assert (a - b).abs().max() < 0.05


def test_a_training_step_runs_with_a_context_network(tmp_path: Any) -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_train_toydata import ToyPairs, tiny_config, val_items
    from uniremoval.stages.teacher import train_teacher

    args = "{width: 8, enc_blocks: [1, 1], middle_blocks: 1, context_width: 8, context_dim: 16, fix_scale: 4, refine: 4}"
    cfg = tiny_config(tmp_path, "run.steps=2", "run.val_every=2", "model.arch=uniremoval-net", f"model.args={args}")
    res = train_teacher(cfg, ToyPairs(cfg.data.crop), val_items(2))
    assert res.step == 2 and res.export is not None and "psnr" in res.metrics
    loaded = load_model(res.export)
    assert loaded.config.arch == "uniremoval-net" and nets.descriptor(loaded.net).takes_context


@pytest.mark.parametrize("fix", ["affine", "haze"])
def test_the_no_context_ablation_takes_no_context(fix: str) -> None:
    net = _nudge(nets.build("uniremoval-net", **{**TINY_FAST, "context_dim": 0}, fix=fix), scale=0.1)
    d = net.descriptor
    assert d.context_size is None and not d.takes_context
    assert not any(k.startswith("context.") or ".film." in k for k in net.state_dict())
    x = torch.rand(3, 40, 24)
    out = Engine(net, device="cpu", precision="fp32", tile=0)(x)
    assert out.shape == x.shape and not torch.equal(out, x)


def test_one_context_for_the_batch_equals_one_per_image() -> None:
    # The engine's path (one thumbnail broadcast over the tiles: FiLM fused into the norm) and
    # training's (one thumbnail per crop) compute the same function.
    net = _nudge(nets.build("uniremoval-net", **TINY_FAST), scale=0.05)
    x = torch.rand(3, 3, 32, 32)
    a = thumbnail(torch.rand(1, 3, 50, 40))
    with torch.no_grad():
        for name, p in net.named_parameters():
            if ".film." in name:
                p.add_(torch.randn_like(p) * 0.3)
        shared = net(x, context=a)
        each = net(x, context=a.expand(3, -1, -1, -1).contiguous())
        assert (shared - net(x, context=thumbnail(x[:1]))).abs().max() > 2e-4  # the context matters
    assert (shared - each).abs().max() < 1e-5


def test_half_resolution_network_gets_larger_default_tiles() -> None:
    from uniremoval.options import DEFAULT_TILE

    fast = nets.build("uniremoval-net", **TINY_FAST)
    assert fast.descriptor.tile_scale == 1.5
    assert Engine(fast, device="cpu", tile="auto").tile == round(DEFAULT_TILE["cpu"] * 1.5 / 8) * 8
    assert Engine(nets.build("nafnet-ctx", **TINY), device="cpu", tile="auto").tile == DEFAULT_TILE["cpu"]
    assert Engine(fast, device="cpu", tile=256).tile == 256  # an explicit size is kept
