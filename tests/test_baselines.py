"""Baselines: identity, and the dark-channel-prior dehazer on constructed haze."""
from __future__ import annotations

import numpy as np
import pytest

from uniremoval.baselines import (
    DCPParams, box_mean, dark_channel, dehaze_dcp, estimate_airlight, get_baseline, guided_filter, min_filter,
)

skdata = pytest.importorskip("skimage.data")


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a.astype(np.float64) - b) ** 2)))


def test_identity_returns_input() -> None:
    x = np.random.default_rng(0).random((9, 7, 3)).astype(np.float32)
    y = get_baseline("identity").restore_pixels(x)
    assert np.array_equal(x, y) and y is not x
    with pytest.raises(KeyError, match="known: identity, dcp"):
        get_baseline("nope")


def test_min_filter_and_dark_channel() -> None:
    img = np.ones((20, 20, 3))
    img[10, 10, 1] = 0.2
    d = dark_channel(img, 5)
    assert d[8:13, 8:13].max() == pytest.approx(0.2) and d[0, 0] == 1.0 and d[10, 13] == 1.0
    a = np.random.default_rng(1).random((12, 17))
    ref = np.array([[a[max(i - 1, 0):i + 2, max(j - 1, 0):j + 2].min() for j in range(17)] for i in range(12)])
    assert np.allclose(min_filter(a, 3), ref)


def test_box_mean_and_guided_filter() -> None:
    a = np.random.default_rng(2).random((15, 11))
    ref = np.array([[a[max(i - 2, 0):i + 3, max(j - 2, 0):j + 3].mean() for j in range(11)] for i in range(15)])
    assert np.allclose(box_mean(a, 2), ref)
    const = np.full((15, 11), 0.3)
    assert np.allclose(guided_filter(a, const, 4, 1e-3), 0.3)
    # a source that is a linear function of the guide is reproduced (up to eps)
    assert np.allclose(guided_filter(a, 2 * a + 0.1, 3, 1e-8), 2 * a + 0.1, atol=1e-4)


def test_dcp_recovers_synthetic_haze() -> None:
    clean = skdata.astronaut()[::2, ::2].astype(np.float64) / 255.0  # 256x256
    airlight = np.array([0.9, 0.92, 0.95])
    t = 0.45
    hazy = (clean * t + airlight * (1 - t)).astype(np.float32)
    out, info = dehaze_dcp(hazy)
    assert out.shape == hazy.shape and out.dtype == np.float32
    assert np.allclose(info["airlight"], airlight, atol=0.08)
    assert float(np.median(info["transmission"])) == pytest.approx(t, abs=0.15)
    assert _psnr(out, clean) > _psnr(hazy, clean) + 5.0


def test_airlight_picks_brightest_haze_pixel() -> None:
    img = np.zeros((100, 100, 3))
    img[:5, :5] = [0.8, 0.85, 0.9]
    img[50, 50] = [1.0, 1.0, 1.0]  # a lone white pixel: its dark channel is low after the min filter
    d = dark_channel(img, 3)
    assert np.allclose(estimate_airlight(img, d, 0.001), [0.8, 0.85, 0.9])


def test_dcp_gray_and_params() -> None:
    g = np.random.default_rng(3).random((40, 30, 1)).astype(np.float32)
    out, _ = dehaze_dcp(g, DCPParams(patch=3, gf_radius=4))
    assert out.shape == g.shape and 0 <= out.min() and out.max() <= 1
    with pytest.raises(ValueError, match="pixels must be"):
        dehaze_dcp(np.zeros((4, 4, 2)))
