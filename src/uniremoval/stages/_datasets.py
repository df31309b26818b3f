"""Glue between stage configs and the dataset classes of :mod:`uniremoval.data`."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from torch.utils.data import Dataset

from ..train.config import ConfigError

if TYPE_CHECKING:
    from .teacher import TeacherConfig


def _registry(degrade_cfg: dict[str, Any]) -> Any:
    from ..degrade import REGISTRY, Registry

    return Registry.from_config(degrade_cfg) if degrade_cfg else REGISTRY


def _val_items(ds: Dataset, count: int) -> list[dict[str, Any]]:
    """The first ``count`` items of a fixed-seed dataset, spread over it evenly."""
    n = len(ds)  # type: ignore[arg-type]
    count = min(count, n)
    idx = [round(i * n / count) for i in range(count)] if count else []
    return [{"input": it["input"], "target": it["target"], "name": it.get("name", str(i))} for i, it in ((i, ds[i]) for i in idx)]


def build_teacher_datasets(cfg: "TeacherConfig") -> tuple[Dataset, Sequence[dict[str, Any]], Any]:
    """Training dataset, fixed validation items, and a provenance description.

    synthetic: ``SyntheticPairs`` of ``cfg.kind`` made from ``data.clean_dir`` (validation: the
    same synthesis with ``data.val_seed`` on ``data.val_dir``, centre-ish crops of
    ``data.val_crop``). paired: ``layout_dataset`` of ``data.paired_dir`` (auto layout) keeping
    pairs of ``cfg.kind`` when kinds are known; validation from ``data.val_dir`` the same way.
    """
    from .. import data as D

    d = cfg.data
    if d.source == "synthetic":
        if not d.clean_dir:
            raise ConfigError("data.clean_dir is required for synthetic pairs (e.g. --set data.clean_dir=PATH)")
        if not Path(d.clean_dir).expanduser().is_dir():
            raise ConfigError(f"data.clean_dir {d.clean_dir}: not a folder")
        reg = _registry(d.degrade)
        train = D.SyntheticPairs(Path(d.clean_dir).expanduser(), kinds=[cfg.kind], crop=d.crop, seed=cfg.run.seed, length=d.epoch_size, registry=reg)
        val: list[dict[str, Any]] = []
        if d.val_dir and d.val_count:
            vs = D.SyntheticPairs(Path(d.val_dir).expanduser(), kinds=[cfg.kind], crop=d.val_crop, seed=d.val_seed, hflip=False, registry=reg)
            val = _val_items(vs, d.val_count)
        desc = {"source": "synthetic", "kind": cfg.kind, "clean_dir": d.clean_dir, "images": len(train.images), "val_dir": d.val_dir, "degrade": d.degrade}
        return train, val, desc
    if not d.paired_dir:
        raise ConfigError("data.paired_dir is required for paired data")
    root = Path(d.paired_dir).expanduser()
    pairs = [p for p in D.find_pairs(root).pairs if p.kind in (cfg.kind, "unknown")]
    if not pairs:
        raise ConfigError(f"data.paired_dir {root}: no pairs of kind {cfg.kind!r}")
    train = D.PairedDataset(pairs, crop=d.crop, hflip=True, seed=cfg.run.seed, root=root)
    val = []
    if d.val_dir and d.val_count:
        vrep = D.find_pairs(Path(d.val_dir).expanduser())
        vpairs = [p for p in vrep.pairs if p.kind in (cfg.kind, "unknown")]
        val = _val_items(D.PairedDataset(vpairs, crop=d.val_crop, seed=d.val_seed), d.val_count)
    return train, val, {"source": "paired", "kind": cfg.kind, "paired_dir": d.paired_dir, "pairs": len(pairs), "val_dir": d.val_dir}
