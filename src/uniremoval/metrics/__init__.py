"""Image quality metrics (full-reference: :mod:`uniremoval.metrics.fullref`)."""
from __future__ import annotations

from .fullref import psnr, rgb_to_y, ssim

__all__ = ["psnr", "ssim", "rgb_to_y"]
