from __future__ import annotations

import pytest
import torch

from uniremoval import nets
from uniremoval.infer import Engine, blend_window, plan_tiles, reflect_indices


def _random_plain(depth: int = 4) -> torch.nn.Module:
    torch.manual_seed(0)
    net = nets.build("plain", width=8, depth=depth)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.2)
    return net


class _LocalUNet(torch.nn.Module):
    """A tiny U-Net with no global pooling: local receptive field and a size multiple of 4,
    the case where tiling must be exact and tile offsets must respect the multiple."""

    size_multiple = 4

    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.down = torch.nn.Conv2d(8, 8, 2, stride=2)
        self.b = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.down2 = torch.nn.Conv2d(8, 8, 2, stride=2)
        self.up2 = torch.nn.ConvTranspose2d(8, 8, 2, stride=2)
        self.up = torch.nn.ConvTranspose2d(8, 8, 2, stride=2)
        self.out = torch.nn.Conv2d(8, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h1 = torch.relu(self.a(x))
        h2 = torch.relu(self.b(self.down(h1)))
        h3 = self.up2(torch.relu(self.down2(h2)))
        return x + self.out(torch.relu(self.up(h2 + h3)) + h1)


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (17, 5), (64, 64), (97, 131)])
def test_output_has_exactly_the_input_size(shape: tuple[int, int]) -> None:
    net = nets.build("nafnet", width=8, enc_blocks=[1, 1, 1], middle_blocks=1)
    x = torch.rand(3, *shape)
    for tile in (None, 16):
        assert Engine(net, "cpu", tile=tile, overlap=8)(x).shape == x.shape


def test_tiled_equals_untiled_for_a_local_network() -> None:
    net = _random_plain(depth=4)  # receptive radius 4 <= overlap / 4
    x = torch.rand(3, 123, 201)
    full = Engine(net, "cpu", tile=None, precision="fp32")(x)
    engine = Engine(net, "cpu", tile=48, overlap=16, tile_batch=3, precision="fp32")
    assert engine.plan(123, 201).n_tiles > 6
    tiled = engine(x)
    assert (full - tiled).abs().max().item() < 1e-4


def test_tiled_equals_untiled_for_a_local_unet_with_padding() -> None:
    torch.manual_seed(3)
    net = _LocalUNet()
    x = torch.rand(3, 90, 151)  # not a multiple of 4: exercises the reflect padding
    full = Engine(net, "cpu", tile=None, precision="fp32")(x)
    tiled = Engine(net, "cpu", tile=40, overlap=36, tile_batch=2, precision="fp32")(x)
    assert (full - tiled).abs().max().item() < 1e-4


def test_too_small_overlap_is_visible() -> None:
    """The equality above is not vacuous: with no overlap, tile seams differ."""
    net = _random_plain(depth=4)
    x = torch.rand(3, 64, 64)
    full = Engine(net, "cpu", tile=None)(x)
    tiled = Engine(net, "cpu", tile=32, overlap=0)(x)
    assert (full - tiled).abs().max().item() > 1e-3


def test_auto_tiles_only_above_the_budget() -> None:
    net = _random_plain()
    e = Engine(net, "cpu", tile="auto", pixel_budget=100 * 100)
    assert not e.plan(100, 100).tiled
    assert e.plan(2000, 3000).tiled
    p = e.plan(2000, 3000)
    # every pixel is covered, tiles stay inside the padded image
    assert p.ys[-1] + p.tile_h == p.padded_height and p.xs[-1] + p.tile_w == p.padded_width


def test_with_tiling_shares_the_network_and_leaves_the_original_alone() -> None:
    net = _random_plain()
    e = Engine(net, "cpu", tile="auto", overlap=16)
    assert e.with_tiling() is e
    t = e.with_tiling(tile=48, overlap=4)
    assert t.net is e.net and (t.tile, t.overlap, t.pixel_budget) == (48, 4, 0)
    assert (e.tile, e.overlap) == (512, 16)
    assert e.with_tiling(tile=0).tile is None and e.with_tiling(overlap=2).tile == e.tile
    x = torch.rand(3, 70, 90)
    assert torch.equal(t(x), Engine(net, "cpu", tile=48, overlap=4)(x))
    with pytest.raises(ValueError, match="tile"):
        e.with_tiling(tile="big")
    with pytest.raises(ValueError, match="overlap"):
        e.with_tiling(overlap=-1)


def test_deterministic_and_progress_reported() -> None:
    net = _random_plain()
    x = torch.rand(3, 70, 90)
    calls: list[tuple[int, int]] = []
    e = Engine(net, "cpu", tile=32, overlap=8)
    a = e(x, progress=lambda d, t: calls.append((d, t)))
    b = e(x)
    assert torch.equal(a, b)
    assert calls[-1][0] == calls[-1][1] == e.plan(70, 90).n_tiles


def test_bf16_is_close_to_fp32() -> None:
    net = nets.build("nafnet", width=8, enc_blocks=[1, 1], middle_blocks=1)
    x = torch.rand(3, 48, 48)
    a = Engine(net, "cpu", precision="fp32")(x)
    b = Engine(net, "cpu", precision="bf16")(x)
    assert b.dtype == torch.float32
    assert (a - b).abs().max().item() < 0.05


def test_bad_options_are_rejected() -> None:
    net = _random_plain()
    with pytest.raises(ValueError, match="precision"):
        Engine(net, "cpu", precision="fp8")
    with pytest.raises(ValueError, match="fp16"):
        Engine(net, "cpu", precision="fp16")
    with pytest.raises(ValueError, match="overlap"):
        Engine(net, "cpu", tile=16, overlap=16)(torch.rand(3, 64, 64))


def test_reflect_indices_and_windows() -> None:
    assert reflect_indices(7, 3).tolist() == [0, 1, 2, 1, 0, 1, 2]
    assert reflect_indices(4, 1).tolist() == [0, 0, 0, 0]
    w = blend_window(32, 16, inner_start=True, inner_end=False)
    assert w[:4].eq(0).all() and w[12:].eq(1).all() and (w[4:12] > 0).all()
    plan = plan_tiles(100, 10, multiple=8, tile=40, overlap=10)
    assert plan.overlap == 16 and all(y % 8 == 0 for y in plan.ys)


def test_nafnet_tlc_pools_locally_only_in_eval() -> None:
    from uniremoval.nets.nafnet import LocalAvgPool

    pool = LocalAvgPool(4)
    x = torch.rand(1, 2, 9, 11)
    assert torch.allclose(pool(x), x.mean((2, 3), keepdim=True))  # training: global
    pool.eval()
    y = pool(x)
    ref = torch.nn.functional.avg_pool2d(x, 4, stride=1)
    assert y.shape == x.shape
    assert torch.allclose(y[..., 1 : 1 + ref.shape[-2], 1 : 1 + ref.shape[-1]], ref, atol=1e-6)
    small = torch.rand(1, 2, 3, 4)
    assert torch.allclose(pool(small), small.mean((2, 3), keepdim=True))  # window covers it all


def test_tlc_grid_means_match_exact_means_and_bilinear_upsampling() -> None:
    """The coarse-grid window means (the fast default) stay close to the exact ones, and the
    slice-based upsampling equals F.interpolate's bilinear mode."""
    from uniremoval.nets.nafnet import LocalAvgPool, _upsample_linear

    torch.manual_seed(0)
    x = torch.rand(2, 3, 5, 7)
    for g in (2, 8):
        ref = torch.nn.functional.interpolate(x, scale_factor=g, mode="bilinear", align_corners=False)
        assert (_upsample_linear(_upsample_linear(x, g, 2), g, 3) - ref).abs().max().item() < 1e-6
    # A photo-like map: smooth structure plus noise.
    yy, xx = torch.meshgrid(torch.linspace(0, 3, 96), torch.linspace(0, 5, 128), indexing="ij")
    img = (torch.sin(yy) * torch.cos(xx))[None, None].repeat(1, 4, 1, 1) + 0.1 * torch.rand(1, 4, 96, 128)
    exact, coarse = LocalAvgPool(40).eval(), LocalAvgPool(40, grid=8).eval()  # 5 whole cells
    e, c = exact(img), coarse(img)
    assert c.shape == img.shape
    assert (e - c).abs().max().item() < 0.05
    assert (e - c).abs().mean().item() < 0.01
    assert (e - img.mean((2, 3), keepdim=True)).abs().max().item() > 0.2  # the window is local


def test_nafnet_tlc_makes_far_pixels_independent() -> None:
    """With a local window, changing one corner must not change the far corner's output;
    with global pooling (window None) it does."""
    torch.manual_seed(0)
    for window, expect_local in ((16, True), (None, False)):
        net = nets.build("nafnet", width=8, enc_blocks=[1, 1], middle_blocks=1, inference_window=window).eval()
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p) * 0.1)
            x = torch.rand(1, 3, 128, 128)
            x2 = x.clone()
            x2[..., :16, :16] = 1.0
            d = (net(x) - net(x2))[..., -16:, -16:].abs().max().item()
        assert (d < 1e-6) == expect_local, (window, d)


def test_compiled_tiles_match_eager(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    net = _random_plain(depth=3)
    x = torch.rand(3, 70, 90)
    # Eager tiles are fitted to the photo, compiled ones keep their fixed shape: the overlap
    # covers the receptive field (radius 3 <= 16 / 4), so both tilings equal one pass.
    eager = Engine(net, "cpu", tile=48, overlap=16, precision="fp32")(x)
    compiled = Engine(net, "cpu", tile=48, overlap=16, precision="fp32", compile=True)
    assert compiled.plan(70, 90).tiled
    assert (compiled(x) - eager).abs().max().item() < 1e-5
    assert compiled.dtype == torch.float32


def test_cuda_graphs_are_refused_off_cuda() -> None:
    net = _random_plain(depth=2)
    with pytest.raises(ValueError, match="CUDA graphs need"):
        Engine(net, "cpu", cuda_graphs=True)


def test_fitted_tiles_keep_the_count_and_cover_the_image() -> None:
    fixed = plan_tiles(3000, 4000, multiple=16, tile=512, overlap=32)
    fit = plan_tiles(3000, 4000, multiple=16, tile=512, overlap=32, fit=True)
    assert (len(fit.ys), len(fit.xs)) == (len(fixed.ys), len(fixed.xs)) == (7, 9)
    assert fit.tile_h < 512 and fit.tile_w < 512 and fit.tile_h % 16 == 0 and fit.tile_w % 16 == 0
    assert fit.n_tiles * fit.tile_h * fit.tile_w < 0.9 * fixed.n_tiles * 512 * 512
    for starts, tile, overlap, total in ((fit.ys, fit.tile_h, fit.overlap_h, fit.padded_height), (fit.xs, fit.tile_w, fit.overlap_w, fit.padded_width)):
        assert starts[0] == 0 and starts[-1] + tile == total and all(s % 16 == 0 for s in starts)
        assert overlap >= 32 and all(b - a <= tile - overlap for a, b in zip(starts, starts[1:]))
    # a side that fits in one tile is one tile of its own size
    small = plan_tiles(300, 4000, multiple=16, tile=512, overlap=32, fit=True)
    assert small.ys == [0] and small.tile_h == 304


def test_eager_engine_fits_tiles_but_fixed_shape_modes_do_not() -> None:
    net = _random_plain(depth=2)
    assert Engine(net, "cpu", tile=512).plan(3000, 4000).tile_w < 512
    assert Engine(net, "cpu", tile=512, compile=True).plan(3000, 4000).tile_w == 512


def test_malloc_tuning_is_idempotent_and_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    import platform

    from uniremoval import hostmem

    monkeypatch.setattr(hostmem, "_tuned", None)
    monkeypatch.setenv("UNIREMOVAL_MALLOC_TUNE", "0")
    assert hostmem.tune_malloc() is False
    monkeypatch.setattr(hostmem, "_tuned", None)
    monkeypatch.delenv("UNIREMOVAL_MALLOC_TUNE")
    glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert hostmem.tune_malloc() is glibc
    assert hostmem.tune_malloc() is glibc


@pytest.mark.parametrize("grid", [1, 4])
def test_channel_attention_conv_on_pooled_values_equals_full_resolution(grid: int) -> None:
    """The 1x1 conv runs on the coarse window means before upsampling; that must equal the
    conv applied to the upsampled means at full resolution (both linear, weights sum to 1)."""
    from uniremoval.nets.nafnet import LocalAvgPool, _scaled_conv1x1

    torch.manual_seed(0)
    pool = LocalAvgPool(24, grid).eval()
    conv = torch.nn.Conv2d(6, 6, 1)
    x = torch.rand(2, 6, 32, 48).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        assert torch.allclose(pool.pooled(x, then=conv), conv(pool(x)), atol=1e-5)
        scale = torch.randn(1, 6, 1, 1)
        assert torch.allclose(_scaled_conv1x1(x, conv, scale), conv(x) * scale, atol=1e-5)
