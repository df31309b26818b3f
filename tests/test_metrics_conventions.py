"""PSNR/SSIM conventions on constructed cases: identical images, a known noise level, a
shifted image, and the Y channel against scikit-image's rgb2ycbcr (the convention the
restoration literature uses: MATLAB rgb2ycbcr, BT.601 studio range)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from uniremoval.metrics import psnr, rgb_to_y, ssim

skdata = pytest.importorskip("skimage.data")


def _t(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64)).permute(2, 0, 1)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return skdata.astronaut()[::4, ::4].astype(np.float64) / 255.0  # 128x128


def test_identical_images(photo: np.ndarray) -> None:
    assert torch.isinf(psnr(_t(photo), _t(photo)))
    assert float(ssim(_t(photo), _t(photo))) == pytest.approx(1.0, abs=1e-12)
    assert float(ssim(_t(photo), _t(photo), y_channel=True, crop_border=4)) == pytest.approx(1.0, abs=1e-12)


def test_known_noise_level(photo: np.ndarray) -> None:
    # +-d on a checkerboard: MSE is exactly d^2, so PSNR = -20 log10(d)
    d = 0.05
    sign = np.where((np.indices(photo.shape[:2]).sum(0) % 2) == 0, 1.0, -1.0)[..., None]
    base = np.clip(photo, d, 1 - d)
    assert float(psnr(_t(base + d * sign), _t(base))) == pytest.approx(-20 * np.log10(d), abs=1e-9)
    noisy = np.clip(photo + np.random.default_rng(0).normal(0, 0.1, photo.shape), 0, 1)
    assert float(psnr(_t(noisy), _t(photo))) == pytest.approx(peak_signal_noise_ratio(photo, noisy, data_range=1), abs=1e-9)


def test_shifted_image_scores_lower_and_crop_removes_border(photo: np.ndarray) -> None:
    shifted = np.roll(photo, 1, axis=1)
    assert float(psnr(_t(shifted), _t(photo))) < 30 and float(ssim(_t(shifted), _t(photo))) < 0.95
    # a difference confined to a 3-pixel border disappears with crop_border=3
    framed = photo.copy()
    framed[:3] = 0
    assert torch.isinf(psnr(_t(framed), _t(photo), crop_border=3))
    assert np.isfinite(float(psnr(_t(framed), _t(photo), crop_border=2)))


def test_y_channel_is_skimage_rgb2ycbcr(photo: np.ndarray) -> None:
    y_ref = rgb2ycbcr(photo)[..., 0] / 255.0  # skimage: [16, 235] for float RGB in [0, 1]
    y = rgb_to_y(_t(photo).unsqueeze(0))[0, 0].numpy()
    assert np.allclose(y, y_ref, atol=1e-12)
    noisy = np.clip(photo + np.random.default_rng(1).normal(0, 0.05, photo.shape), 0, 1)
    yn = rgb2ycbcr(noisy)[..., 0] / 255.0
    ref = structural_similarity(yn, y_ref, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1)
    assert float(ssim(_t(noisy), _t(photo), y_channel=True)) == pytest.approx(ref, abs=1e-9)
