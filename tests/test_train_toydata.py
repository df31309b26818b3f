"""A toy paired dataset for the training tests, and a script entry point for subprocess runs.

Images are random smooth colour fields; the degradation is a fixed haze-like affine map
(``0.6 * clean + 0.35``) defined here, so these tests never depend on the synthesis package.
Run as a script (also under torchrun) it trains the tiny teacher on this data::

    python tests/test_train_toydata.py --out DIR [--set key=value ...]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny_teacher.yaml"


def smooth_image(size: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """A 3 x size x size random smooth image in [0, 1]."""
    low = torch.rand(1, 3, 4, 4, generator=generator)
    mid = torch.rand(1, 3, 8, 8, generator=generator)
    img = 0.75 * F.interpolate(low, size=size, mode="bicubic", align_corners=False) + 0.25 * F.interpolate(mid, size=size, mode="bilinear", align_corners=False)
    return img[0].clamp(0, 1)


def degrade(clean: torch.Tensor) -> torch.Tensor:
    """The toy degradation: lower contrast towards a bright veil (haze-like, deterministic)."""
    return 0.6 * clean + 0.35


class ToyPairs(Dataset):
    """Items ``{"input", "target", "kind"}``; randomness from torch's global RNG (seeded per item by the loader)."""

    def __init__(self, size: int = 32, length: int = 256) -> None:
        self.size, self.length = size, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Any]:
        clean = smooth_image(self.size)
        return {"input": degrade(clean), "target": clean, "kind": "toy"}


def val_items(count: int = 8, size: int = 48) -> list[dict[str, Any]]:
    """Held-back images: a fixed generator that training never uses."""
    g = torch.Generator().manual_seed(987654)
    out = []
    for i in range(count):
        clean = smooth_image(size, g)
        out.append({"input": degrade(clean), "target": clean, "name": f"val{i}"})
    return out


def tiny_config(out_dir: Path, *overrides: str) -> Any:
    from uniremoval.stages.teacher import load_teacher_config

    return load_teacher_config(TINY, kind="toy", overrides=[f"run.out_dir={out_dir}", *overrides])


def main(argv: list[str]) -> int:
    from uniremoval.stages.teacher import train_teacher

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--dump", help="save this process's final weights to DUMP.rank<R>.pt")
    args = ap.parse_args(argv)
    cfg = tiny_config(Path(args.out), *args.set)
    res = train_teacher(cfg, ToyPairs(cfg.data.crop), val_items())
    if args.dump and res.net is not None:
        import os

        torch.save(res.net.state_dict(), f"{args.dump}.rank{os.environ.get('RANK', '0')}.pt")
    return 0


def test_toy_degradation_lowers_psnr() -> None:
    from uniremoval.metrics import psnr

    items = val_items(2)
    assert all(float(psnr(it["input"], it["target"])) < 20 for it in items)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
