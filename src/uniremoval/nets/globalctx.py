"""Global context for restoration networks: a thumbnail of the whole photo, the descriptor a
small encoder reads from it, FiLM conditioning of NAF blocks, and smooth corrections that are
estimated at a working resolution and applied at full resolution.

Why: a network that restores a 512 px tile on its own cannot see the airlight and haze density
of the whole scene; its haze error is mostly global tone. Every tile of a photo gets the same
thumbnail (:func:`thumbnail` of the whole image, computed once by the engine), so tiling
cannot change a photo's tone.

- :func:`thumbnail`: the one function that makes a context input (engine, export, training);
- :class:`ContextEncoder`: thumbnail -> descriptor vector (N, dim);
- :class:`FiLMBlock`: a NAF block whose first normalisation is scaled and shifted per channel
  by the descriptor, zero-initialised (a fresh one computes exactly its NAF block);
- :func:`guided_upsample`: the fast guided filter (He & Sun 2015) in export-friendly torch ops
  (:func:`guided_coefficients`: its low-resolution half);
- :class:`GlobalFix`: a per-pixel affine colour transform (3x4, HDRNet-style) or haze physics
  ``J = I + k (I - A)`` (``k = 1/t - 1``) predicted at low resolution, zero-initialised.
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .nafnet import NAFBlock, _upsample
from .padding import reflect_indices

#: Default thumbnail side (long side of the photo, area-downsampled, mirrored to a square).
DEFAULT_CONTEXT_SIZE = 192

FixMode = Literal["none", "affine", "haze"]
FIX_MODES: tuple[str, ...] = ("none", "affine", "haze")


def thumbnail(x: torch.Tensor, size: int = DEFAULT_CONTEXT_SIZE) -> torch.Tensor:
    """The context input of a whole photo: ``x`` (N, 3, H, W) or (3, H, W) area-downsampled so
    its long side is ``size`` (aspect kept: streak angles survive), then mirrored at the bottom
    and right to a ``size`` x ``size`` square so photos of any shape batch together.

    Returns float32 (N, 3, size, size) (N = 1 for a 3-D input), on ``x``'s device. Call it on
    the whole degraded photo, not on a crop or tile: that is what makes the context global.
    """
    if x.dim() == 3:
        x = x[None]
    h, w = int(x.shape[-2]), int(x.shape[-1])
    scale = size / max(h, w)
    th, tw = max(1, round(h * scale)), max(1, round(w * scale))
    # adaptive_avg_pool2d is an exact area average for shrinking (and nearest for the rare
    # photo smaller than the thumbnail), in one pass over the photo.
    t = F.adaptive_avg_pool2d(x.float(), (th, tw))
    if (th, tw) != (size, size):
        t = t.index_select(-2, reflect_indices(size, th).to(t.device)).index_select(-1, reflect_indices(size, tw).to(t.device))
    return t


def _spatial_stats(f: torch.Tensor) -> torch.Tensor:
    """Per-channel mean and standard deviation over the map: (N, 2C)."""
    mean = f.mean((2, 3))
    var = (f - mean[:, :, None, None]).pow(2).mean((2, 3))
    return torch.cat([mean, torch.sqrt(var + 1e-6)], 1)


class ContextEncoder(nn.Module):
    """Thumbnail -> degradation descriptor (N, ``dim``): strided convolutions, then the mean
    and spread of each channel (and of the thumbnail's own colours: airlight, tone) through a
    small MLP. Never told the degradation kind."""

    def __init__(self, dim: int = 64, width: int = 16, depth: int = 4) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in, c = 3, width
        for _ in range(depth):
            layers += [nn.Conv2d(c_in, c, 3, stride=2, padding=1), nn.SiLU()]
            c_in, c = c, 2 * c
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(2 * c_in + 6, 2 * dim), nn.SiLU(), nn.Linear(2 * dim, dim))
        self.dim = dim

    def forward(self, thumb: torch.Tensor) -> torch.Tensor:
        feats = torch.cat([_spatial_stats(self.body(thumb)), _spatial_stats(thumb).to(thumb.dtype)], 1)
        return self.head(feats)


def _zero(m: nn.Linear | nn.Conv2d) -> None:
    nn.init.zeros_(m.weight)
    if m.bias is not None:
        nn.init.zeros_(m.bias)


class FiLMBlock(NAFBlock):
    """A NAF block conditioned by the descriptor: ``norm1``'s output is scaled by ``1 + s``
    and shifted by ``b`` per channel, ``(s, b) = film(cond)``. ``film`` starts at zero, so a
    fresh FiLM block computes exactly its NAF block (and loads its weights unchanged).
    ``cond_dim`` 0: no conditioning (the block is a NAF block)."""

    def __init__(self, c: int, cond_dim: int, **kw: object) -> None:
        super().__init__(c, **kw)  # type: ignore[arg-type]
        self.film = nn.Linear(cond_dim, 2 * c) if cond_dim else None
        if self.film is not None:
            _zero(self.film)

    def forward(self, inp: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        if cond is None or self.film is None:
            return super().forward(inp)
        s, b = self.film(cond)[:, :, None, None].chunk(2, 1)  # (Nc, C, 1, 1): broadcast over tiles
        # Folded into the norm's own affine map (exactly it when s = b = 0).
        scale = self.norm1.weight.view(1, -1, 1, 1) * (1 + s)
        shift = self.norm1.bias.view(1, -1, 1, 1) * (1 + s) + b
        eps = self.norm1.eps
        if torch.compiler.is_exporting():
            mu = inp.mean(1, keepdim=True)
            xc = inp - mu
            z = xc * torch.rsqrt(xc.pow(2).mean(1, keepdim=True) + eps) * scale + shift
        elif scale.shape[0] == 1:
            # One context for the whole batch (the engine's tiles): one fused pass, as NAFNet's
            # norm; a separate FiLM pass cost ~10 % of a CPU tile.
            z = F.layer_norm(inp.permute(0, 2, 3, 1), (inp.shape[1],), scale.view(-1), shift.view(-1), eps).permute(0, 3, 1, 2)
        else:
            y = F.layer_norm(inp.permute(0, 2, 3, 1), (inp.shape[1],), None, None, eps).permute(0, 3, 1, 2)
            z = torch.addcmul(shift.to(y.dtype), y, scale.to(y.dtype))
        return self.after_norm(inp, z)


def _box(x: torch.Tensor, r: int) -> torch.Tensor:
    """Mean over a (2r+1)^2 window, the window clipped at the borders."""
    return F.avg_pool2d(x, 2 * r + 1, stride=1, padding=r, count_include_pad=False)


def guided_upsample(p: torch.Tensor, guide_lo: torch.Tensor, guide: torch.Tensor, factor: int, radius: int = 2, eps: float = 1e-3) -> torch.Tensor:
    """The fast guided filter (He & Sun 2015): ``p`` (N, C, h, w) estimated at low resolution,
    brought to the full resolution of ``guide`` (N, C or 1, H, W; ``factor`` times larger).

    Each channel of ``p`` is fitted locally as ``a * guide_lo + b`` (windows of radius
    ``radius`` low-res pixels, regularised by ``eps``); ``a`` and ``b`` are smoothed, upsampled
    bilinearly and applied to the full-resolution ``guide``. A field that changes where the
    guide has an edge changes at that edge, not in a blurred band around it (what a bilinear
    upsampling of ``p`` gives). A field of zeros gives exactly zeros. Float32 throughout.
    """
    a, b = guided_coefficients(p, guide_lo, radius, eps)
    return torch.addcmul(_upsample(b, factor, guide), _upsample(a, factor, guide), guide.float())


def guided_coefficients(p: torch.Tensor, guide_lo: torch.Tensor, radius: int = 2, eps: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor]:
    """The low-resolution half of :func:`guided_upsample`: the smoothed local fit
    ``p ~ a * guide_lo + b`` per channel, (a, b) at ``p``'s resolution, float32. Upsampled
    bilinearly and applied as ``a * guide + b`` they give :func:`guided_upsample`'s field
    (callers that need bounded memory apply them in strips)."""
    p, g = p.float(), guide_lo.float()
    mg, mp = _box(g, radius), _box(p, radius)
    cov = _box(g * p, radius) - mg * mp
    var = _box(g * g, radius) - mg * mg
    a = cov / (var + eps)
    b = mp - a * mg
    return _box(a, radius), _box(b, radius)


class GlobalFix(nn.Module):
    """Smooth corrections estimated at 1/``factor`` resolution and applied at full resolution.

    ``mode``:
      ``affine``: a 3x4 colour transform per pixel, ``out = x + M x + c`` (12 coefficients);
      ``haze``: ``out = x + k (x - A)`` with ``k = 1/t - 1`` per pixel (transmission ``t``,
      at least ``1/(1 + k_max)``) and one airlight ``A`` per photo (from the descriptor).

    Coefficients come from decoder features at that resolution plus a per-photo term from the
    descriptor (global gain/offset, haze density). ``guided``: the correction is applied to the
    area-downsampled input and its change carried to full resolution by :func:`guided_upsample`
    (per channel, guided by the input); else the coefficients are upsampled bilinearly and
    applied per full-resolution pixel (HDRNet without its guide). All heads start at zero: a
    fresh GlobalFix returns ``x`` exactly.
    """

    def __init__(self, mode: str, feat_channels: int, cond_dim: int, factor: int, guided: bool = True,
                 radius: int = 2, eps: float = 1e-3, k_max: float = 9.0) -> None:
        super().__init__()
        if mode not in ("affine", "haze"):
            raise ValueError(f"unknown global fix {mode!r}; use one of {', '.join(FIX_MODES)}")
        self.mode, self.factor, self.guided = mode, int(factor), bool(guided)
        self.radius, self.eps, self.k_max = int(radius), float(eps), float(k_max)
        n = 12 if mode == "affine" else 1
        self.head = nn.Conv2d(feat_channels, n, 1)
        # Without a descriptor (cond_dim 0, the no-context ablation) the per-photo terms are
        # constants: the airlight a learned colour, no per-photo coefficient term.
        self.per_photo = nn.Linear(cond_dim, n) if cond_dim else None
        self.airlight = nn.Linear(max(cond_dim, 1), 3) if mode == "haze" else None
        for m in (self.head, self.per_photo, self.airlight):
            if m is not None:
                _zero(m)

    def forward(self, x: torch.Tensor, feat: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """``x`` (N, 3, H, W) full resolution, ``feat`` at 1/factor of it, ``cond`` (Nc, D) or
        None (no context)."""
        coef = self.head(feat).float()
        if cond is not None and self.per_photo is not None:
            coef = coef + self.per_photo(cond)[:, :, None, None].float()
        if self.mode == "haze":
            # elu: exactly 0 with slope 1 at a zero head (trainable from the start), and
            # k > -1 (t < inf); tanh caps k at k_max (t >= 1/(1+k_max)).
            coef = self.k_max * torch.tanh(F.elu(coef) / self.k_max)
            assert self.airlight is not None
            light = self.airlight.bias.view(1, 3) if cond is None or self.per_photo is None else self.airlight(cond)
            a = torch.sigmoid(light.float())[:, :, None, None]
        xf = x.float()
        if self.guided:
            # The correction is made at low resolution, then carried up by a per-channel
            # guided filter of its change on the input (6 full-resolution channels, where
            # upsampling 12 coefficients cost 4x more).
            lo = F.avg_pool2d(xf, self.factor)
            delta = coef * (lo - a) if self.mode == "haze" else self._affine(coef, lo)
            return xf + guided_upsample(delta, lo, xf, self.factor, self.radius, self.eps)
        q = _upsample(coef, self.factor, xf)
        return xf + (q * (xf - a) if self.mode == "haze" else self._affine(q, xf))

    @staticmethod
    def _affine(q: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``M x + c`` per pixel, ``M`` = q[:, :9] as 3x3 (row = output channel), c = q[:, 9:]."""
        m = q[:, :9].unflatten(1, (3, 3))
        return (m * x[:, None]).sum(2) + q[:, 9:]


class Refine(nn.Module):
    """A light full-resolution refinement of ``y`` given the input ``x``: two 3x3 convolutions
    with a gate between them, the last one zero-initialised (a fresh one returns ``y``)."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(6, 2 * width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, 3, 3, padding=1)
        _zero(self.conv2)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        a, b = self.conv1(torch.cat([x, y.to(x.dtype)], 1)).chunk(2, 1)
        return y + self.conv2(a * b)
