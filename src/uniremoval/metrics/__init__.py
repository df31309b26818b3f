"""Image quality metrics (full-reference: :mod:`uniremoval.metrics.fullref`; no-reference:
:mod:`~uniremoval.metrics.niqe`, :mod:`~uniremoval.metrics.brisque`, :mod:`~uniremoval.metrics.piqe`)."""
from __future__ import annotations

from .brisque import brisque
from .fullref import psnr, rgb_to_y, ssim
from .niqe import niqe
from .piqe import piqe

__all__ = ["psnr", "ssim", "rgb_to_y", "niqe", "brisque", "piqe"]
