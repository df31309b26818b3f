"""Paired folders: (degraded input, clean target) files matched by name."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from torch.utils.data import Dataset

from ..degrade import PRIMARY_KINDS
from .io import image_size, list_images, read_image, to_tensor, UnreadableImage
from .manifest import ManifestMixin
from .transforms import crop_pair


@dataclass(frozen=True)
class Pair:
    """One training/test pair. `kind` is the degradation ("haze", "rain", "blur", ...)."""

    input: Path
    target: Path
    kind: str = "unknown"
    name: str = ""


@dataclass
class PairReport:
    """Pairs found by a layout reader plus the files that found no partner."""

    pairs: list[Pair] = field(default_factory=list)
    unmatched_inputs: list[Path] = field(default_factory=list)
    unmatched_targets: list[Path] = field(default_factory=list)
    layout: str = ""

    def extend(self, other: "PairReport") -> None:
        self.pairs += other.pairs
        self.unmatched_inputs += other.unmatched_inputs
        self.unmatched_targets += other.unmatched_targets

    @property
    def problems(self) -> int:
        return len(self.unmatched_inputs) + len(self.unmatched_targets)


def _key_default(rel: str) -> str:
    return rel


def match_by_name(
    input_dir: Path,
    target_dir: Path,
    kind: str = "unknown",
    input_key: Callable[[str], str] = _key_default,
    target_key: Callable[[str], str] = _key_default,
    recursive: bool = True,
) -> PairReport:
    """Pair files of `input_dir` and `target_dir` whose keys match.

    The key of a file is its path relative to its folder, without extension, passed through
    `input_key`/`target_key` (e.g. RESIDE's ``1_1_0.90179`` -> ``1``). Several inputs may
    share one target (RESIDE has ten hazy images per clear one). Names are matched without
    extension so ``x.jpg`` pairs with ``x.png``.
    """
    input_dir, target_dir = Path(input_dir), Path(target_dir)
    targets: dict[str, Path] = {}
    for t in list_images(target_dir, recursive):
        targets.setdefault(target_key(t.relative_to(target_dir).with_suffix("").as_posix()), t)
    rep = PairReport()
    used: set[str] = set()
    for i in list_images(input_dir, recursive):
        rel = i.relative_to(input_dir).with_suffix("").as_posix()
        k = input_key(rel)
        if k in targets:
            rep.pairs.append(Pair(i, targets[k], kind, rel))
            used.add(k)
        else:
            rep.unmatched_inputs.append(i)
    rep.unmatched_targets = [p for k, p in sorted(targets.items()) if k not in used]
    return rep


class PairedDataset(Dataset, ManifestMixin):
    """A `Dataset` over `Pair`s; items are dicts::

        {"input": 3xHxW float tensor, "target": 3xHxW float tensor, "kind": str,
         "kind_id": int (index in `kinds`, -1 if absent), "name": str, "params": dict}

    Randomness (crops, flips) comes from ``numpy.random.default_rng(seed + epoch*len + i)``
    so item i is the same whatever the worker count or order; call `set_epoch` each epoch.
    """

    def __init__(
        self,
        pairs: Sequence[Pair],
        crop: int | None = None,
        hflip: bool = False,
        seed: int = 0,
        kinds: Sequence[str] = PRIMARY_KINDS,
        root: Path | None = None,
    ) -> None:
        self.pairs = list(pairs)
        self.crop = crop
        self.hflip = hflip
        self.seed = int(seed)
        self.kinds = tuple(kinds)
        self.epoch = 0
        paths = [str(p.input) for p in self.pairs] + [str(p.target) for p in self.pairs]
        self.root = Path(root) if root is not None else Path(os.path.commonpath(paths) if paths else ".")
        if self.root.is_file():
            self.root = self.root.parent

    def set_epoch(self, epoch: int) -> None:
        """Change the random crops/flips for a new epoch (deterministically)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.pairs)

    def item_kinds(self) -> list[str]:
        """The kind of every item, without reading any image (for batch samplers)."""
        return [p.kind for p in self.pairs]

    def files(self) -> list[Path]:
        """Every file this dataset reads (inputs and targets, each once)."""
        return sorted({p.input for p in self.pairs} | {p.target for p in self.pairs})

    def __getitem__(self, index: int) -> dict[str, Any]:
        pair = self.pairs[index]
        a, b = read_image(pair.input), read_image(pair.target)
        if a.shape != b.shape:
            raise UnreadableImage(f"{pair.input}: size {a.shape[:2]} differs from its target {pair.target} {b.shape[:2]}")
        item_seed = self.seed + self.epoch * len(self) + index
        rng = np.random.default_rng(item_seed)
        a, b, info = crop_pair(rng, a, b, self.crop, self.hflip)
        return {
            "input": to_tensor(a),
            "target": to_tensor(b),
            "kind": pair.kind,
            "kind_id": self.kinds.index(pair.kind) if pair.kind in self.kinds else -1,
            "name": pair.name or pair.input.stem,
            "params": {"seed": item_seed, **info},
        }


def size_mismatches(pairs: Sequence[Pair]) -> list[tuple[Pair, str]]:
    """Pairs whose input and target sizes differ (or that cannot be read), with a reason.

    Reads headers only, so it is fast even for large sets.
    """
    out: list[tuple[Pair, str]] = []
    for p in pairs:
        try:
            si, st = image_size(p.input), image_size(p.target)
        except UnreadableImage as e:
            out.append((p, str(e)))
            continue
        if si != st:
            out.append((p, f"input {si[1]}x{si[0]} vs target {st[1]}x{st[0]}"))
    return out
