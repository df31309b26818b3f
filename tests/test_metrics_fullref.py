"""PSNR/SSIM agree with scikit-image's reference implementations."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from uniremoval.metrics import psnr, ssim


def _pair(seed: int, h: int = 40, w: int = 52) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([np.sin(6 * xx + c) * np.cos(4 * yy - c) * 0.4 + 0.5 for c in range(3)], -1)
    a = np.clip(base + rng.normal(0, 0.02, base.shape), 0, 1)
    b = np.clip(base + rng.normal(0, 0.08, base.shape), 0, 1)
    return a, b


def _t(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x).permute(2, 0, 1).float()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_psnr_matches_skimage(seed: int) -> None:
    a, b = _pair(seed)
    ref = peak_signal_noise_ratio(b.astype(np.float32).astype(np.float64), a.astype(np.float32).astype(np.float64), data_range=1)
    assert float(psnr(_t(a), _t(b))) == pytest.approx(ref, abs=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ssim_matches_skimage(seed: int) -> None:
    a, b = _pair(seed)
    a32, b32 = a.astype(np.float32).astype(np.float64), b.astype(np.float32).astype(np.float64)
    ref = structural_similarity(a32, b32, channel_axis=2, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1)
    assert float(ssim(_t(a), _t(b))) == pytest.approx(ref, abs=1e-7)


def test_ssim_random_images_and_batch() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.random((23, 31, 3)), rng.random((23, 31, 3))
    ref = structural_similarity(a, b, channel_axis=2, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1)
    ta, tb = torch.from_numpy(a).permute(2, 0, 1), torch.from_numpy(b).permute(2, 0, 1)
    got = ssim(torch.stack([ta, ta]), torch.stack([tb, ta]))
    assert got.shape == (2,)
    assert float(got[0]) == pytest.approx(ref, abs=1e-9)
    assert float(got[1]) == pytest.approx(1.0, abs=1e-12)


def test_y_channel_and_crop() -> None:
    a, b = _pair(3)
    ya = (a @ np.array([65.481, 128.553, 24.966]) + 16.0) / 255.0
    yb = (b @ np.array([65.481, 128.553, 24.966]) + 16.0) / 255.0
    ta, tb = torch.from_numpy(a).permute(2, 0, 1), torch.from_numpy(b).permute(2, 0, 1)
    c = 4
    ref_p = peak_signal_noise_ratio(ya[c:-c, c:-c], yb[c:-c, c:-c], data_range=1)
    ref_s = structural_similarity(ya[c:-c, c:-c], yb[c:-c, c:-c], gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1)
    assert float(psnr(ta, tb, crop_border=c, y_channel=True)) == pytest.approx(ref_p, abs=1e-9)
    assert float(ssim(ta, tb, crop_border=c, y_channel=True)) == pytest.approx(ref_s, abs=1e-9)
    assert torch.isinf(psnr(ta, ta))
