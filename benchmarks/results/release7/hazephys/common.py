"""Shared parts of the haze-physics experiment: the estimator of transmission t and airlight A
(`uniremoval.nets.hazeprior.HazePrior`, the same weights), the synthesis that knows t, and applying
(t, A) to a full-resolution photo with a full-resolution guided filter (the product path,
`HazePrior.apply_photo`, uses the fast guided filter at 256 px; eval.sh scores that)."""
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn  # noqa: F401  (train.py uses it through *)
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tone"))
from paths import D  # noqa: E402

from uniremoval.degrade import Registry, haze as haze_mod  # noqa: E402
from uniremoval.baselines import guided_filter  # noqa: E402
from uniremoval.nets.hazeprior import HazePrior as PhysNet, THUMB, T_MIN  # noqa: E402,F401

OUT = Path.home() / ".cache/uniremoval/release7/hazephys"


class _RecordingNumpy:
    """numpy, except that the last ``exp`` is kept: in ``add_haze`` that is t = exp(-beta d)."""
    last = None

    def __getattr__(self, name):
        return getattr(np, name)

    def exp(self, *a, **k):
        self.last = np.exp(*a, **k)
        return self.last


REC = _RecordingNumpy()
haze_mod.np = REC


def to_thumb(img: np.ndarray) -> torch.Tensor:
    """(H, W, 3) float -> (3, THUMB, THUMB) area-resized (aspect not kept: t is smooth)."""
    x = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32)).permute(2, 0, 1)[None]
    return F.interpolate(x, (THUMB, THUMB), mode="area")[0]


def invert(x: torch.Tensor, t: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """J = (I - A) / t + A (broadcast)."""
    return (x - a) / t + a


@torch.no_grad()
def apply_full(net: PhysNet, img: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dehaze a full-resolution photo: t from the thumbnail, carried to full resolution by a
    guided filter on the grey input, then the physics inverted. Returns (J, t, A)."""
    t, a = net(to_thumb(img)[None])
    h, w = img.shape[:2]
    t_up = F.interpolate(t, (h, w), mode="bilinear", align_corners=False)[0, 0].double().numpy()
    t_full = guided_filter(img.mean(axis=2).astype(np.float64), t_up, max(4, max(h, w) // 40), 1e-3)
    t_full = np.clip(t_full, T_MIN, 1.0)[..., None]
    av = a[0].double().numpy()
    out = (img - av) / t_full + av
    return np.clip(out, 0, 1).astype(np.float32), t_full[..., 0], av
