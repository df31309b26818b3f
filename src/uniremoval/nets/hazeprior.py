"""A haze prior read from the whole photo: transmission and airlight from a thumbnail, the
scattering model inverted at full resolution, then any restoration network on the result.

Haze follows ``I = J t + A (1 - t)`` (Koschmieder): a smooth transmission ``t`` and one
airlight ``A`` per photo. Release 6 learned haze removal as a residual on 512 px tiles and
gets its global tone wrong (an oracle per-channel gain and offset of its output adds ~4 dB on
the own haze pairs); the dark-channel prior gets the tone from physics but breaks on clean,
rainy and blurred photos. :class:`HazePrior` estimates ``t`` (a 32 x 32 map) and ``A`` from a
128 x 128 thumbnail of the WHOLE photo with a small CNN that reads the input and dark-channel
statistics, trained on synthesis whose true ``t`` and ``A`` are known (and on clean, rainy and
blurred photos, whose ``t`` is 1). The map is carried to full resolution by the fast guided
filter (He & Sun 2015) on the grey photo, so haze edges follow image edges; then
``J = (I - A) / t + A``. A photo the prior finds clear (``t`` = 1) passes unchanged.

Two parts come from the photo itself rather than from the network, because a regressed airlight
drifted dark on real photos and turned dense-haze skies yellow: the airlight is the dark-channel
prior's candidate (the colour of the haziest pixels) plus a bounded learned correction, and
``t`` is raised to the boundary constraint (Meng et al. 2013) that keeps ``J`` inside [0, 1].

:class:`PriorNet` (architecture ``haze-prior``) puts the prior in front of a restoration
network (``body``). On a batch of whole photos or crops its ``forward`` is
``body(prior(x))`` (or ``body(context)`` when the prior's output on each crop's whole photo is
given: training data carries it, ``stages.common.PriorContext``); the inference engine instead runs :meth:`HazePrior.apply_photo` once on
the whole photo (in row strips: bounded memory) and tiles only the body, so every tile gets
the photo's one transmission map and airlight (descriptor ``photo_prior``).
"""
from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .descriptor import NetDescriptor, describe, describer
from .globalctx import guided_coefficients
from . import build, register

THUMB = 128  # thumbnail side the estimator reads (aspect not kept: t is smooth)
GUIDE = 256  # longer side of the guided filter's working resolution
T_MIN = 0.04  # t floor: exp(-3.2), below the densest synthesis (far t 0.05)
STRIP_ROWS = 512  # rows per strip of the full-resolution inversion (bounded memory)
AIR_STEP = 0.3  # largest change the network may make to the dark-channel airlight candidate
DETAIL_SIGMA = 2.0  # px: the detail that ``detail_gain`` limits is the photo minus this blur
NOISE_BLOCK = 16  # px: blocks over which the noise estimate is averaged
NOISE_QUANTILE = 0.1  # the flattest blocks' residual is noise, not texture


def _block(i: int, o: int, s: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(i, o, 3, s, 1), nn.GELU(), nn.Conv2d(o, o, 3, 1, 1), nn.GELU())


def _features(thumb: torch.Tensor) -> torch.Tensor:
    """The thumbnail plus what the dark-channel prior reads: min channel, its 5 x 5 minimum
    (the dark channel at thumbnail scale) and saturation."""
    mn, mx = thumb.amin(1, keepdim=True), thumb.amax(1, keepdim=True)
    return torch.cat([thumb, mn, -F.max_pool2d(-mn, 5, 1, 2), mx - mn], 1)


def airlight_candidate(thumb: torch.Tensor, fraction: float = 0.005) -> torch.Tensor:
    """The dark-channel prior's airlight: mean colour of the ``fraction`` haziest pixels (highest
    5 x 5 dark channel) of each thumbnail (N, 3, h, w) -> (N, 3). An anchor read from the photo
    itself: a regressed airlight drifted dark on real photos (their skies are brighter than
    the synthesis's mean), which turns dense-haze skies yellow."""
    dark = -F.max_pool2d(-thumb.amin(1, keepdim=True), 5, 1, 2)
    k = max(1, int(fraction * dark[0].numel()))
    idx = dark.flatten(1).topk(k, 1).indices
    return thumb.flatten(2).gather(2, idx[:, None].expand(-1, thumb.shape[1], -1)).mean(2)


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (N, C, H, W), edges replicated (so a strip with enough halo
    rows gives exactly the whole photo's rows)."""
    r = int(3 * sigma)
    g = torch.exp(-(torch.arange(-r, r + 1, dtype=torch.float32, device=x.device) ** 2) / (2 * sigma * sigma))
    g = (g / g.sum()).to(x.dtype)
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def noise_sigma(x: torch.Tensor, strip_rows: int = 512) -> torch.Tensor:
    """Sensor-noise standard deviation of each photo (N, 3, H, W) -> (N,), in [0, 1] units.

    Immerkaer's (1996) estimate: the grey image's difference of two Laplacians (the 3 x 3 kernel
    [1 -2 1] x [1 -2 1]) cancels smooth signal, so ``sqrt(pi / 2) / 6 * |residual|`` estimates sigma
    where the photo is flat. It is averaged over 16 x 16 blocks and the 10th percentile of blocks
    is kept: texture raises a block's residual, noise raises every block's. Measured at full
    resolution, where the noise is (a thumbnail averages it away), in strips of whole blocks so
    memory stays at one strip's worth (the result equals one pass)."""
    n, _, h, w = x.shape
    b = min(NOISE_BLOCK, h - 2, w - 2)
    if b < 1:
        return torch.zeros(n, device=x.device)
    used = (h - 2) // b * b  # residual rows in whole blocks (pooling drops the rest)
    step = max(b, strip_rows // b * b)
    blocks = []
    for y in range(0, used, step):
        y1 = min(used, y + step)
        g = x[:, :, y : y1 + 2].float().mean(1)
        d = g[:, :, :-2] - 2 * g[:, :, 1:-1] + g[:, :, 2:]
        r = (d[:, :-2] - 2 * d[:, 1:-1] + d[:, 2:]).abs()
        blocks.append(F.avg_pool2d(r[:, None], b).flatten(1))
    return torch.cat(blocks, 1).quantile(NOISE_QUANTILE, dim=1) * (0.5 * torch.pi) ** 0.5 / 6.0


def transmission_bound(x: torch.Tensor, air: torch.Tensor, radius: int = 2) -> torch.Tensor:
    """Lowest transmission that keeps ``J = (x - A) / t + A`` inside [0, 1] in every channel
    (Meng et al. 2013's boundary constraint), eroded over (2r + 1)^2 pixels so it is a property
    of a region, not of texture. For x (N, 3, h, w) and A (N, 3): (N, 1, h, w). It is below
    the true t whenever A is right, and it stops a wrong A from pushing skies off colour."""
    light = air[:, :, None, None]
    over = (x - light) / (1.0 - light).clamp_min(0.05)
    under = (light - x) / light.clamp_min(0.05)
    bound = torch.maximum(over, under).amax(1, keepdim=True).clamp(0.0, 1.0)
    return -F.max_pool2d(-bound, 2 * radius + 1, 1, radius) if radius > 0 else bound


class HazePrior(nn.Module):
    """Thumbnail (N, 3, 128, 128) -> transmission (N, 1, 32, 32) in [T_MIN, 1], airlight (N, 3).

    A U-Net to 8 x 8; the pooled bottleneck (mean and max) gives a per-photo vector that sets
    the airlight and shifts the decoder, so density is judged against the whole scene."""

    def __init__(self, width: int = 32, detail_gain: float | None = None, noise_target: float | None = None,
                 noise_detail: float | None = None, air_tint: bool = True) -> None:
        super().__init__()
        # None: J = (I - A) / t + A, which multiplies sensor noise by 1 / t (x5 in a dense-haze
        # sky); a body trained on noise-free hazy photos paints that grain into brown blotches
        # (training haze with the camera stage fixes it at the source: arch_ablation's fifth
        # round). A number: only the smooth part of the photo gets 1 / t, the detail above
        # DETAIL_SIGMA at most this gain (no weights: an inference and training choice).
        if detail_gain is not None and detail_gain < 1:
            raise ValueError(f"detail_gain must be >= 1 (or None), not {detail_gain}")
        self.detail_gain = detail_gain
        # None: t may fall to T_MIN everywhere, so noise is multiplied by up to 25 in dense fog
        # (a noisy JPEG's fog bank comes back as mottled teal texture). A number: t is kept at
        # or above sigma / noise_target for the photo's measured noise sigma, so the noise in
        # the output stays near noise_target where the haze hides the scene; a clean photo's
        # floor stays at T_MIN (no weights: an inference and training choice).
        if noise_target is not None and noise_target <= 0:
            raise ValueError(f"noise_target must be > 0 (or None), not {noise_target}")
        self.noise_target = noise_target
        # None: as above. A number: the detail finer than DETAIL_SIGMA is amplified at most
        # noise_detail / sigma (never below 1), so a noisy photo's grain comes out near
        # noise_detail while its smooth part is still dehazed by the full 1 / t (the floor above
        # holds the whole photo back); a clean photo's cap is far above 1 / t.
        if noise_detail is not None and noise_detail <= 0:
            raise ValueError(f"noise_detail must be > 0 (or None), not {noise_detail}")
        self.noise_detail = noise_detail
        # True: the learned correction may change the airlight's colour. False: only its
        # brightness (the mean of its three channels), so A keeps the colour of the photo's
        # haziest pixels: the correction learned a blue lean from the synthesis's tinted
        # airlights, and 1 / t turns an airlight 0.01 bluer than a real grey sky into a yellow
        # cast (no weights: an inference and training choice).
        self.air_tint = air_tint
        w = width
        self.e1, self.e2, self.e3, self.e4 = _block(6, w, 2), _block(w, 2 * w, 2), _block(2 * w, 3 * w, 2), _block(3 * w, 4 * w, 2)
        self.glob = nn.Sequential(nn.Linear(8 * w, 4 * w), nn.GELU(), nn.Linear(4 * w, 4 * w))
        # A correction to the dark-channel airlight candidate, bounded and starting at zero.
        self.air = nn.Linear(4 * w + 3, 3)
        nn.init.zeros_(self.air.weight), nn.init.zeros_(self.air.bias)
        self.d3 = _block(7 * w, 3 * w)
        self.d2 = _block(5 * w, w)
        self.film = nn.Linear(4 * w, 6 * w)
        self.tout = nn.Conv2d(w, 1, 3, 1, 1)

    def forward(self, thumb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(transmission map, airlight) of each thumbnail."""
        a0 = airlight_candidate(thumb)
        f2 = self.e2(self.e1(_features(thumb)))
        f3 = self.e3(f2)
        f4 = self.e4(f3)
        g = self.glob(torch.cat([f4.mean((2, 3)), f4.amax((2, 3))], 1))
        da = AIR_STEP * torch.tanh(self.air(torch.cat([g, a0], 1)))
        if not self.air_tint:
            da = da.mean(1, keepdim=True).expand_as(da)
        a = (a0 + da).clamp(0.05, 1.2)
        u = self.d3(torch.cat([F.interpolate(f4, scale_factor=2.0), f3], 1))
        scale, shift = self.film(g)[:, :, None, None].chunk(2, 1)
        u = self.d2(torch.cat([F.interpolate(u * (1 + scale) + shift, scale_factor=2.0), f2], 1))
        # The bias starts the estimate at clear air (t ~ 0.95).
        t = T_MIN + (1 - T_MIN) * torch.sigmoid(self.tout(u) + 3.0)
        return t, a

    def estimate(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For whole photos ``x`` (N, 3, H, W): the guided filter's coefficients (a, b), each
        (N, 1, h, w) at the working resolution (longer side <= GUIDE), and the airlight (N, 3).
        ``t = a * grey + b`` with a and b upsampled bilinearly to (H, W)."""
        x = x.float()
        h, w = x.shape[-2:]
        s = min(1.0, GUIDE / max(h, w))
        gh, gw = max(1, round(h * s)), max(1, round(w * s))
        t, air = self(F.interpolate(x, (THUMB, THUMB), mode="area"))
        # One pass over the full-resolution photo: the grey guide is the small colour image's
        # mean (area resizing and the channel mean commute).
        small = F.interpolate(x, (gh, gw), mode="area")
        grey = small.mean(1, keepdim=True)
        t_lo = F.interpolate(t, (gh, gw), mode="bilinear", align_corners=False)
        t_lo = torch.maximum(t_lo, transmission_bound(small, air))
        a, b = guided_coefficients(t_lo, grey, max(2, max(gh, gw) // 40), 1e-3)
        return a, b, air

    def floor(self, x: torch.Tensor) -> torch.Tensor:
        """The lowest transmission :meth:`invert` may use for each whole photo ``x`` (N, 3, H, W):
        (N,), T_MIN unless ``noise_target`` is set and the photo is noisy."""
        if self.noise_target is None:
            return torch.full((x.shape[0],), T_MIN, device=x.device)
        return (noise_sigma(x) / self.noise_target).clamp(T_MIN, 1.0)

    def detail_cap(self, x: torch.Tensor) -> torch.Tensor | None:
        """The most :meth:`invert` may amplify the detail of each whole photo ``x`` (N, 3, H, W) by:
        (N,), from ``noise_detail`` and the photo's noise; None without ``noise_detail``."""
        if self.noise_detail is None:
            return None
        return (self.noise_detail / noise_sigma(x).clamp_min(1e-6)).clamp_min(1.0)

    @property
    def halo(self) -> int:
        """Rows beyond a strip that :meth:`invert` reads (the detail blur's reach)."""
        return 0 if self.detail_gain is None and self.noise_detail is None else int(3 * DETAIL_SIGMA)

    def invert(self, x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, air: torch.Tensor, rows: tuple[int, int] | None = None,
               floor: torch.Tensor | None = None, cap: torch.Tensor | None = None) -> torch.Tensor:
        """``J = (x - A) / t + A`` for ``x`` (N, 3, H', W'), rows ``rows`` = (y0, H) of a photo
        H rows tall (None: ``x`` is the whole photo), clipped to [0, 1]. With ``detail_gain``,
        ``J = (B - A) / t + A + (x - B) min(1 / t, gain)`` for B = x blurred (the first and
        last :attr:`halo` rows of a strip are then only right at the photo's own edges).
        ``floor`` (N,), from :meth:`floor` on the whole photo, raises t where given; ``cap`` (N,),
        from :meth:`detail_cap`, limits the detail's gain as ``detail_gain`` does, per photo."""
        x = x.float()
        n, _, hs, w = x.shape
        y0, h = rows if rows is not None else (0, hs)
        # Sampling points of F.interpolate(bilinear, align_corners=False) for these rows, so
        # strips give exactly the whole photo's map.
        gy = ((torch.arange(y0, y0 + hs, dtype=torch.float32) + 0.5) / h) * 2 - 1
        gx = ((torch.arange(w, dtype=torch.float32) + 0.5) / w) * 2 - 1
        grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], -1)[None].expand(n, -1, -1, -1).to(x.device)
        ab = F.grid_sample(torch.cat([a, b], 1), grid, mode="bilinear", padding_mode="border", align_corners=False)
        t = (ab[:, :1] * x.mean(1, keepdim=True) + ab[:, 1:]).clamp(T_MIN, 1.0)
        if floor is not None:
            t = torch.maximum(t, floor.to(t.device).view(-1, 1, 1, 1))
        light = air[:, :, None, None].to(x.device)
        gain = t.reciprocal()
        if cap is not None:
            cap = cap.to(gain.device).view(-1, 1, 1, 1)
        # Where no pixel's 1 / t reaches the cap (a clean photo, light haze), the split is the
        # plain inversion, so the blur (the costly part at 12 MP) is skipped.
        if self.detail_gain is None and (cap is None or not bool((gain > cap).any())):
            return ((x - light) / t + light).clamp(0.0, 1.0)
        if self.detail_gain is not None:
            gain = gain.clamp(max=self.detail_gain)
        if cap is not None:
            gain = torch.minimum(gain, cap)
        base = _blur(x, DETAIL_SIGMA)
        return ((base - light) / t + light + (x - base) * gain).clamp(0.0, 1.0)

    def dehaze(self, x: torch.Tensor) -> torch.Tensor:
        """Dehaze whole photos (N, 3, H, W) in one pass (training, small photos)."""
        a, b, air = self.estimate(x)
        return self.invert(x, a, b, air, floor=self.floor(x) if self.noise_target is not None else None, cap=self.detail_cap(x))

    @torch.no_grad()
    def apply_photo(self, x: torch.Tensor, strip_rows: int = STRIP_ROWS) -> torch.Tensor:
        """Dehaze one photo (3, H, W) into a new float32 tensor, strip by strip (the inference
        engine's entry: the estimate is made once; beyond the output, memory stays at one
        strip's worth). ``x`` is not modified."""
        a, b, air = self.estimate(x[None])
        floor = self.floor(x[None]) if self.noise_target is not None else None
        cap = self.detail_cap(x[None])
        h = x.shape[1]
        out = torch.empty(x.shape, dtype=torch.float32, device=x.device)
        for y in range(0, h, strip_rows):
            y0, y1 = max(0, y - self.halo), min(h, y + strip_rows + self.halo)
            j = self.invert(x[None, :, y0:y1], a, b, air, (y0, h), floor, cap)[0]
            out[:, y : y + strip_rows] = j[:, y - y0 : y - y0 + strip_rows]
        return out


class PriorNet(nn.Module):
    """``body(prior(x))``: the haze prior in front of a restoration network."""

    def __init__(self, body: nn.Module, prior: HazePrior, train_prior: bool = False) -> None:
        super().__init__()
        self.prior, self.body, self.train_prior = prior, body, train_prior
        self.requires_grad_()

    def requires_grad_(self, requires_grad: bool = True) -> "PriorNet":
        # The prior is frozen unless built with train_prior: it is trained on its own targets
        # (true t and A), and a body fine-tuned behind it should learn to restore its output,
        # not re-fit it. Stages unfreeze a loaded student with requires_grad_(True) (stage 2
        # does), so the rule lives here rather than only in the constructor.
        super().requires_grad_(requires_grad)
        if requires_grad and not self.train_prior:
            self.prior.requires_grad_(False)
        return self

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, **kw: Any) -> Any:
        """``body(prior(x))``; with ``context`` (the prior's output for ``x``, computed on the
        whole photo ``x`` was cut from, as training data carries it), ``body(context)``."""
        return self.body(self._dehazed(x, context), **kw)

    def encode(self, x: torch.Tensor, context: torch.Tensor | None = None, **kw: Any) -> Any:
        return self.body.encode(self._dehazed(x, context), **kw)

    def _dehazed(self, x: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        if context is None:
            return self.prior.dehaze(x).to(x.dtype)
        if context.shape != x.shape:
            raise ValueError(f"the prior's output {tuple(context.shape)} must match the input {tuple(x.shape)}")
        return context.to(x.dtype)


@register("haze-prior")
def haze_prior(body: str = "nafnet-small-deep", body_args: dict[str, Any] | None = None, prior_width: int = 32,
               train_prior: bool = False, detail_gain: float | None = None, noise_target: float | None = None,
               noise_detail: float | None = None, air_tint: bool = True) -> PriorNet:
    """The haze prior (width ``prior_width``; trainable only with ``train_prior``; detail
    amplified at most ``detail_gain``; t kept at or above the photo's noise over
    ``noise_target``; detail amplified at most the photo's noise over ``noise_detail``; the
    airlight's learned correction limited to brightness without ``air_tint``; see
    :class:`HazePrior`) in front of architecture ``body``."""
    return PriorNet(build(body, **dict(body_args or {})), HazePrior(prior_width, detail_gain, noise_target, noise_detail, air_tint),
                    train_prior)


@describer(PriorNet)
def _describe(net: PriorNet) -> NetDescriptor:
    # The body's needs, except that the prior reads the whole photo (receptive field unbounded
    # for a single pass; the engine applies the prior to the photo and tiles the body).
    return dataclasses.replace(describe(net.body), photo_prior=True)
