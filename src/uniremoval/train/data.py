"""Resumable, deterministic data order for training (any number of processes).

The global order of samples is a function of (seed, epoch) only: epoch ``e`` is a permutation
drawn from a generator seeded with ``seed + e``. Each global batch of ``B`` samples is split
evenly among the ``world_size`` processes, so 1 process or N see the same global batches. The
loader position is "batches consumed in this epoch", which the trainer stores in checkpoints;
a resumed run starts its epoch at that position.

Per-sample randomness (random crops, flips, synthetic degradation parameters) is made a
function of (seed, epoch, index) by :class:`SeededItems`, which seeds Python's, NumPy's and
torch's global generators before each ``__getitem__``. DataLoader workers therefore do not
change results either.
"""
from __future__ import annotations

import hashlib
import random
from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler


def item_seed(seed: int, epoch: int, index: int) -> int:
    """A well-mixed 63-bit seed for one sample of one epoch."""
    h = hashlib.blake2b(f"{seed}:{epoch}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") & ((1 << 63) - 1)


class SeededItems(Dataset):
    """Wraps a map-style dataset; indices are ``(epoch, index)`` pairs from :class:`ResumableSampler`.

    Datasets with a ``set_epoch(epoch)`` method (those of :mod:`uniremoval.data`, which seed
    each item from (their seed, epoch, index)) are told the epoch before each item, inside
    whichever process loads it. The global Python/NumPy/torch RNGs are also seeded from
    (seed, epoch, index), so datasets that draw from them are deterministic too.
    """

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset = dataset
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        epoch, index = key
        s = item_seed(self.seed, epoch, index)
        set_epoch = getattr(self.dataset, "set_epoch", None)
        if callable(set_epoch) and getattr(self.dataset, "epoch", None) != epoch:
            set_epoch(epoch)
        random.seed(s)
        np.random.seed(s % (1 << 32))
        torch.manual_seed(s)
        return self.dataset[index]


class ResumableSampler(Sampler[tuple[int, int]]):
    """Yields this process's ``(epoch, index)`` pairs forever, starting at a saved position.

    Args:
        size: number of samples in the dataset (at least one global batch).
        global_batch: samples per optimiser step over all processes.
        seed: base seed of the permutations.
        rank, world_size: this process's share of each global batch.
        epoch, batch_pos: where to start (batches already consumed in ``epoch``).
    """

    def __init__(
        self, size: int, global_batch: int, seed: int, rank: int = 0, world_size: int = 1, epoch: int = 0, batch_pos: int = 0
    ) -> None:
        if global_batch % world_size:
            raise ValueError(f"batch size {global_batch} is not divisible by {world_size} processes")
        if size < global_batch:
            raise ValueError(f"dataset has {size} samples, fewer than one batch of {global_batch}")
        self.size, self.global_batch, self.seed = size, global_batch, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.batch_pos = epoch, batch_pos
        self.per_rank = global_batch // world_size

    @property
    def batches_per_epoch(self) -> int:
        # Incomplete last batches are dropped so every step sees a full global batch.
        return self.size // self.global_batch

    def permutation(self, epoch: int) -> list[int]:
        g = torch.Generator().manual_seed(self.seed + 1_000_003 * epoch)
        return torch.randperm(self.size, generator=g).tolist()

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch, pos = self.epoch, self.batch_pos
        while True:
            perm = self.permutation(epoch)
            for b in range(pos, self.batches_per_epoch):
                start = b * self.global_batch + self.rank * self.per_rank
                for i in perm[start : start + self.per_rank]:
                    yield (epoch, i)
            epoch, pos = epoch + 1, 0

    def __len__(self) -> int:  # infinite in practice; DataLoader only needs a number
        return 2**62


def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack tensors; keep everything else (names, kinds, parameter records) as lists.

    Parameter records differ in structure between kinds, which torch's default collate rejects.
    """
    out: dict[str, Any] = {}
    for key in batch[0]:
        vals = [b[key] for b in batch]
        out[key] = torch.stack(vals) if isinstance(vals[0], torch.Tensor) else vals
    return out


def make_loader(
    dataset: Dataset,
    global_batch: int,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
    epoch: int = 0,
    batch_pos: int = 0,
    workers: int = 0,
    pin_memory: bool = False,
) -> DataLoader:
    """An endless DataLoader over ``dataset`` in the deterministic order described above."""
    sampler = ResumableSampler(len(dataset), global_batch, seed, rank, world_size, epoch, batch_pos)  # type: ignore[arg-type]
    return DataLoader(
        SeededItems(dataset, seed),
        batch_size=sampler.per_rank,
        sampler=sampler,
        num_workers=workers,
        pin_memory=pin_memory,
        drop_last=True,
        collate_fn=collate,
        persistent_workers=workers > 0,
        # Worker RNGs are irrelevant (each item is seeded), but keep them deterministic anyway.
        generator=torch.Generator().manual_seed(seed),
    )
