"""The r7 synthesis: presets, ranges, third-party streak layers, camera-order blur, clean kind,
multi-scale crops. Tiny images only; no data outside the test."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from uniremoval.data import SyntheticPairs
from uniremoval.degrade import (
    REGISTRY,
    BlurParams,
    CameraParams,
    HazeParams,
    RainParams,
    Registry,
    add_blur,
    add_haze,
    add_rain,
    boost_highlights,
    linear_to_srgb,
    place_layer,
    sample_kernel,
    srgb_to_linear,
)
from uniremoval.degrade.presets import r7_blur, r7_haze, r7_rain
from uniremoval.degrade.preview import contact_sheet


def _image(h: int = 40, w: int = 48) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = np.stack([0.5 + 0.4 * np.sin(xx / 5), 0.5 + 0.4 * np.cos(yy / 7), (xx + yy) / 90], 2)
    return np.clip(a, 0, 1).astype(np.float32)


# Sums of the r6 synthesis of `_image()` before the r7 revision (the code of commit e366f65):
# [sum, sum weighted by a fixed random field]. Registry.preset("r6") must reproduce them.
R6_BEFORE = {
    "haze/0": [4330.5781, 2145.0546], "rain/0": [3507.1604, 1734.6572], "rain/1": [3028.3694, 1495.8431],
    "blur/0": [2927.9583, 1446.847], "blur/1": [2951.4346, 1459.856], "noise/0": [2907.4843, 1436.1309],
    "jpeg/0": [2926.3334, 1445.909], "rain+haze/1": [3910.2704, 1938.1207], "mixed/0": [3268.6483, 1616.2598],
}


def test_r6_preset_reproduces_the_old_synthesis() -> None:
    reg = Registry.preset("r6")
    assert reg.names() == ["haze", "rain", "blur", "noise", "jpeg", "rain+haze", "blur+noise", "blur+jpeg", "mixed"]
    w = np.random.default_rng(123).random((40, 48, 3))
    for key, (total, weighted) in R6_BEFORE.items():
        kind, seed = key.rsplit("/", 1)
        out = reg.synthesize(_image(), kind, seed=int(seed))[0].astype(np.float64)
        assert out.sum() == pytest.approx(total, abs=2e-3), key
        assert (out * w).sum() == pytest.approx(weighted, abs=2e-3), key


def test_presets_selectable_from_config() -> None:
    assert "clean" in REGISTRY and "rain+blur" in REGISTRY
    old = Registry.from_config({"preset": "r6", "kinds": {"haze": {"beta": [1, 1]}}})
    assert "clean" not in old and old.get("haze").params.beta == (1, 1)
    assert old.get("blur").params.camera is None
    assert Registry.from_config({}).get("blur").params.camera is not None  # r7 is the default
    with pytest.raises(KeyError, match="unknown degradation preset"):
        Registry.preset("r99")


@pytest.mark.parametrize("kind", ["haze", "rain", "blur", "clean", "rain+blur", "haze+noise+jpeg"])
def test_r7_deterministic(kind: str) -> None:
    a, ra = REGISTRY.synthesize(_image(), kind, seed=3)
    b, rb = REGISTRY.synthesize(_image(), kind, seed=3)
    assert a.tobytes() == b.tobytes() and ra == rb
    json.dumps(ra)
    assert a.min() >= 0 and a.max() <= 1


def test_clean_kind_is_identity_and_pairs_equal(tmp_path: Path) -> None:
    img = _image()
    out, rec = REGISTRY.synthesize(img, "clean", seed=0)
    assert np.array_equal(out, img) and rec["params"] == {}
    d = tmp_path / "c"
    d.mkdir()
    Image.fromarray((img * 255).astype(np.uint8)).save(d / "a.png")
    ds = SyntheticPairs(d, kinds=("clean",), crop=16, seed=0, length=2, scales=(1.0, 3.0))
    for i in range(2):
        assert torch.equal(ds[i]["input"], ds[i]["target"])


def test_blur_kernels_reach_65px_and_sum_to_one() -> None:
    p = r7_blur()
    supports = []
    for t, s in (("motion", 1.0), ("defocus", 1.0)):
        for seed in range(4):
            k, rec = sample_kernel(np.random.default_rng(seed), BlurParams(**{**p.__dict__, "types": {t: 1.0}}), s)
            assert (k >= 0).all() and k.sum() == pytest.approx(1.0, abs=1e-5)
            supports.append((t, max(rec["kernel_support"])))
    assert max(s for t, s in supports if t == "motion") >= 65
    assert min(s for t, s in supports if t == "defocus") == 31  # radius 15


def test_varying_blur_keeps_flat_image_flat_and_records_kernels() -> None:
    p = BlurParams(**{**r7_blur().__dict__, "p_varying": 1.0, "camera": None, "varying_kernels": (3, 3)})
    flat = np.full((30, 40, 3), 0.4, np.float32)
    out, rec = add_blur(flat, np.random.default_rng(0), p)
    assert len(rec["varying"]) == 2 and np.abs(out - 0.4).max() < 1e-4  # weights sum to 1
    out2, _ = add_blur(_image(), np.random.default_rng(0), p)
    assert not np.allclose(out2, _image(), atol=1e-3)


def test_camera_order_highlights_and_noise() -> None:
    lin = np.full((8, 8, 3), 0.2, np.float32)
    lin[3, 3] = 1.0
    boosted = boost_highlights(lin, 0.9, 8.0)
    assert boosted[3, 3, 0] == pytest.approx(8.0) and np.array_equal(boosted[0, 0], lin[0, 0])
    x = np.linspace(0, 1, 11, dtype=np.float32)
    assert np.allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-5)
    # A small light blurred with highlights stays saturated; without, it fades to grey.
    img = np.full((41, 41, 3), 0.1, np.float32)
    img[18:23, 18:23] = 1.0
    cam_on = CameraParams(p_highlights=1.0, highlight_threshold=(0.9, 0.9), highlight_gain=(8.0, 8.0), p_noise=0.0, p_jpeg=0.0)
    cam_off = CameraParams(p_highlights=0.0, p_noise=0.0, p_jpeg=0.0)
    base = {"types": {"defocus": 1.0}, "defocus_radius": (6.0, 6.0)}
    hi, rec = add_blur(img, np.random.default_rng(0), BlurParams(**base, camera=cam_on))
    lo, _ = add_blur(img, np.random.default_rng(0), BlurParams(**base, camera=cam_off))
    assert rec["camera"]["highlights"]["gain"] == pytest.approx(8.0)
    assert hi[20, 20].min() > 0.99 and lo[20, 20].max() < 0.9
    # Noise comes after the blur: a flat image is no longer flat.
    noisy, rec = add_blur(np.full((32, 32, 3), 0.5, np.float32), np.random.default_rng(1),
                          BlurParams(**base, camera=CameraParams(p_highlights=0.0, p_noise=1.0, p_jpeg=1.0)))
    assert "noise" in rec["camera"] and "jpeg" in rec["camera"] and noisy.std() > 1e-3


def test_dense_haze_reaches_transmission_005_and_tinted_airlight() -> None:
    p = HazeParams(**{**r7_haze().__dict__, "depth_sources": {"gradient": 1.0}, "near_depth": (0.0, 0.0),
                      "p_nonhomogeneous": 0.0, "palette": {"warm": 1.0}, "warm_tint": (0.62, 0.62)})
    _, rec = add_haze(_image(), np.random.default_rng(0), p, strength=1.0)
    assert rec["beta"] == pytest.approx(3.0) and rec["transmission_min"] <= 0.055
    a = rec["airlight"]
    assert rec["airlight_family"] == "warm" and a[0] > a[1] > a[2] and a[2] / a[0] < 0.45
    p_cool = HazeParams(**{**p.__dict__, "palette": {"cool": 1.0}})
    _, rec = add_haze(_image(), np.random.default_rng(0), p_cool)
    assert rec["airlight"][2] > rec["airlight"][0]


def test_rain_ranges_and_strength_sets_coverage() -> None:
    p = r7_rain()
    covers = []
    for s in (0.0, 1.0):
        _, rec = add_rain(_image(64, 64), np.random.default_rng(5), p, strength=s)
        assert p.coverage[0] - 1e-6 <= rec["coverage"] <= p.coverage[1] + 1e-6
        lay = rec["layers"][0]
        assert p.length[0] <= lay["length"] <= p.length[1] and lay["width"] <= p.width[1]
        covers.append(rec["streak_coverage"])
    assert covers[1] > covers[0]


def _layers(d: Path, lit: bool = True) -> Path:
    d.mkdir()
    for i in range(3):
        a = np.zeros((30, 40), np.uint8)
        if lit:
            a[:, 5 + 10 * i : 7 + 10 * i] = 200  # vertical streaks
        Image.fromarray(a).save(d / f"{i}-1.png")
    return d


def test_garg_layers_composited_as_light(tmp_path: Path) -> None:
    quiet = {"p_veil": 0.0, "p_heavy": 0.0, "p_defocus": 0.0, "p_garg": 1.0, "camera": None}
    p = RainParams(**{**r7_rain().__dict__, **quiet, "streak_dir": str(_layers(tmp_path / "lit"))})
    img = _image(48, 64) * 0.5
    out, rec = add_rain(img, np.random.default_rng(0), p)
    again, _ = add_rain(img, np.random.default_rng(0), p)
    assert out.tobytes() == again.tobytes()
    assert rec["garg"]["layer"].endswith("-1.png")
    assert (out >= img - 1e-6).all() and (out - img).max() > 0.05  # screen blend adds light only
    dark = RainParams(**{**p.__dict__, "streak_dir": str(_layers(tmp_path / "dark", lit=False))})
    out, _ = add_rain(img, np.random.default_rng(0), dark)
    assert np.allclose(out, img, atol=1e-6)  # a black layer adds nothing
    with pytest.raises(FileNotFoundError):
        add_rain(img, np.random.default_rng(0), RainParams(**{**p.__dict__, "streak_dir": str(tmp_path / "none")}))


def test_place_layer_size_scale_rotation() -> None:
    layer = np.zeros((30, 40), np.float32)
    layer[:, ::4] = 1.0  # streaks every 4 px, so any piece holds some
    rng = np.random.default_rng(0)
    for scale, angle in ((0.5, 0.0), (3.0, 25.0), (1.0, -30.0)):
        s = place_layer(layer, 50, 70, rng, scale, angle)
        assert s.shape == (50, 70) and s.min() >= 0 and s.max() <= 1 and s.max() > 0.2


def test_multiscale_crops_have_the_configured_size(tmp_path: Path) -> None:
    d = tmp_path / "c"
    d.mkdir()
    Image.fromarray((np.random.default_rng(0).random((60, 90, 3)) * 255).astype(np.uint8)).save(d / "a.png")
    ds = SyntheticPairs(d, kinds=("haze", "rain", "blur"), crop=24, seed=1, length=6, scales=(1.0, 4.0))
    seen = []
    for i in range(6):
        it = ds[i]
        assert it["input"].shape == it["target"].shape == (3, 24, 24)
        assert 1.0 <= it["params"]["scale"] <= 4.0
        seen.append(it["params"]["synth_size"])
    assert max(seen) > 24 + 2 * 16  # some items were synthesised larger and downsampled
    again = SyntheticPairs(d, kinds=("haze", "rain", "blur"), crop=24, seed=1, length=6, scales=(1.0, 4.0))[4]
    assert torch.equal(again["input"], ds[4]["input"])
    with pytest.raises(ValueError):
        SyntheticPairs(d, crop=24, scales=(2.0, 1.0))


def test_contact_sheet_with_real_photos_and_scale() -> None:
    img = _image(20, 24)
    real = {"haze": [np.zeros((50, 30, 3), np.float32), np.ones((10, 90, 3), np.float32)]}
    sheet = contact_sheet(img, ["haze", "rain"], (0.0, 1.0), seeds=2, real=real, scale=2.0, label=False)
    # rows: 2 kinds x 2 seeds; columns: clean + 2 strengths + 1 real column (2 photos over 2 rows)
    assert sheet.shape == (4 * (20 + 2), 4 * (24 + 2), 3)
    assert sheet[0:20, 3 * 26 : 3 * 26 + 24].max() == 0 and sheet[22:42, 3 * 26 : 3 * 26 + 24].min() == 255


def test_r7_draws_stay_in_their_ranges() -> None:
    img = _image(24, 24)
    hz, rn, bl = r7_haze(), r7_rain(), r7_blur()
    for seed in range(25):
        h = REGISTRY.synthesize(img, "haze", seed=seed)[1]["params"]
        assert hz.beta[0] <= h["beta"] <= hz.beta[1]
        assert max(h["airlight"]) <= hz.airlight_max + 1e-4 and max(h["airlight"]) >= hz.airlight[0] - 1e-4
        rr = REGISTRY.synthesize(img, "rain", seed=seed)[1]["params"]
        assert rn.coverage[0] - 1e-4 <= rr["coverage"] <= rn.coverage[1] + 1e-4
        near = rr["layers"][0]
        assert rn.length[0] - 1e-3 <= near["length"] <= rn.length[1] + 1e-3
        assert rn.width[0] - 1e-3 <= near["width"] <= rn.width[1] + 1e-3
        assert rn.brightness[0] - 1e-4 <= near["brightness"] <= rn.brightness[1] + 1e-4
        b = REGISTRY.synthesize(img, "blur", seed=seed)[1]["params"]
        if b["type"] == "motion":
            assert bl.motion_size[0] <= b["size"] <= bl.motion_size[1]
        elif b["type"] == "defocus":
            assert bl.defocus_radius[0] <= b["radius"] <= bl.defocus_radius[1]
        else:
            assert bl.gaussian_sigma[0] <= b["sigma"] <= bl.gaussian_sigma[1]


def test_r6_streak_share_draws_release_6_streaks_and_keeps_the_rest() -> None:
    """``p_r6_streaks``: that share of samples gets release 6's streak ranges (procedural, no
    Garg layer, no defocused layer) with r7's veil and camera; 0 changes nothing."""
    img = _image(64, 64)
    r7 = r7_rain()
    assert r7.p_r6_streaks == 0.0  # opt-in: the r7 preset's pairs stay as they were
    always = RainParams(**{**r7.__dict__, "p_r6_streaks": 1.0, "p_veil": 1.0, "streak_dir": "/nonexistent"})
    base = RainParams()
    for seed in range(6):
        out, rec = add_rain(img, np.random.default_rng(seed), always)
        again, _ = add_rain(img, np.random.default_rng(seed), always)
        assert out.tobytes() == again.tobytes()
        assert rec["r6_streaks"] is True and "garg" not in rec and "defocus" not in rec
        lay = rec["layers"][0]
        assert base.length[0] <= lay["length"] <= base.length[1] and lay["width"] <= base.width[1]
        assert r7.veil[0] <= rec["veil"] <= r7.veil[1] and "camera" in rec  # r7's, not r6's
    never = RainParams(**{**r7.__dict__, "p_r6_streaks": 0.0})
    a, rec = add_rain(img, np.random.default_rng(3), never)
    b, _ = add_rain(img, np.random.default_rng(3), r7)
    assert a.tobytes() == b.tobytes() and "r6_streaks" not in rec
    half = RainParams(**{**r7.__dict__, "p_r6_streaks": 0.5, "streak_dir": None})
    drawn = [add_rain(_image(16, 16), np.random.default_rng(s), half)[1]["r6_streaks"] for s in range(40)]
    assert 8 <= sum(drawn) <= 32
    reg = Registry.from_config({"preset": "r7", "kinds": {"rain": {"p_r6_streaks": 0.5}}})
    assert reg.get("rain").params.p_r6_streaks == 0.5
