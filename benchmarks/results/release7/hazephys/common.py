"""Shared parts of the haze-physics experiment: the estimator of transmission t and airlight A
(`uniremoval.nets.hazeprior.HazePrior`, the same weights), the synthesis that knows t, and applying
(t, A) to a full-resolution photo as the product does (`HazePrior.estimate` and `invert`)."""
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn  # noqa: F401  (train.py uses it through *)
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tone"))
from paths import D  # noqa: E402

from uniremoval.degrade import Registry, haze as haze_mod  # noqa: E402
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


def load_weights(path) -> dict:
    """A prior's state dict from ``.safetensors`` (kept in git) or ``.pt`` (the cache)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        return load_file(path)
    return torch.load(path, weights_only=True)


def real_side(group: str, side: str = "train") -> list:
    """The photos of one group of the real split ("hazy", "blur", "rain") on one side, as stage 2
    and real_panel.py split them; the held-out side is for evaluation only."""
    from uniremoval.stages.realsplit import plan_split
    plan = plan_split(D / "real", 0.25, 0)
    return sorted(D / "real" / f["path"] for f in plan["files"] if f["group"] == group and f["side"] == side)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR of ``a`` (clipped to [0, 1]) against ``b``."""
    return 10 * np.log10(1 / max(np.mean((np.clip(a, 0, 1) - b) ** 2), 1e-10))


def to_thumb(img: np.ndarray) -> torch.Tensor:
    """(H, W, 3) float -> (3, THUMB, THUMB) area-resized (aspect not kept: t is smooth)."""
    x = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32)).permute(2, 0, 1)[None]
    return F.interpolate(x, (THUMB, THUMB), mode="area")[0]


def invert(x: torch.Tensor, t: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """J = (I - A) / t + A (broadcast)."""
    return (x - a) / t + a


@torch.no_grad()
def apply_full(net: PhysNet, img: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dehaze a full-resolution photo the way the product does (``HazePrior.estimate``: t from
    the thumbnail, the boundary constraint, the fast guided filter at 256 px; then the physics
    inverted). Returns (J, t at the working resolution, A)."""
    x = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32)).permute(2, 0, 1)[None]
    a, b, air = net.estimate(x)
    grey = F.interpolate(x, a.shape[-2:], mode="area").mean(1, keepdim=True)
    t = (a * grey + b).clamp(T_MIN, 1.0)[0, 0].numpy()
    j = net.invert(x, a, b, air)[0].permute(1, 2, 0).numpy()
    return j, t, air[0].double().numpy()
