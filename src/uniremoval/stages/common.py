"""What the training stages share: the data section's common fields (and the unit of their
batch), degradation registry, fixed validation items, padding, and the PSNR/SSIM loop.

Every stage's ``data`` section is a subclass of :class:`StageDataConfig`, which holds the
fields they all have (clean photos, validation set, crops, workers, epoch length,
degradation config). Each stage adds the field that sizes its batch, named after its unit:
``images_per_step`` (teacher, transfer) or ``triplets_per_step`` (adapt). The old name
``batch_size`` is still read (YAML files, ``--set``, saved run configs) and exposed as a
read-only property.
"""
from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Sequence

import torch
from torch import nn
from torch.utils.data import Dataset

from .. import nets
from ..metrics import psnr, ssim
from ..train.config import ConfigError

Autocast = Callable[[], contextlib.AbstractContextManager[Any]]


@dataclass
class StageDataConfig:
    """The data fields every stage has; subclasses add the field sizing their batch."""

    #: Clean photos degraded on the fly into synthetic pairs.
    clean_dir: str | None = None
    #: Clean photos of the fixed synthetic validation set (degraded with ``val_seed``).
    val_dir: str | None = None
    #: Training crop side in pixels.
    crop: int = 128
    #: Data-loader worker processes per training process.
    workers: int = 2
    #: Size of the fixed validation set and the side of its crops.
    val_count: int = 16
    val_crop: int = 256
    val_seed: int = 12345
    #: Epoch length in dataset items (crops and degradations are drawn anew every epoch).
    epoch_size: int = 10000
    #: Optional degradation config for ``uniremoval.degrade`` (kind ranges, new kinds,
    #: ``preset: r6`` for release 6's ranges).
    degrade: dict[str, Any] = field(default_factory=dict)
    #: ``[lo, hi]``: training pairs are degraded at a scale drawn log-uniformly from it and
    #: downsampled to ``crop``, so degradations the size a full-resolution photo has them are
    #: in range (null: at the crop's own scale). Validation sets stay at scale 1.
    scales: list[float] | None = None
    #: Degrade the whole photo and cut the crop from it (the scene's haze, streak field and
    #: blur, as in a real photo) instead of degrading the crop alone. null: on exactly when the
    #: network reads the whole photo (it then gets that photo's thumbnail with every crop);
    #: set it true to give a network without context the same data (equal-data ablations).
    whole_photo: bool | None = None
    #: Round both images of every pair to this many bits after the last resize (8: the input
    #: a photo file gives at inference; null: float, as synthesised and resized).
    bits: int | None = None
    #: What a network with a photo prior (``haze-prior``) reads in training, with whole-photo
    #: synthesis: ``photo`` (the default), the prior runs on each crop's whole degraded photo
    #: and the crop of its output goes to the body, as the engine does at inference; ``crop``,
    #: the prior reads the crop alone (before 2026-12-07; +0.9 dB worse prior outputs on r7
    #: haze crops at scales 1-4, so the body learned to fix errors users never get).
    prior_reads: str = "photo"

    #: Old key -> current field; :func:`~uniremoval.train.config.from_dict` reads the old one.
    RENAMED: ClassVar[dict[str, str]] = {}

    def check(self, where: str, unit: str, min_crop: int = 8) -> None:
        """The checks every stage makes; ``unit`` names the field that sizes the batch."""
        if getattr(self, unit) < 1:
            raise ConfigError(f"{where}.{unit}: must be at least 1")
        if self.crop < min_crop:
            raise ConfigError(f"{where}.crop: must be at least {min_crop}")
        if self.val_count < 0 or self.epoch_size < 1:
            raise ConfigError(f"{where}: val_count >= 0 and epoch_size >= 1 required")
        if self.scales is not None:
            ok = isinstance(self.scales, (list, tuple)) and len(self.scales) == 2
            if not ok or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in self.scales) or not 1 <= self.scales[0] <= self.scales[1] <= 8:
                raise ConfigError(f"{where}.scales: give [lo, hi] with 1 <= lo <= hi <= 8, or null")
        if self.bits is not None and (isinstance(self.bits, bool) or not isinstance(self.bits, int) or not 1 <= self.bits <= 16):
            raise ConfigError(f"{where}.bits: give 1..16 (8 for photo files), or null")
        if self.prior_reads not in ("photo", "crop"):
            raise ConfigError(f"{where}.prior_reads: give photo or crop, not {self.prior_reads!r}")

    def synthesis(self, context_size: int | None, prior: nn.Module | None = None) -> dict[str, Any]:
        """``SyntheticPairs`` keywords for a network whose descriptor has ``context_size``:
        whole-photo synthesis, and the thumbnail of each crop's whole degraded photo. For a
        network with a photo prior (``prior``, from :func:`training_prior`) and whole-photo
        synthesis, with ``prior_reads: photo``, each crop instead carries the crop of the
        prior's output on its whole degraded photo (the body's input at inference)."""
        ctx: Any = ThumbnailContext(context_size) if context_size is not None else None
        whole = ctx is not None if self.whole_photo is None else bool(self.whole_photo)
        if ctx is not None and not whole:
            raise ConfigError("data.whole_photo: false, but the network reads the whole photo (its context needs whole-photo synthesis)")
        if ctx is None and whole and prior is not None and self.prior_reads == "photo":
            ctx = PriorContext(prior)
        return {"whole": whole, "context": ctx, "bits": self.bits}

    def train_scales(self) -> tuple[float, float] | None:
        """``scales`` as ``SyntheticPairs`` takes it."""
        return (float(self.scales[0]), float(self.scales[1])) if self.scales else None


class ThumbnailContext:
    """The context a network reading the whole photo gets: ``nets.thumbnail`` of the whole
    (3, H, W) degraded photo, as (3, size, size). A class, not a closure, so data-loader worker
    processes can receive it."""

    def __init__(self, size: int) -> None:
        self.size = int(size)

    def __call__(self, photo: torch.Tensor) -> torch.Tensor:
        return nets.thumbnail(photo, self.size)[0]


class PriorContext:
    """The context a network with a photo prior gets in training: the prior's output on the
    whole (3, H, W) degraded photo, as the engine computes it (``apply_photo``), a map the data
    layer cuts and resizes with the crop (``aligned``). Without it the prior reads the crop
    alone, whose airlight and haze density differ from the photo's. Holds a frozen copy of the
    prior, so data-loader workers receive only it."""

    aligned = True

    def __init__(self, prior: nn.Module) -> None:
        self.prior = copy.deepcopy(prior).float().eval().requires_grad_(False)

    def __call__(self, photo: torch.Tensor) -> torch.Tensor:
        return self.prior.apply_photo(photo.float())  # type: ignore[no-any-return]


def training_prior(net: nn.Module) -> nn.Module | None:
    """The photo prior of ``net`` (descriptor ``photo_prior``) when it is frozen in training,
    else None (a trained prior changes under the data, so it reads each crop in the forward)."""
    inner = getattr(net, "module", net)
    if not nets.descriptor(net).photo_prior or getattr(inner, "train_prior", False):
        return None
    return getattr(inner, "prior", None)


def parse_teachers(spec: str | None) -> dict[str, str]:
    """``"haze=a.json,rain=b.json"`` (``--teachers``) -> ``{"haze": "a.json", "rain": "b.json"}``."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in (spec or "").split(","))):
        kind, sep, path = part.partition("=")
        if not sep or not kind.strip() or not path.strip():
            raise ConfigError(f"--teachers {part!r}: use kind=PATH[,kind=PATH...]")
        out[kind.strip()] = path.strip()
    return out


def degrade_registry(spec: Mapping[str, Any]) -> Any:
    """The degradation registry a ``data.degrade`` section describes (empty: the built-in one)."""
    from ..degrade import REGISTRY, Registry

    return Registry.from_config(dict(spec)) if spec else REGISTRY


def need_dir(value: str | None, key: str) -> Path:
    """``value`` as an existing folder, else a :class:`ConfigError` naming ``key``."""
    if not value:
        raise ConfigError(f"{key} is required")
    p = Path(value).expanduser()
    if not p.is_dir():
        raise ConfigError(f"{key} {value}: not a folder")
    return p


def spread_indices(n: int, count: int) -> list[int]:
    """``count`` indices spread evenly over ``range(n)`` (at most ``n``)."""
    count = min(count, n)
    return [round(i * n / count) for i in range(count)] if count else []


def fixed_items(ds: Dataset, count: int) -> list[dict[str, Any]]:
    """``count`` items of a fixed-seed dataset, spread over it evenly (the validation set)."""
    idx = spread_indices(len(ds), count)  # type: ignore[arg-type]
    keep = ("input", "target", "context")
    return [{**{k: it[k] for k in keep if k in it}, "name": it.get("name", str(i))} for i, it in ((i, ds[i]) for i in idx)]


def synthetic_val_sets(
    val_dir: str | Path, kinds: Sequence[str], count: int, crop: int, seed: int, registry: Any = None, synthesis: Mapping[str, Any] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """A fixed synthetic validation set: per kind, ``count`` pairs from ``val_dir`` (seeded)."""
    from .. import data as D

    out = {}
    for k in kinds:
        vs = D.SyntheticPairs(Path(val_dir).expanduser(), kinds=[k], crop=crop, seed=seed, hflip=False, registry=registry, **dict(synthesis or {}))
        out[k] = fixed_items(vs, count)
    return out


def pad_to(x: torch.Tensor, m: int) -> tuple[torch.Tensor, int, int]:
    """Reflect-pad ``x`` at the bottom/right to a multiple of ``m``; also its original size."""
    padded, (h, w) = nets.pad_to_multiple(x, m)
    return padded, h, w


def restore(net: nn.Module, x: torch.Tensor, autocast: Autocast | None = None, context: torch.Tensor | None = None) -> torch.Tensor:
    """``net`` on a (N, 3, H, W) batch of any size: padded to its size multiple, cropped back,
    float32 in [0, 1]. A network that reads the whole photo gets ``context`` (its thumbnail,
    :func:`uniremoval.nets.thumbnail`), else the thumbnail of unpadded ``x``, as the engine does;
    a network with a photo prior gets ``context`` (its prior's output for ``x``) when given."""
    desc = nets.descriptor(net)
    xp, h, w = pad_to(x, desc.size_multiple)
    kw = {}
    if desc.context_size is not None:
        kw["context"] = nets.thumbnail(x, desc.context_size) if context is None else context
    elif desc.photo_prior and context is not None:
        kw["context"] = pad_to(context, desc.size_multiple)[0]  # the prior's output, aligned with x
    with autocast() if autocast is not None else contextlib.nullcontext():
        out = net(xp, **kw)
    return out[..., :h, :w].float().clamp(0, 1)


@torch.no_grad()
def score_items(
    net: nn.Module, items: Sequence[Mapping[str, Any]], device: torch.device | str = "cpu", autocast: Autocast | None = None, keep: int = 0
) -> tuple[dict[str, float], list[torch.Tensor]]:
    """Mean PSNR/SSIM (RGB, no border crop) of ``net`` on pairs and of the inputs themselves,
    and ``input | output | target`` strips (CHW, on the CPU) of the first ``keep`` items."""
    po, so, pi, si = [], [], [], []
    strips: list[torch.Tensor] = []
    for i, item in enumerate(items):
        x = item["input"].unsqueeze(0).to(device)
        y = item["target"].unsqueeze(0).to(device)
        ctx = item.get("context")  # the whole photo's thumbnail, when the data supplies one
        o = restore(net, x, autocast, None if ctx is None else ctx.reshape(-1, *ctx.shape[-3:]).to(device))
        po.append(float(psnr(o, y)[0]))
        so.append(float(ssim(o, y)[0]))
        pi.append(float(psnr(x, y)[0]))
        si.append(float(ssim(x, y)[0]))
        if i < keep:
            strips.append(torch.cat([x[0], o[0], y[0]], dim=-1).cpu())
    k = max(1, len(po))
    return {"psnr": sum(po) / k, "ssim": sum(so) / k, "input_psnr": sum(pi) / k, "input_ssim": sum(si) / k}, strips


def evaluate_net(net: nn.Module, items: Sequence[Mapping[str, Any]], device: torch.device | str = "cpu", autocast: Autocast | None = None) -> dict[str, float]:
    """Mean PSNR/SSIM (RGB, no border crop) of ``net`` on pairs, and of the inputs themselves."""
    return score_items(net, items, device, autocast)[0]
