"""Stage 2's data: unpaired real photos, clean photos and synthetic replay pairs, drawn as
triplets (:class:`AdaptItems`), plus the synthetic and real validation sets and the validation."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from ..degrade import PRIMARY_KINDS
from ..metrics import psnr
from ..train.config import ConfigError
from ..train.trainer import Trainer, ValResult
from .adapt_losses import Frozen
from .common import StageDataConfig, degrade_registry, fixed_items, need_dir, restore, spread_indices


@dataclass
class AdaptDataConfig(StageDataConfig):
    """Unpaired real photos, clean photos, synthetic replay and validation sets; a step sees
    ``triplets_per_step`` triplets of (real crop, clean crop, synthetic pair)."""

    #: Real degraded photos; top subfolders hazy/rain/blur give the kind, others are unknown.
    real_dir: str | None = None
    #: Keep only real photos of these kinds (haze, rain, blur, unknown); empty: all.
    real_kinds: list[str] = field(default_factory=list)
    #: Clean photos degraded on the fly for the replay batch (default: clean_dir, which also
    #: gives the discriminator's "real" class and the clean prototypes).
    synthetic_dir: str | None = None
    #: Held-out real photos scored with NIQE in validation (optional; costs ~0.1 s a photo).
    real_val_dir: str | None = None
    #: Kinds of the replayed synthetic pairs.
    kinds: list[str] = field(default_factory=lambda: list(PRIMARY_KINDS))
    #: Triplets per optimiser step over all processes: each is one real crop, one clean crop
    #: and one synthetic pair, so a step sees this many crops of each (3x as many images).
    triplets_per_step: int = 4
    val_count: int = 12
    val_crop: int = 128
    real_val_count: int = 6
    real_val_crop: int = 256
    #: Triplets per epoch (each draws a random real, clean and synthetic crop).
    epoch_size: int = 4000

    RENAMED: ClassVar[dict[str, str]] = {"batch_size": "triplets_per_step"}

    @property
    def batch_size(self) -> int:
        """Old name of :attr:`triplets_per_step`."""
        return self.triplets_per_step

    def validate(self, where: str) -> None:
        self.check(where, "triplets_per_step", min_crop=32)


class AdaptItems(Dataset):
    """One item = a random real crop, a random clean crop and a random synthetic pair.

    Which photo of each set, its crop and its degradation are a function of (seed, epoch,
    index), like every dataset here, so the stage resumes exactly and worker count does not
    matter. Keys: ``real``, ``real_kind``, ``real_name``, ``clean``, ``syn_input``,
    ``syn_target``, ``syn_kind``.
    """

    def __init__(self, real: Dataset, clean: Dataset, synthetic: Dataset, length: int, seed: int) -> None:
        self.real, self.clean, self.synthetic = real, clean, synthetic
        self.length, self.seed, self.epoch = int(length), int(seed), 0

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _draw(self, ds: Any, rng: np.random.Generator, index: int) -> dict[str, Any]:
        # Give the sub-dataset a fresh "epoch" per (epoch, index): its crop/flip seed is then
        # unique even when the same photo is drawn many times in one epoch.
        ds.set_epoch(self.epoch * self.length + index)
        return ds[int(rng.integers(len(ds)))]

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        r = self._draw(self.real, rng, index)
        c = self._draw(self.clean, rng, index)
        s = self._draw(self.synthetic, rng, index)
        out = {
            "real": r["input"], "real_kind": r["kind"], "real_name": r["name"],
            "clean": c["input"],
            "syn_input": s["input"], "syn_target": s["target"], "syn_kind": s["kind"],
        }
        if "context" in r and "context" in s:  # whole-photo thumbnails for a context student
            out.update(real_context=r["context"], syn_context=s["context"])
        return out


def _real_val(d: AdaptDataConfig, context: Any = None) -> list[dict[str, Any]]:
    """Held-out real photos, centre-cropped (keeps NIQE cheap and sizes a multiple of 16);
    with ``context``, each keeps its whole photo's context (an aligned one cut with the photo)."""
    from .. import data as D

    if not (d.real_val_dir and d.real_val_count):
        return []
    rv = D.RealPhotos(need_dir(d.real_val_dir, "data.real_val_dir"), crop=None, full_check=False, include=d.real_kinds or None, context=context)
    out = []
    for i in spread_indices(len(rv), d.real_val_count):
        it = rv[i]
        x, c = it["input"], d.real_val_crop
        h, w = x.shape[-2:]
        ch, cw = min(c, h) // 16 * 16, min(c, w) // 16 * 16
        y0, x0 = (h - ch) // 2, (w - cw) // 2
        ctx = it.get("context")
        if ctx is not None and getattr(context, "aligned", False):
            ctx = ctx[:, y0 : y0 + ch, x0 : x0 + cw]  # a map of the photo: cut with it
        out.append({"input": x[:, y0 : y0 + ch, x0 : x0 + cw], "kind": it["kind"], "name": it["name"], **({"context": ctx} if ctx is not None else {})})
    return out


def build_adapt_data(d: AdaptDataConfig, seed: int, context_size: int | None = None, prior: nn.Module | None = None) -> tuple[Dataset, list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """Training triplets, synthetic validation pairs, held-out real photos, provenance.
    ``context_size`` (the student's descriptor): every crop also carries its whole photo's
    thumbnail; ``prior`` (:func:`~.common.training_prior`): its photo prior's output."""
    from .. import data as D

    real_dir = need_dir(d.real_dir, "data.real_dir (--real)")
    clean_dir = need_dir(d.clean_dir, "data.clean_dir (--clean)")
    syn_dir = need_dir(d.synthetic_dir or d.clean_dir, "data.synthetic_dir")
    reg = degrade_registry(d.degrade)
    synthesis = d.synthesis(context_size, prior)
    real = D.RealPhotos(real_dir, crop=d.crop, seed=seed, hflip=True, full_check=False, include=d.real_kinds or None, context=synthesis["context"])
    if len(real) == 0:
        raise ConfigError(f"data.real_dir {real_dir}: no readable photos")
    clean = D.RealPhotos(clean_dir, crop=d.crop, seed=seed + 1, hflip=True, full_check=False)
    if len(clean) == 0:
        raise ConfigError(f"data.clean_dir {clean_dir}: no readable photos")
    syn = D.SyntheticPairs(syn_dir, kinds=d.kinds, crop=d.crop, seed=seed + 2, registry=reg, full_check=False, scales=d.train_scales(), **synthesis)
    items = AdaptItems(real, clean, syn, d.epoch_size, seed)
    val: list[dict[str, Any]] = []
    if d.val_dir and d.val_count:
        vs = D.SyntheticPairs(need_dir(d.val_dir, "data.val_dir"), kinds=d.kinds, crop=d.val_crop, seed=d.val_seed, hflip=False, registry=reg, **synthesis)
        val = [dict(it, kind=vs.kind_of(i)) for i, it in zip(spread_indices(len(vs), d.val_count), fixed_items(vs, d.val_count))]
    desc = {
        "real_dir": str(real_dir), "real_photos": len(real), "real_kinds": {k: real.item_kinds().count(k) for k in sorted(set(real.item_kinds()))},
        "clean_dir": str(clean_dir), "clean_photos": len(clean), "synthetic_dir": str(syn_dir), "kinds": d.kinds,
        "val_dir": d.val_dir, "real_val_dir": d.real_val_dir, "whole_photo": synthesis["whole"],
    }
    return items, val, _real_val(d, synthesis["context"]), desc


def make_val_fn(val: Sequence[Mapping[str, Any]], real_val: Sequence[Mapping[str, Any]], frozen: Frozen, n_samples: int):  # type: ignore[no-untyped-def]
    """Validation: synthetic PSNR (overall and per kind) of the EMA student and of the initial
    student (computed once: the forgetting budget is psnr - psnr_init >= -0.3 dB), and NIQE on
    held-out real photos (with the initial student's NIQE for comparison)."""
    cache: dict[str, float] = {}

    def fwd(net: nn.Module, x: torch.Tensor, tr: Trainer, ctx: torch.Tensor | None = None) -> torch.Tensor:
        return restore(net, x.unsqueeze(0).to(tr.device), tr.autocast, None if ctx is None else ctx.reshape(-1, *ctx.shape[-3:]).to(tr.device))

    def val_fn(tr: Trainer) -> ValResult:
        from ..metrics import niqe

        net = tr.eval_module("student")
        metrics: dict[str, float] = {}
        images: dict[str, torch.Tensor] = {}
        if val:
            per: dict[str, list[float]] = {}
            per0: dict[str, list[float]] = {}
            for it in val:
                y = it["target"].unsqueeze(0).to(tr.device)
                c = it.get("context")
                per.setdefault(it["kind"], []).append(float(psnr(fwd(net, it["input"], tr, c), y)[0]))
                if "psnr_init" not in cache:
                    per0.setdefault(it["kind"], []).append(float(psnr(fwd(frozen.student0, it["input"], tr, c), y)[0]))
            allv = [v for vs in per.values() for v in vs]
            metrics["psnr"] = sum(allv) / len(allv)
            for k, vs in per.items():
                metrics[f"psnr_{k}"] = sum(vs) / len(vs)
            if "psnr_init" not in cache:
                all0 = [v for vs in per0.values() for v in vs]
                cache["psnr_init"] = sum(all0) / len(all0)
            metrics["psnr_init"] = cache["psnr_init"]
        if real_val:
            scores, scores0 = [], []
            for i, it in enumerate(real_val):
                c = it.get("context")
                out = fwd(net, it["input"], tr, c)
                scores.append(float(niqe(out[0].cpu())))
                if "niqe_init" not in cache:
                    scores0.append(float(niqe(fwd(frozen.student0, it["input"], tr, c)[0].cpu())))
                if i < n_samples:
                    images[f"real_{i}_input_init_adapted"] = torch.cat([it["input"].to(tr.device), fwd(frozen.student0, it["input"], tr, c)[0], out[0]], dim=-1).cpu()
            fin = [s for s in scores if np.isfinite(s)]
            metrics["niqe"] = float(np.mean(fin)) if fin else float("nan")
            if "niqe_init" not in cache:
                fin0 = [s for s in scores0 if np.isfinite(s)]
                cache["niqe_init"] = float(np.mean(fin0)) if fin0 else float("nan")
            metrics["niqe_init"] = cache["niqe_init"]
        return ValResult(metrics, images)

    return val_fn
