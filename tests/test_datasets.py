"""Tests for uniremoval.data: layout readers, paired/synthetic/real datasets, batching, manifests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from uniremoval.degrade import Registry
from uniremoval.data import (
    KindGroupedBatchSampler,
    PairedDataset,
    RealPhotos,
    SyntheticPairs,
    check_dataset,
    collate_pairs,
    find_pairs,
    paired_folder,
    read_image,
    seed_worker,
    verify_manifest,
    write_manifest,
)


def png(path: Path, size: tuple[int, int] = (24, 32), seed: int = 0) -> Path:
    """Write a tiny random RGB PNG of (h, w) = size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, size + (3,), dtype=np.uint8)
    Image.fromarray(arr).save(path)
    return path


def names(rep) -> set[tuple[str, str]]:
    return {(p.input.name, p.target.name) for p in rep.pairs}


# ---------------------------------------------------------------- layout readers


def test_reside_its_ots_sots(tmp_path: Path) -> None:
    its = tmp_path / "RESIDE" / "ITS"
    for n in ("1_1_0.90179.png", "1_2_0.82.png", "2_1_0.7.png", "3_1_0.7.png"):
        png(its / "hazy" / n)
    png(its / "clear" / "1.png"), png(its / "clear" / "2.png"), png(its / "clear" / "9.png")
    sots = tmp_path / "RESIDE" / "SOTS" / "outdoor"
    png(sots / "hazy" / "0001_0.8_0.2.jpg"), png(sots / "gt" / "0001.png")
    rep = find_pairs(tmp_path, "reside")
    assert names(rep) == {
        ("1_1_0.90179.png", "1.png"), ("1_2_0.82.png", "1.png"), ("2_1_0.7.png", "2.png"),
        ("0001_0.8_0.2.jpg", "0001.png"),
    }
    assert {p.kind for p in rep.pairs} == {"haze"}
    assert [p.name for p in rep.unmatched_inputs] == ["3_1_0.7.png"]
    assert [p.name for p in rep.unmatched_targets] == ["9.png"]
    assert find_pairs(tmp_path).layout == "reside"


def test_rain100_side_by_side_and_folders(tmp_path: Path) -> None:
    a = tmp_path / "Rain100L"
    png(a / "rain-001.png"), png(a / "norain-001.png"), png(a / "rain-002.png")
    b = tmp_path / "Rain100H"
    png(b / "rainy" / "rain-001.png"), png(b / "norain" / "norain-001.png")
    png(b / "rainy" / "7.png"), png(b / "norain" / "7.png")
    rep = find_pairs(tmp_path, "rain100")
    assert names(rep) == {("rain-001.png", "norain-001.png"), ("7.png", "7.png")} | {("rain-001.png", "norain-001.png")}
    assert len(rep.pairs) == 3
    assert [p.name for p in rep.unmatched_inputs] == ["rain-002.png"]
    assert {p.kind for p in rep.pairs} == {"rain"}


def test_rain13k_input_target(tmp_path: Path) -> None:
    root = tmp_path / "Rain13K"
    for n in ("a.jpg", "b.jpg"):
        png(root / "input" / n), png(root / "target" / n)
    png(root / "input" / "c.jpg")
    rep = find_pairs(tmp_path, "rain13k")
    assert names(rep) == {("a.jpg", "a.jpg"), ("b.jpg", "b.jpg")}
    assert len(rep.unmatched_inputs) == 1
    auto = find_pairs(tmp_path)  # generic input/target; the kind is guessed from "Rain13K"
    assert auto.layout == "input_target" and {p.kind for p in auto.pairs} == {"rain"}
    png(tmp_path / "GoPro" / "test" / "input" / "x.png"), png(tmp_path / "GoPro" / "test" / "target" / "x.png")
    kinds = {p.input.name: p.kind for p in find_pairs(tmp_path, "input_target").pairs}
    assert kinds == {"a.jpg": "rain", "b.jpg": "rain", "x.png": "blur"}


def test_gopro(tmp_path: Path) -> None:
    for seq in ("GOPR0372_07_00", "GOPR0374_11_00"):
        for n in ("000047.png", "000048.png"):
            png(tmp_path / "GOPRO_Large" / "train" / seq / "blur" / n)
            png(tmp_path / "GOPRO_Large" / "train" / seq / "sharp" / n)
            png(tmp_path / "GOPRO_Large" / "train" / seq / "blur_gamma" / n)
    rep = find_pairs(tmp_path)
    assert rep.layout == "gopro" and len(rep.pairs) == 4
    assert all(p.input.parent.name == "blur" and p.target.parent.name == "sharp" for p in rep.pairs)
    assert all(p.input.parent.parent == p.target.parent.parent for p in rep.pairs)


def test_realblur_folders_and_list(tmp_path: Path) -> None:
    root = tmp_path / "RealBlur-J_ECC_IMCORR_centroid_itensity_ref"
    for s in ("scene001", "scene002"):
        png(root / s / "blur" / "blur_1.png"), png(root / s / "gt" / "gt_1.png")
    rep = find_pairs(tmp_path, "realblur")
    assert names(rep) == {("blur_1.png", "gt_1.png")} and len(rep.pairs) == 2
    # With the official list file, the list decides (gt path first on each line).
    (tmp_path / "RealBlur_J_test_list.txt").write_text(
        f"{root.name}/scene001/gt/gt_1.png {root.name}/scene001/blur/blur_1.png\n"
        f"{root.name}/scene009/gt/gt_1.png {root.name}/scene009/blur/blur_1.png\n"
    )
    rep = find_pairs(tmp_path, "realblur")
    assert len(rep.pairs) == 1 and rep.pairs[0].input.name == "blur_1.png" and rep.pairs[0].target.name == "gt_1.png"
    assert len(rep.unmatched_targets) == 1  # scene009 is listed but missing


def test_spa_side_by_side_and_folders(tmp_path: Path) -> None:
    t = tmp_path / "SPA" / "real_test_1000"
    png(t / "00001rain.png"), png(t / "00001gt.png"), png(t / "00002_rain.png"), png(t / "00002_gt.png")
    png(t / "00003rain.png")
    w = tmp_path / "SPA" / "train"
    png(w / "real_world" / "000" / "000-0" / "000-0_1_1.png"), png(w / "real_world_gt" / "000" / "000-0" / "000-0_1_1.png")
    rep = find_pairs(tmp_path, "spa")
    assert names(rep) == {("00001rain.png", "00001gt.png"), ("00002_rain.png", "00002_gt.png"), ("000-0_1_1.png", "000-0_1_1.png")}
    assert [p.name for p in rep.unmatched_inputs] == ["00003rain.png"]


def test_unknown_layout_rejected(tmp_path: Path) -> None:
    with pytest.raises(KeyError):
        find_pairs(tmp_path, "nope")


# ---------------------------------------------------------------- paired datasets


def test_paired_folder_dataset_and_mismatch_report(tmp_path: Path) -> None:
    for i in range(3):
        png(tmp_path / "in" / f"{i}.png", seed=i), png(tmp_path / "gt" / f"{i}.png", seed=10 + i)
    png(tmp_path / "in" / "extra.png")
    ds = paired_folder(tmp_path / "in", tmp_path / "gt", kind="rain", crop=16, hflip=True, seed=3)
    assert len(ds) == 3 and [p.name for p in ds.report.unmatched_inputs] == ["extra.png"]
    it = ds[1]
    assert it["input"].shape == (3, 16, 16) and it["target"].shape == (3, 16, 16)
    assert it["kind"] == "rain" and it["kind_id"] == 1
    assert torch.equal(ds[1]["input"], it["input"])  # deterministic crop
    # The crop is taken at the same place in input and target.
    y, x, s = it["params"]["crop"]
    full = read_image(tmp_path / "gt" / "1.png")[y : y + s, x : x + s]
    if it["params"].get("hflip"):
        full = full[:, ::-1]
    assert np.allclose(it["target"].numpy().transpose(1, 2, 0), full)


def test_size_mismatch_and_unreadable_reported_by_check(tmp_path: Path) -> None:
    png(tmp_path / "input" / "a.png", (24, 32)), png(tmp_path / "target" / "a.png", (24, 32))
    png(tmp_path / "input" / "b.png", (24, 32)), png(tmp_path / "target" / "b.png", (20, 32))
    png(tmp_path / "input" / "c.png"), (tmp_path / "target" / "c.png").write_bytes(b"not a png")
    png(tmp_path / "input" / "d.png")
    rep = check_dataset(tmp_path)
    assert rep.layout == "input_target" and rep.pairs == 3
    assert [p.name for p, _ in rep.mismatched] == ["b.png"]
    assert [p.name for p, _ in rep.unreadable] == ["c.png"]
    assert [p.name for p, _ in rep.missing] == ["d.png"]


def test_datasets_decode_like_restore(tmp_path: Path) -> None:
    """One decoder: a float32 TIFF, a 16-bit PNG and an EXIF-rotated JPEG give datasets the
    pixels restore reads (grey expanded to RGB), and one extension set lists GIF and PPM."""
    import tifffile

    from uniremoval import image_io

    rng = np.random.default_rng(0)
    tifffile.imwrite(tmp_path / "f.tif", rng.random((6, 8, 3), dtype=np.float32), photometric="rgb")
    tifffile.imwrite(tmp_path / "g.tif", rng.random((6, 8), dtype=np.float32))
    im = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8))
    exif = im.getexif()
    exif[0x0112] = 6
    im.save(tmp_path / "r.jpg", exif=exif.tobytes())
    im.save(tmp_path / "p.ppm")
    im.save(tmp_path / "a.gif")
    from uniremoval.data.io import image_size, list_images

    assert [p.name for p in list_images(tmp_path)] == ["a.gif", "f.tif", "g.tif", "p.ppm", "r.jpg"]
    for p in list_images(tmp_path):
        ref = image_io.read_image(p).pixels
        got = read_image(p)
        assert got.shape == ref.shape[:2] + (3,) and np.array_equal(got, np.broadcast_to(ref, got.shape))
        assert image_size(p) == ref.shape[:2]


def test_check_reports_link_loops_instead_of_raising(tmp_path: Path) -> None:
    png(tmp_path / "ok.png")
    (tmp_path / "a.png").symlink_to("b.png")
    (tmp_path / "b.png").symlink_to("a.png")
    rep = check_dataset(tmp_path)
    assert rep.layout == "clean" and rep.images == 1
    assert [(p.name, r) for p, r in rep.unreadable] == [("a.png", "symbolic link loop"), ("b.png", "symbolic link loop")]


# ---------------------------------------------------------------- synthetic pairs


def _clean_folder(tmp_path: Path, n: int = 4) -> Path:
    d = tmp_path / "clean"
    for i in range(n):
        png(d / f"img{i}.png", (48, 64), seed=i)
    return d


def test_bad_clean_files_are_skipped_and_listed(tmp_path: Path) -> None:
    d = _clean_folder(tmp_path, 2)
    (d / "empty.jpg").write_bytes(b"")
    (d / "text.png").write_text("hello")
    good = (d / "img0.png").read_bytes()
    (d / "truncated.png").write_bytes(good[: len(good) // 2])
    ds = SyntheticPairs(d, crop=32, seed=0)
    assert sorted(p.name for p in ds.images) == ["img0.png", "img1.png"]
    assert sorted(p.name for p, _ in ds.skipped) == ["empty.jpg", "text.png", "truncated.png"]
    assert all(reason for _, reason in ds.skipped)
    for i in range(len(ds)):
        assert ds[i]["params"]["source"] in {"img0.png", "img1.png"}


def test_synthetic_items_deterministic_and_well_formed(tmp_path: Path) -> None:
    d = _clean_folder(tmp_path)
    ds = SyntheticPairs(d, kinds=("haze", "rain", "blur"), crop=32, seed=5)
    assert len(ds) == 12
    a, b = ds[4], SyntheticPairs(d, kinds=("haze", "rain", "blur"), crop=32, seed=5)[4]
    assert torch.equal(a["input"], b["input"]) and torch.equal(a["target"], b["target"])
    assert a["params"] == b["params"] and a["params"]["seed"] == 5 + 4
    assert a["kind"] == "rain" and a["kind_id"] == 1
    for i in range(6):
        it = ds[i]
        assert it["input"].shape == it["target"].shape == (3, 32, 32)
        assert it["input"].min() >= 0 and it["input"].max() <= 1
        assert it["kind"] == ds.kind_of(i) == ("haze", "rain", "blur")[i % 3]
        assert not torch.equal(it["input"], it["target"])
    ds.set_epoch(1)
    assert not torch.equal(ds[4]["input"], a["input"])  # a new epoch brings new samples


def test_synthetic_margin_keeps_blur_border_clean(tmp_path: Path) -> None:
    # A constant clean photo blurred without padding artefacts stays constant at the edges.
    d = tmp_path / "flat"
    d.mkdir()
    Image.fromarray(np.full((80, 80, 3), 128, np.uint8)).save(d / "f.png")
    # Without the camera stage (noise and JPEG after the blur would change a flat image too).
    reg = Registry.from_config({"kinds": {"blur": {"camera": None}}})
    ds = SyntheticPairs(d, kinds=("blur",), crop=32, seed=0, length=3, registry=reg)
    for i in range(3):
        x = ds[i]["input"]
        assert (x - 128 / 255).abs().max() < 1e-4


def test_loader_same_batches_with_any_worker_count(tmp_path: Path) -> None:
    d = _clean_folder(tmp_path, 3)
    ds = SyntheticPairs(d, kinds=("haze", "rain", "blur"), crop=24, seed=1, length=18)
    sampler = KindGroupedBatchSampler(ds.item_kinds(), 6, ds.kinds, seed=2)
    runs = []
    for workers in (0, 2):
        dl = DataLoader(ds, batch_sampler=sampler, collate_fn=collate_pairs, num_workers=workers, worker_init_fn=seed_worker)
        runs.append(list(dl))
    assert len(runs[0]) == len(runs[1]) == 3
    for b0, b1 in zip(*runs):
        assert torch.equal(b0["input"], b1["input"]) and b0["name"] == b1["name"]
        assert b0["kind"] == ["haze", "haze", "rain", "rain", "blur", "blur"]
        assert b0["kind_id"].tolist() == [0, 0, 1, 1, 2, 2]


def test_kind_grouped_sampler_uneven_and_num_batches() -> None:
    kinds = ["haze"] * 5 + ["rain"] * 9 + ["blur"] * 3
    s = KindGroupedBatchSampler(kinds, 4, ("haze", "rain", "blur"), seed=0)
    batches = list(s)
    assert len(batches) == 2  # haze (2 per batch, 5 items) runs out first
    for b in batches:
        assert [kinds[i] for i in b] == ["haze", "haze", "rain", "blur"]
    s2 = KindGroupedBatchSampler(kinds, 3, ("haze", "rain", "blur"), seed=0, num_batches=10)
    batches = list(s2)
    assert len(batches) == 10 and all([kinds[i] for i in b] == ["haze", "rain", "blur"] for b in batches)
    s2.set_epoch(1)
    assert list(s2) != batches
    with pytest.raises(ValueError):
        KindGroupedBatchSampler(kinds, 3, ("haze", "snow"))


# ---------------------------------------------------------------- real photos, manifests


def test_real_photos_labelled_and_unlabelled(tmp_path: Path) -> None:
    png(tmp_path / "lab" / "hazy" / "a.png"), png(tmp_path / "lab" / "rain" / "b.png"), png(tmp_path / "lab" / "blur" / "c.png")
    png(tmp_path / "lab" / "loose.png")
    (tmp_path / "lab" / "rain" / "bad.jpg").write_bytes(b"\xff\xd8junk")
    ds = RealPhotos(tmp_path / "lab", crop=16, seed=0)
    got = {it["name"]: (it["kind"], it["kind_id"]) for it in (ds[i] for i in range(len(ds)))}
    assert got == {"hazy/a": ("haze", 0), "rain/b": ("rain", 1), "blur/c": ("blur", 2), "loose": ("unknown", -1)}
    assert [p.name for p, _ in ds.skipped] == ["bad.jpg"]
    assert ds[0]["input"].shape == (3, 16, 16)
    png(tmp_path / "flat" / "x.png"), png(tmp_path / "flat" / "sub" / "y.png")
    flat = RealPhotos(tmp_path / "flat")
    assert set(flat.item_kinds()) == {"unknown"}


def test_manifest_write_and_verify(tmp_path: Path) -> None:
    d = _clean_folder(tmp_path, 3)
    ds = SyntheticPairs(d, crop=16)
    path = ds.write_manifest()
    assert path == d / "manifest.json"
    rep = ds.verify_manifest()
    assert rep.passed and len(rep.ok) == 3
    png(d / "img1.png", (48, 64), seed=99)  # changed content, same size
    (d / "img2.png").unlink()
    rep = verify_manifest(path)
    assert not rep.passed and rep.changed == ["img1.png"] and rep.missing == ["img2.png"]
    # Paired datasets list inputs and targets.
    png(tmp_path / "p" / "input" / "a.png"), png(tmp_path / "p" / "target" / "a.png")
    pds = PairedDataset(find_pairs(tmp_path / "p").pairs)
    out = write_manifest(pds.root, pds.files(), tmp_path / "m.json")
    assert verify_manifest(out, pds.root).ok == ["input/a.png", "target/a.png"]
