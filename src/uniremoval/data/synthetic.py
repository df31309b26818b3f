"""On-the-fly synthetic pairs from a folder of clean photos."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..degrade import PRIMARY_KINDS, REGISTRY, Registry, resize
from ..image_io import scan_images
from .io import check_image, read_image, to_tensor
from .manifest import ManifestMixin
from .transforms import pad_to, random_crop_box


def scan_clean(
    paths: Path | Sequence[Path], full: bool = True, recursive: bool = True
) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Split images into (readable, [(unreadable, reason)]); a folder is listed first.

    `full` decodes every image (catches truncated files); otherwise headers only. Folder
    entries the scanner skipped (link loops, broken links) are listed as unreadable too.
    """
    bad: list[tuple[Path, str]] = []
    if isinstance(paths, (str, Path)):
        files, bad = scan_images(Path(paths), recursive)
    else:
        files = [Path(p) for p in paths]
    good: list[Path] = []
    for f in files:
        reason = check_image(f, full)
        if reason is None:
            good.append(f)
        else:
            bad.append((f, reason))
    return good, bad


def _round_bits(a: np.ndarray, bits: int | None) -> np.ndarray:
    """``a`` rounded to ``bits`` bits per channel (None: unchanged), as a photo file stores it."""
    if not bits:
        return a
    q = float(2**bits - 1)
    return np.round(a * q) / q


class SyntheticPairs(Dataset, ManifestMixin):
    """Degraded/clean pairs made on the fly from clean photos.

    Item i has kind ``kinds[i % len(kinds)]``, so any run of ``len(kinds)`` consecutive
    indices holds every kind and `item_kinds` is known without reading images (see
    `KindGroupedBatchSampler`). Everything random about item i (which photo, crop, flip,
    degradation) comes from ``numpy.random.default_rng(seed + epoch * len(self) + i)``; that
    seed is in ``params["seed"]``, so items do not depend on worker count or order.

    Each crop is taken with a `margin` on every side, degraded, and the margin cut off, so
    blur and rain near the crop border see real image content (no padding artefacts).

    With `scales` = (lo, hi), each item draws a scale s log-uniformly in [lo, hi]: the crop
    (with its margin) is degraded at s times the output size, from a region of the photo that
    large (upsampled when the photo is smaller), and both images are then downsampled to the
    output size with the same Lanczos filter. The registry's ranges describe degradations at a
    full-resolution photo's size; s spreads them over the sizes they have in smaller or
    downscaled photos (a 65 px shake at s = 4 is a 16 px shake in the crop).

    With `whole` (or a `context` function), the WHOLE photo is degraded and the crop is cut
    from it, as a crop of a real photo is: haze density, airlight, non-uniform haze, the streak
    field and spatially varying blur belong to the scene, not to the crop. At scale s the
    photo is first upsampled just enough that an s x crop square fits (at most
    `max_whole_pixels`; a larger photo contributes a random window of that area), the crop
    square is cut and downsampled to `crop`; no margin is needed. ``context(degraded)``, given
    the whole degraded photo as a 3xHxW tensor, adds ``"context"`` to the item: what a network
    that reads the whole photo gets at inference (e.g. ``nets.thumbnail``). The data layer
    takes it as a function so it does not depend on the networks. A function with a true
    ``aligned`` attribute returns a map of the photo (C x H x W, values in [0, 1]; e.g. a
    photo prior's output), which is cut and resized exactly as the input is (with `bits`, it
    reads the photo rounded to that many bits, as the network would read the file).

    With `bits` (e.g. 8), both images are rounded to that many bits last, after any resize: the
    input then has the quantisation steps of the photo files the network restores.

    Unreadable files in the clean folder are skipped at construction and listed in
    ``self.skipped`` as ``(path, reason)``.

    Items: ``{"input", "target": 3xHxW float tensors in [0, 1], "kind": str,
    "kind_id": int, "name": str, "params": dict}``, plus ``"context"`` with a `context`
    function.
    """

    def __init__(
        self,
        clean: Path | Sequence[Path],
        kinds: Sequence[str] = PRIMARY_KINDS,
        crop: int | None = 128,
        seed: int = 0,
        length: int | None = None,
        hflip: bool = True,
        margin: int = 16,
        registry: Registry | None = None,
        full_check: bool = True,
        cache: bool = False,
        scales: tuple[float, float] | None = None,
        whole: bool = False,
        context: Callable[[torch.Tensor], torch.Tensor] | None = None,
        max_whole_pixels: int = 4_000_000,
        bits: int | None = None,
    ) -> None:
        self.registry = registry or REGISTRY
        self.kinds = tuple(kinds)
        if not self.kinds:
            raise ValueError("no kinds given")
        for k in self.kinds:
            self.registry.get(k)  # fail early on an unknown kind
        self.images, self.skipped = scan_clean(clean, full=full_check)
        if not self.images:
            raise ValueError(f"{clean}: no readable images")
        self.root = Path(clean) if isinstance(clean, (str, Path)) else Path(self.images[0]).parent
        self.crop = crop
        self.seed = int(seed)
        self.length = int(length) if length is not None else len(self.images) * len(self.kinds)
        self.hflip = hflip
        self.margin = int(margin)
        self.epoch = 0
        self.cache = cache
        self._cache: dict[int, np.ndarray] = {}
        if scales is not None:
            lo, hi = float(scales[0]), float(scales[1])
            if not 0 < lo <= hi:
                raise ValueError(f"scales must be 0 < lo <= hi, got {scales}")
            if crop is None:
                raise ValueError("scales need a crop size")
        self.scales = None if scales is None else (lo, hi)
        self.context = context
        self.whole = bool(whole) or context is not None
        if self.whole and crop is None:
            raise ValueError("whole-photo synthesis needs a crop size")
        self.max_whole_pixels = int(max_whole_pixels)
        if bits is not None and not 1 <= int(bits) <= 16:
            raise ValueError(f"bits must be 1..16 or None, got {bits}")
        self.bits = None if bits is None else int(bits)

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        """New crops/degradations for a new epoch (deterministic per epoch)."""
        self.epoch = int(epoch)

    def kind_of(self, index: int) -> str:
        """Kind of item `index` (no image is read)."""
        return self.kinds[index % len(self.kinds)]

    def item_kinds(self) -> list[str]:
        """Kind of every item."""
        return [self.kind_of(i) for i in range(len(self))]

    def files(self) -> list[Path]:
        """The clean images used."""
        return list(self.images)

    def _load(self, j: int) -> np.ndarray:
        if self.cache and j in self._cache:
            return self._cache[j]
        img = read_image(self.images[j])
        if self.cache:
            # uint8 keeps the per-worker cache at a quarter of the float size.
            self._cache[j] = img = (img * 255.0 + 0.5).astype(np.uint8).astype(np.float32) / 255.0
        return img

    def item_seed(self, index: int) -> int:
        """The seed of item `index` in the current epoch."""
        return self.seed + self.epoch * len(self) + index

    def _scaled_crop(self, img: np.ndarray, rng: np.random.Generator, info: dict[str, Any]) -> tuple[np.ndarray, int, int]:
        """The region to degrade at scale s (see the class docstring): (region, margin, output
        side with margin)."""
        assert self.crop is not None and self.scales is not None
        s = self._draw_scale(rng)
        out_side = self.crop + 2 * self.margin
        side = max(int(round(out_side * s)), out_side)
        region = min(side, *img.shape[:2])
        y, x = random_crop_box(rng, img.shape[0], img.shape[1], region)
        piece = img[y : y + region, x : x + region]
        if region != side:  # a photo smaller than the region: synthesise on it upsampled
            piece = np.clip(resize(piece, side, side), 0.0, 1.0)
        info.update(crop=[y, x, region], scale=round(s, 4), synth_size=side)
        return piece, self.margin, out_side

    def _draw_scale(self, rng: np.random.Generator) -> float:
        if self.scales is None:
            return 1.0
        lo, hi = self.scales
        return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))

    def _whole_source(self, img: np.ndarray, rng: np.random.Generator, info: dict[str, Any]) -> tuple[np.ndarray, int]:
        """The photo at the size its crop square (side s x crop) is cut from, and that side."""
        assert self.crop is not None
        s = self._draw_scale(rng)
        side = max(int(round(self.crop * s)), self.crop)
        h, w = img.shape[:2]
        u = max(1.0, side / min(h, w))
        # A photo too large to degrade whole at this scale: a random window of the cap's area.
        cap = max(self.max_whole_pixels, side * side)
        if h * w * u * u > cap:
            f = (cap / (h * w * u * u)) ** 0.5
            wh, ww = max(int(h * f), int(np.ceil(side / u))), max(int(w * f), int(np.ceil(side / u)))
            y, x = int(rng.integers(h - wh + 1)), int(rng.integers(w - ww + 1))
            img, h, w = img[y : y + wh, x : x + ww], wh, ww
            info["window"] = [y, x, wh, ww]
        if u > 1.0:
            img = np.clip(resize(img, max(side, int(round(h * u))), max(side, int(round(w * u)))), 0.0, 1.0)
        info.update(scale=round(s, 4), synth_size=list(img.shape[:2]))
        return img, side

    def _whole_item(self, img: np.ndarray, kind: str, rng: np.random.Generator, info: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, dict[str, Any], torch.Tensor | None]:
        """Degrade the whole photo, then cut the crop: (clean, degraded, record, context)."""
        assert self.crop is not None
        img, side = self._whole_source(img, rng, info)
        if self.hflip and rng.random() < 0.5:
            img = img[:, ::-1]
            info["hflip"] = True
        img = np.ascontiguousarray(img)
        degraded, record = self.registry.synthesize(img, kind, rng)
        ctx = full = None
        if getattr(self.context, "aligned", False):
            # What the network reads at inference is the photo file: quantised, not float.
            full = self.context(to_tensor(_round_bits(degraded, self.bits))).numpy().transpose(1, 2, 0)  # type: ignore[misc]
        elif self.context is not None:
            ctx = self.context(to_tensor(degraded))
        y, x = random_crop_box(rng, img.shape[0], img.shape[1], side)
        img, degraded = img[y : y + side, x : x + side], degraded[y : y + side, x : x + side]
        if full is not None:
            full = full[y : y + side, x : x + side]
        if side != self.crop:
            img = np.clip(resize(img, self.crop, self.crop), 0.0, 1.0)
            degraded = np.clip(resize(degraded, self.crop, self.crop), 0.0, 1.0)
            if full is not None:
                full = np.clip(resize(full, self.crop, self.crop), 0.0, 1.0)
        if full is not None:
            ctx = to_tensor(full)
        info["crop"] = [y, x, side]
        return img, degraded, record, ctx

    def _crop_item(self, img: np.ndarray, kind: str, rng: np.random.Generator, info: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """Degrade the crop (with its margin) alone: (clean, degraded, record)."""
        m, out_side = 0, None
        if self.crop is not None and self.scales is not None:
            img, m, out_side = self._scaled_crop(img, rng, info)
        elif self.crop is not None:
            size = self.crop
            # Use the margin only as far as the photo allows; the rest is reflect padding.
            m = max(min(self.margin, (min(img.shape[:2]) - size) // 2), 0)
            big = pad_to(img, size + 2 * m, size + 2 * m)
            y, x = random_crop_box(rng, big.shape[0], big.shape[1], size + 2 * m)
            img = big[y : y + size + 2 * m, x : x + size + 2 * m]
            info["crop"] = [y + m, x + m, size]
        if self.hflip and rng.random() < 0.5:
            img = img[:, ::-1]
            info["hflip"] = True
        img = np.ascontiguousarray(img)
        degraded, record = self.registry.synthesize(img, kind, rng)
        if out_side is not None and img.shape[0] != out_side:
            img = np.clip(resize(img, out_side, out_side), 0.0, 1.0)
            degraded = np.clip(resize(degraded, out_side, out_side), 0.0, 1.0)
        if m:
            img, degraded = img[m:-m, m:-m], degraded[m:-m, m:-m]
        return img, degraded, record

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        kind = self.kind_of(index)
        seed = self.item_seed(index)
        rng = np.random.default_rng(seed)
        j = int(rng.integers(len(self.images)))
        info: dict[str, Any] = {"source": self.images[j].name}
        ctx = None
        if self.whole:
            info["whole"] = True
            img, degraded, record, ctx = self._whole_item(self._load(j), kind, rng, info)
        else:
            img, degraded, record = self._crop_item(self._load(j), kind, rng, info)
        if self.bits:
            # A photo reaches the network as an 8-bit file; a pair resized from its synthesis
            # size is float, so without this the network never sees quantisation steps, which
            # a dense-haze sky's few levels are made of (and which it then amplifies).
            img, degraded = _round_bits(img, self.bits), _round_bits(degraded, self.bits)
            info["bits"] = self.bits
        record["seed"] = seed
        record.update(info)
        item = {
            "input": to_tensor(degraded),
            "target": to_tensor(img),
            "kind": kind,
            "kind_id": self.kinds.index(kind),
            "name": f"{self.images[j].stem}_{index}",
            "params": record,
        }
        if ctx is not None:
            item["context"] = ctx
        return item
