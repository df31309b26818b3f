"""Datasets for Uni-Removal: paired folders and public layouts, on-the-fly synthetic pairs,
unpaired real photos, kind-grouped batching and manifests.

Datasets return dicts with torch CHW float32 tensors in [0, 1]; use `collate_pairs` with a
DataLoader, `KindGroupedBatchSampler` for batches holding every kind, and `seed_worker` as
``worker_init_fn``.
"""
from __future__ import annotations

from .check import CheckReport, check_dataset
from .io import IMAGE_EXTS, UnreadableImage, list_images, read_image, to_tensor, write_png
from .layouts import LAYOUTS, find_pairs, gopro, input_target, pairs_from_list, rain13k, rain100, realblur, reside, spa
from .manifest import ManifestReport, build_manifest, verify_manifest, write_manifest
from .paired import Pair, PairedDataset, PairReport, match_by_name, size_mismatches
from .real import FOLDER_KINDS, RealPhotos
from .sampling import KindGroupedBatchSampler, collate_pairs, seed_worker
from .synthetic import SyntheticPairs, scan_clean


def paired_folder(input_dir, target_dir, kind: str = "unknown", **kwargs) -> PairedDataset:
    """A `PairedDataset` from two folders matched by name (unmatched files: ``.report``)."""
    rep = match_by_name(input_dir, target_dir, kind)
    ds = PairedDataset(rep.pairs, **kwargs)
    ds.report = rep  # type: ignore[attr-defined]
    return ds


def layout_dataset(root, layout: str = "auto", **kwargs) -> PairedDataset:
    """A `PairedDataset` from a public dataset layout under `root` (see `layouts`)."""
    rep = find_pairs(root, layout)
    ds = PairedDataset(rep.pairs, root=root, **kwargs)
    ds.report = rep  # type: ignore[attr-defined]
    return ds


__all__ = [
    "CheckReport", "FOLDER_KINDS", "IMAGE_EXTS", "KindGroupedBatchSampler", "LAYOUTS", "ManifestReport", "Pair",
    "PairReport", "PairedDataset", "RealPhotos", "SyntheticPairs", "UnreadableImage", "build_manifest",
    "check_dataset", "collate_pairs", "find_pairs", "gopro", "input_target", "layout_dataset", "list_images",
    "match_by_name", "paired_folder", "pairs_from_list", "rain100", "rain13k", "read_image", "realblur", "reside",
    "scan_clean", "seed_worker", "size_mismatches", "spa", "to_tensor", "verify_manifest", "write_manifest",
    "write_png",
]
