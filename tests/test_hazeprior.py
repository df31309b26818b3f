"""The haze prior (nets.hazeprior): physics inversion, strips equal one pass, a clear photo passes
unchanged, and the engine, model files, Restorer and ONNX export run body(prior(photo))."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from uniremoval import Restorer, load_model, nets
from uniremoval.infer import Engine
from uniremoval.modelfile import save_model
from uniremoval.nets.hazeprior import AIR_STEP, T_MIN, HazePrior, airlight_candidate, noise_sigma, transmission_bound

BODY = {"body": "nafnet", "body_args": {"width": 8, "enc_blocks": [1, 1], "middle_blocks": 1}, "prior_width": 8}


def _random_prior_net() -> torch.nn.Module:
    torch.manual_seed(0)
    net = nets.build("haze-prior", **BODY)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.05)
        net.prior.tout.bias.fill_(-1.0)  # a hazy estimate: t well below 1, so the prior acts
    return net.eval()


class _Fixed(HazePrior):
    """A prior whose estimate is given: constant t and airlight."""

    def __init__(self, t: float, air: tuple[float, float, float], detail_gain: float | None = None,
                 noise_target: float | None = None, noise_detail: float | None = None) -> None:
        super().__init__(width=4, detail_gain=detail_gain, noise_target=noise_target, noise_detail=noise_detail)
        self.t, self.light = t, torch.tensor([air])

    def forward(self, thumb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        n = thumb.shape[0]
        return torch.full((n, 1, 32, 32), self.t), self.light.expand(n, 3)


def test_inverts_the_scattering_model_with_the_estimated_t_and_airlight() -> None:
    j = torch.rand(1, 3, 40, 56) * 0.8
    air, t = (0.9, 0.85, 0.8), 0.4
    hazy = j * t + torch.tensor(air)[None, :, None, None] * (1 - t)
    out = _Fixed(t, air).dehaze(hazy)
    assert (out - j).abs().max().item() < 1e-4


def test_the_airlight_starts_at_the_colour_of_the_haziest_region() -> None:
    torch.manual_seed(1)
    thumb = torch.rand(1, 3, 128, 128) * 0.5  # a dark, colourful ground...
    sky = torch.tensor([0.97, 0.95, 0.9])
    thumb[:, :, :30] = sky[None, :, None, None]  # ...under a bright, nearly grey sky
    assert (airlight_candidate(thumb)[0] - sky).abs().max().item() < 1e-6
    prior = HazePrior(width=8).eval()  # the correction starts at zero and stays bounded
    with torch.no_grad():
        assert (prior(thumb)[1][0] - sky).abs().max().item() < 1e-6
        prior.air.bias.fill_(100.0)
        assert (prior(thumb)[1][0] - sky).max().item() <= AIR_STEP + 1e-6


def test_without_air_tint_the_correction_moves_the_airlight_in_brightness_only() -> None:
    torch.manual_seed(2)
    thumb = torch.rand(2, 3, 128, 128) * 0.5
    thumb[:, :, :30] = torch.tensor([0.9, 0.85, 0.7])[None, :, None, None]  # a yellowish sky
    tinted, grey = HazePrior(width=8).eval(), HazePrior(width=8, air_tint=False).eval()
    with torch.no_grad():
        for p in (tinted.air.weight, tinted.air.bias):
            p.copy_(torch.randn_like(p))
        grey.load_state_dict(tinted.state_dict())  # the same weights: an inference choice
        a0 = airlight_candidate(thumb)
        d_tinted, d_grey = tinted(thumb)[1] - a0, grey(thumb)[1] - a0
    assert (d_tinted.amax(1) - d_tinted.amin(1)).min().item() > 1e-3  # the learned part tints...
    assert (d_grey - d_grey[:, :1]).abs().max().item() < 1e-6  # ...unless asked not to: one shift for all channels
    assert (d_grey[:, 0] - d_tinted.mean(1)).abs().max().item() < 1e-6  # the tinted correction's mean
    assert (d_grey.abs() > 1e-3).all()
    assert nets.build("haze-prior", **BODY, air_tint=False).prior.air_tint is False


def test_the_transmission_bound_holds_for_the_true_airlight_and_keeps_a_wrong_one_in_range() -> None:
    torch.manual_seed(2)
    j = torch.rand(1, 3, 48, 64)
    t = 0.2 + 0.7 * torch.rand(1, 1, 48, 64)
    air = torch.tensor([[0.9, 0.88, 0.85]])
    hazy = j * t + air[:, :, None, None] * (1 - t)
    for r in (0, 2):  # never above the true t: the constraint costs nothing when A is right
        assert (transmission_bound(hazy, air, r) <= t + 1e-5).all()
    dark = torch.tensor([[0.6, 0.62, 0.7]])  # too dark and too blue: the yellow-sky case
    tb = transmission_bound(hazy, dark, 0)
    light = dark[:, :, None, None]
    out = (hazy - light) / tb.clamp_min(1e-6) + light
    assert out.min().item() > -1e-4 and out.max().item() < 1 + 1e-4


def test_a_photo_the_prior_finds_clear_passes_unchanged() -> None:
    prior = HazePrior(width=8).eval()
    with torch.no_grad():
        prior.tout.bias.fill_(50.0)  # t = 1 everywhere
    x = torch.rand(3, 33, 47)
    assert (prior.apply_photo(x) - x).abs().max().item() < 1e-6


def test_strips_give_exactly_the_one_pass_result_and_leave_the_input_alone() -> None:
    prior = _random_prior_net().prior
    x = torch.rand(3, 301, 190)
    keep = x.clone()
    with torch.no_grad():
        whole = prior.dehaze(x[None])[0]
    strips = prior.apply_photo(x, strip_rows=37)
    assert torch.equal(x, keep)
    assert (whole - strips).abs().max().item() < 1e-5
    assert (whole - x).abs().mean().item() > 1e-3  # the random prior does change the photo


def test_detail_gain_amplifies_the_smooth_part_by_1_over_t_and_the_grain_at_most_the_cap() -> None:
    torch.manual_seed(3)
    air, t = (0.9, 0.9, 0.9), 0.2
    smooth = torch.linspace(0.2, 0.6, 64)[None, None, None, :].expand(1, 3, 48, 64)
    grain = 0.01 * torch.randn(1, 3, 48, 64)
    hazy = (smooth + grain) * t + 0.9 * (1 - t)
    free, capped = _Fixed(t, air).dehaze(hazy), _Fixed(t, air, detail_gain=1.5).dehaze(hazy)
    inner = (..., slice(8, -8), slice(8, -8))  # away from the blur's replicated edges
    assert (free - (smooth + grain))[inner].abs().max().item() < 1e-4  # plain inversion: grain x 1/t
    err = (capped - smooth)[inner]
    assert err.mean().abs().item() < 2e-3  # the smooth part is dehazed as before...
    grain_in = (grain * t)[inner].std().item()  # the grain as the hazy photo holds it
    assert (free - smooth)[inner].std().item() > 4.5 * grain_in  # plain inversion: x 1/t = x5
    assert err.std().item() < 2 * 1.5 * grain_in  # capped: about x1.5 (plus a little blurred grain)
    with pytest.raises(ValueError, match="detail_gain"):
        HazePrior(width=4, detail_gain=0.5)
    prior = HazePrior(width=8, detail_gain=1.5).eval()
    with torch.no_grad():
        prior.tout.bias.fill_(50.0)  # t = 1: a clear photo still passes unchanged
    x = torch.rand(3, 33, 47)
    assert (prior.apply_photo(x) - x).abs().max().item() < 1e-5


def test_noise_sigma_reads_the_noise_not_the_texture() -> None:
    g = torch.Generator().manual_seed(5)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 256), torch.linspace(0, 1, 320), indexing="ij")
    scene = (0.3 + 0.4 * xx * yy)[None, None].expand(1, 3, -1, -1).clone()
    scene[..., :, 160:] += 0.2 * torch.rand(1, 1, 256, 160, generator=g)  # half the photo is texture
    for sigma in (0.002, 0.01, 0.03):
        noisy = scene + sigma * torch.randn(1, 1, 256, 320, generator=g)  # grey noise: sigma in every channel
        assert abs(noise_sigma(noisy).item() - sigma) < 0.2 * sigma, sigma
    assert noise_sigma(scene).item() < 1e-3  # the texture alone does not count as noise


def test_noise_target_keeps_the_noise_of_a_dense_fog_bank_near_the_target() -> None:
    torch.manual_seed(4)
    air, t, sigma = (0.8, 0.8, 0.8), 0.05, 0.01
    fog = 0.8 + sigma * torch.randn(1, 1, 64, 96).expand(1, 3, -1, -1)  # the scene hidden: only noise
    plain, floored = _Fixed(t, air), _Fixed(t, air, noise_target=0.04)
    assert plain.floor(fog).item() == pytest.approx(T_MIN)
    assert floored.floor(fog).item() == pytest.approx(sigma / 0.04, rel=0.2)
    assert (plain.dehaze(fog) - 0.8).std().item() > 0.15  # x 1/t = x20: the noise becomes the photo
    assert (floored.dehaze(fog) - 0.8).std().item() < 1.3 * 0.04  # about the target
    clean = 0.2 + 0.6 * torch.rand(1, 3, 1, 1) * torch.ones(1, 3, 64, 96)  # no noise: the floor stays T_MIN
    assert floored.floor(clean).item() == pytest.approx(T_MIN)
    assert (floored.dehaze(clean) - plain.dehaze(clean)).abs().max().item() < 1e-6
    strips = floored.apply_photo(fog[0], strip_rows=17)  # the floor is the whole photo's, in every strip
    assert (strips - floored.dehaze(fog)[0]).abs().max().item() < 1e-5
    with pytest.raises(ValueError, match="noise_target"):
        HazePrior(width=4, noise_target=0.0)


def test_noise_detail_dehazes_the_smooth_part_fully_and_keeps_the_grain_near_the_target() -> None:
    torch.manual_seed(6)
    air, t, sigma = (0.85, 0.85, 0.85), 0.05, 0.005
    smooth = torch.linspace(0.2, 0.6, 96)[None, None, None, :].expand(1, 3, 64, 96)
    grain = sigma * torch.randn(1, 1, 64, 96).expand(1, 3, -1, -1)  # grey noise, as noise_sigma reads it
    hazy = smooth * t + 0.85 * (1 - t) + grain  # dense haze, then the sensor's noise
    plain, capped = _Fixed(t, air), _Fixed(t, air, noise_detail=0.02)
    assert plain.detail_cap(hazy) is None
    assert capped.detail_cap(hazy).item() == pytest.approx(0.02 / sigma, rel=0.2)  # about x4
    inner = (..., slice(8, -8), slice(8, -8))  # away from the blur's replicated edges
    free, out = plain.dehaze(hazy), capped.dehaze(hazy)
    assert (free - smooth)[inner].std().item() > 0.08  # x 1/t = x20: 0.1 of grain
    err = (out - smooth)[inner]
    assert err.mean().abs().item() < 5e-3  # the smooth part is dehazed by the full 1 / t...
    assert err.std().item() < 1.5 * 0.02  # ...and the grain comes out near the target
    clean = smooth * t + 0.85 * (1 - t)  # no noise: the cap is far above 1 / t, nothing changes
    assert (capped.dehaze(clean) - plain.dehaze(clean))[inner].abs().max().item() < 1e-4
    strips = capped.apply_photo(hazy[0], strip_rows=13)  # the cap is the whole photo's; strips read a halo
    assert (strips - out[0]).abs().max().item() < 1e-5
    with pytest.raises(ValueError, match="noise_detail"):
        HazePrior(width=4, noise_detail=-1.0)


def test_strips_with_a_detail_gain_read_their_halo_rows_and_equal_one_pass() -> None:
    prior = _random_prior_net().prior
    prior.detail_gain = 1.5
    x = torch.rand(3, 301, 190)
    with torch.no_grad():
        whole = prior.dehaze(x[None])[0]
    for rows in (37, 5, 512):
        assert (whole - prior.apply_photo(x, strip_rows=rows)).abs().max().item() < 1e-5


def test_engine_applies_the_prior_to_the_whole_photo_then_tiles_the_body() -> None:
    net = _random_prior_net()
    desc = nets.descriptor(net)
    assert desc.photo_prior and desc.arch == "haze-prior" and desc.size_multiple == 4
    x = torch.rand(3, 90, 130)
    with torch.no_grad():
        pre = net.prior.apply_photo(x)
    tiled = Engine(net, device="cpu", precision="fp32", tile=48, overlap=12, scale=1)(x)
    body_only = Engine(net.body, device="cpu", precision="fp32", tile=48, overlap=12, scale=1)(pre)
    assert torch.equal(tiled, body_only)
    # untiled: the body once on the padded, dehazed photo (the prior saw the unpadded photo)
    one = Engine(net, device="cpu", precision="fp32", tile=0, scale=1)(x)
    with torch.no_grad():
        ref = net.body(nets.pad_to_multiple(pre, 4)[0][None])[0, :, :90, :130]
    assert (one - ref).abs().max().item() < 1e-4


def test_model_file_round_trip_and_restorer(tmp_path: Path) -> None:
    net = _random_prior_net()
    path = save_model(net, tmp_path / "hp.json", "haze-prior", BODY, ["test"])
    loaded = load_model(path)
    x = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        assert torch.equal(loaded.net(x), net(x))
    img = np.random.default_rng(0).random((45, 61, 3)).astype(np.float32)
    out = Restorer.from_pretrained(path, device="cpu", precision="fp32", scale=1)(img)
    assert out.shape == img.shape and np.abs(out - img).mean() > 1e-3


def test_onnx_export_is_the_body_and_the_backend_still_applies_the_prior(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    monkeypatch.setenv("UNIREMOVAL_CACHE", str(tmp_path))
    path = save_model(_random_prior_net(), tmp_path / "hp.json", "haze-prior", BODY, ["test"])
    img = np.random.default_rng(1).random((45, 61, 3)).astype(np.float32)
    a = Restorer.from_pretrained(path, device="cpu", precision="fp32", tile=0, scale=1)(img)
    b = Restorer.from_pretrained(path, device="cpu", backend="onnxruntime", tile=0, scale=1)(img)
    assert np.abs(a - b).max() < 1e-4


def test_the_prior_is_frozen_unless_asked_so_a_body_trains_behind_it() -> None:
    net = nets.build("haze-prior", **BODY).train()
    x = torch.rand(2, 3, 32, 32)
    net(x).mean().backward()
    assert all(p.grad is None for p in net.prior.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.body.parameters())
    net.requires_grad_(False).requires_grad_(True)  # how a stage unfreezes a loaded student
    assert not any(p.requires_grad for p in net.prior.parameters())
    assert all(p.requires_grad for p in net.body.parameters())
    both = nets.build("haze-prior", **BODY, train_prior=True)
    both(x).mean().backward()
    assert any(p.grad is not None for p in both.prior.parameters())
