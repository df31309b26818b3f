"""Padding an image batch to a network's size multiple: the one helper every caller uses."""
from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F


def reflect_indices(length: int, n: int) -> torch.Tensor:
    """Indices ``0..length-1`` of a signal of size ``n`` extended by mirror reflection
    (without repeating the edge), valid for any ``length`` even when ``n`` is tiny."""
    p = np.arange(length)
    if n == 1:
        return torch.zeros(length, dtype=torch.long)
    period = 2 * (n - 1)
    q = p % period
    return torch.from_numpy(np.where(q < n, q, period - q)).long()


def pad_to_multiple(
    x: torch.Tensor, multiple: int, mode: Literal["reflect", "replicate", "constant"] = "reflect"
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad ``x`` (..., H, W) at the bottom and right so H and W are multiples of ``multiple``.

    Returns the padded tensor and the original ``(h, w)``; crop the network's output back
    with ``out[..., :h, :w]``. ``x`` itself is returned when no padding is needed.
    ``reflect`` mirrors without repeating the edge, as ``F.pad(mode="reflect")`` does, but
    also when the padding is as large as the image or larger (a 1x1 image padded to 16), where
    ``F.pad`` refuses; ``replicate`` repeats the edge, ``constant`` pads with zeros.
    """
    if multiple < 1:
        raise ValueError(f"size multiple must be >= 1, got {multiple}")
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if not (ph or pw):
        return x, (h, w)
    if mode == "reflect":
        rows = reflect_indices(h + ph, h).to(x.device)
        cols = reflect_indices(w + pw, w).to(x.device)
        return x.index_select(-2, rows).index_select(-1, cols), (h, w)
    if mode not in ("replicate", "constant"):
        raise ValueError(f"unknown padding mode {mode!r}; use reflect, replicate or constant")
    return F.pad(x, (0, pw, 0, ph), mode=mode), (h, w)
