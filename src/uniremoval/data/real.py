"""Unpaired real degraded photos, labelled by subfolder (``hazy/``, ``rain/``, ``blur/``) or not."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..degrade import PRIMARY_KINDS
from .io import to_tensor, read_image
from .manifest import ManifestMixin
from .synthetic import scan_clean
from .transforms import pad_to, random_crop_box

#: Subfolder name (lower case) -> kind.
FOLDER_KINDS: dict[str, str] = {
    "hazy": "haze", "haze": "haze", "foggy": "haze", "fog": "haze",
    "rain": "rain", "rainy": "rain",
    "blur": "blur", "blurry": "blur", "blurred": "blur",
    "noise": "noise", "noisy": "noise",
    "clean": "clean", "clear": "clean", "sharp": "clean",
}


class RealPhotos(Dataset, ManifestMixin):
    """Real photos without ground truth.

    Images in a top-level subfolder named in `FOLDER_KINDS` get that kind; all others (and
    every image when there are no such subfolders) are ``"unknown"`` with ``kind_id`` -1.
    Unreadable files are skipped and listed in ``self.skipped``. Items:
    ``{"input": 3xHxW tensor, "kind": str, "kind_id": int, "name": str, "params": dict}``.
    Without `crop`, images keep their size (use batch size 1 or a custom collate).
    ``context(photo)``, given the whole (flipped with the crop) photo as a 3xHxW tensor, adds
    ``"context"``: what a network that reads the whole photo gets (see ``SyntheticPairs``; an
    ``aligned`` context's map of the photo is cut and flipped with the crop).
    """

    def __init__(
        self,
        root: Path,
        crop: int | None = None,
        seed: int = 0,
        hflip: bool = False,
        kinds: Sequence[str] = PRIMARY_KINDS,
        include: Sequence[str] | None = None,
        full_check: bool = False,
        context: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.root = Path(root)
        good, self.skipped = scan_clean(self.root, full=full_check)
        self.kinds = tuple(kinds)
        self.items: list[tuple[Path, str]] = []
        for p in good:
            rel = p.relative_to(self.root).parts
            kind = FOLDER_KINDS.get(rel[0].lower(), "unknown") if len(rel) > 1 else "unknown"
            if include is None or kind in include:
                self.items.append((p, kind))
        self.crop = crop
        self.seed = int(seed)
        self.hflip = hflip
        self.context = context
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.items)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def item_kinds(self) -> list[str]:
        return [k for _, k in self.items]

    def files(self) -> list[Path]:
        return [p for p, _ in self.items]

    def __getitem__(self, index: int) -> dict[str, Any]:
        path, kind = self.items[index]
        seed = self.seed + self.epoch * len(self) + index
        rng = np.random.default_rng(seed)
        img = whole = read_image(path)
        aligned = self.context is not None and bool(getattr(self.context, "aligned", False))
        # An aligned context is a map of the photo, cut and flipped with the crop.
        full = self.context(to_tensor(whole)).numpy().transpose(1, 2, 0) if aligned else None  # type: ignore[misc]
        params: dict[str, Any] = {"seed": seed}
        if self.crop is not None:
            img = pad_to(img, self.crop, self.crop)
            y, x = random_crop_box(rng, img.shape[0], img.shape[1], self.crop)
            img = img[y : y + self.crop, x : x + self.crop]
            if full is not None:
                full = pad_to(full, self.crop, self.crop)[y : y + self.crop, x : x + self.crop]
            params["crop"] = [y, x, self.crop]
        if self.hflip and rng.random() < 0.5:
            img, whole = img[:, ::-1], whole[:, ::-1]
            full = None if full is None else full[:, ::-1]
            params["hflip"] = True
        item = {
            "input": to_tensor(np.ascontiguousarray(img)),
            "kind": kind,
            "kind_id": self.kinds.index(kind) if kind in self.kinds else -1,
            "name": path.relative_to(self.root).with_suffix("").as_posix(),
            "params": params,
        }
        if full is not None:
            item["context"] = to_tensor(np.ascontiguousarray(full))
        elif self.context is not None:
            item["context"] = self.context(to_tensor(np.ascontiguousarray(whole)))
        return item
