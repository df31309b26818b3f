"""Full-reference metrics on torch tensors: PSNR and SSIM, on RGB or the Y channel.

Conventions (those of the restoration literature and scikit-image):
- images are float in [0, 1] (``data_range`` 1), CHW or NCHW; results are per image;
- ``crop_border`` pixels are removed on every side before measuring;
- Y is ITU-R BT.601 luma of the 8-bit studio range, scaled back to [0, 1] (as in MATLAB's
  ``rgb2ycbcr`` and BasicSR), so Y-channel numbers compare with published tables;
- SSIM uses an 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03 and population
  (not sample) covariance, and averages the SSIM map over the region where the window fits
  inside the image, exactly like ``skimage.metrics.structural_similarity(...,
  gaussian_weights=True, use_sample_covariance=False, data_range=1)``. RGB SSIM is the mean
  of the per-channel values.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

_SIGMA = 1.5
_RADIUS = 5  # scikit-image: int(truncate 3.5 * sigma + 0.5)


def _as_batch(x: torch.Tensor) -> tuple[torch.Tensor, bool]:
    if x.dim() == 3:
        return x.unsqueeze(0), True
    if x.dim() != 4:
        raise ValueError(f"expected a CHW or NCHW image tensor, got shape {tuple(x.shape)}")
    return x, False


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """BT.601 studio-range luma of RGB in [0, 1], in [16/255, 235/255]; keeps the channel dim."""
    w = x.new_tensor([65.481, 128.553, 24.966]).view(1, 3, 1, 1) / 255.0
    return (x * w).sum(dim=1, keepdim=True) + 16.0 / 255.0


def _prepare(pred: torch.Tensor, target: torch.Tensor, crop_border: int, y_channel: bool) -> tuple[torch.Tensor, torch.Tensor, bool]:
    if pred.shape != target.shape:
        raise ValueError(f"shape mismatch: {tuple(pred.shape)} vs {tuple(target.shape)}")
    p, single = _as_batch(pred)
    t, _ = _as_batch(target)
    p, t = p.double(), t.double()  # metrics in float64: differences of near-equal images
    if crop_border:
        p = p[..., crop_border:-crop_border, crop_border:-crop_border]
        t = t[..., crop_border:-crop_border, crop_border:-crop_border]
    if y_channel:
        if p.shape[1] != 3:
            raise ValueError("y_channel needs RGB images")
        p, t = rgb_to_y(p), rgb_to_y(t)
    return p, t, single


def psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, crop_border: int = 0, y_channel: bool = False) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image (a 0-dim tensor for a CHW input).

    Identical images give ``inf``.
    """
    p, t, single = _prepare(pred, target, crop_border, y_channel)
    mse = (p - t).pow(2).flatten(1).mean(1)
    out = 10.0 * torch.log10(data_range**2 / mse)
    return out[0] if single else out


def _gauss_kernel(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    x = torch.arange(-_RADIUS, _RADIUS + 1, dtype=dtype, device=device)
    k = torch.exp(-(x**2) / (2 * _SIGMA**2))
    return k / k.sum()


def ssim(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, crop_border: int = 0, y_channel: bool = False) -> torch.Tensor:
    """Structural similarity per image (mean over channels); see the module docstring."""
    p, t, single = _prepare(pred, target, crop_border, y_channel)
    n, c, h, w = p.shape
    if h < 2 * _RADIUS + 1 or w < 2 * _RADIUS + 1:
        raise ValueError(f"SSIM needs images of at least {2 * _RADIUS + 1} px per side, got {h}x{w}")
    k = _gauss_kernel(p.dtype, p.device)
    kh = k.view(1, 1, -1, 1).expand(c, 1, -1, 1)
    kw = k.view(1, 1, 1, -1).expand(c, 1, 1, -1)

    def filt(z: torch.Tensor) -> torch.Tensor:
        # "valid" convolution = scikit-image's filtered map with its border (radius) cropped,
        # so no padding convention matters.
        return F.conv2d(F.conv2d(z, kh, groups=c), kw, groups=c)

    ux, uy = filt(p), filt(t)
    uxx, uyy, uxy = filt(p * p), filt(t * t), filt(p * t)
    vx, vy, vxy = uxx - ux * ux, uyy - uy * uy, uxy - ux * uy
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    out = s.flatten(1).mean(1)
    return out[0] if single else out
