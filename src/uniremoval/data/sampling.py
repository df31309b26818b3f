"""Batching helpers: kind-grouped batches, a collate for record dicts, worker seeding."""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler


class KindGroupedBatchSampler(Sampler[list[int]]):
    """Batches that hold every kind, grouped by kind, in the order of `kinds`.

    Stage 1 of Uni-Removal needs each batch to contain samples of every degradation kind so
    each sample can go through its own teacher; grouping makes the per-teacher slices
    contiguous (``batch[k*n:(k+1)*n]``). `batch_size` is split as evenly as possible (the
    first kinds get one more when it does not divide). Each kind's items are shuffled per
    epoch with ``seed + epoch``; an epoch ends when the scarcest kind runs out, unless
    `num_batches` is given, in which case pools are reshuffled and reused as needed.
    """

    def __init__(
        self,
        item_kinds: Sequence[str],
        batch_size: int,
        kinds: Sequence[str] | None = None,
        seed: int = 0,
        num_batches: int | None = None,
        shuffle: bool = True,
    ) -> None:
        pools: dict[str, list[int]] = defaultdict(list)
        for i, k in enumerate(item_kinds):
            pools[k].append(i)
        self.kinds = tuple(kinds) if kinds is not None else tuple(sorted(pools))
        missing = [k for k in self.kinds if not pools.get(k)]
        if missing:
            raise ValueError(f"no items of kind(s) {missing}")
        if batch_size < len(self.kinds):
            raise ValueError(f"batch_size {batch_size} < number of kinds {len(self.kinds)}")
        self.pools = {k: pools[k] for k in self.kinds}
        base, extra = divmod(batch_size, len(self.kinds))
        self.per_kind = {k: base + (1 if i < extra else 0) for i, k in enumerate(self.kinds)}
        self.batch_size = batch_size
        self.seed = int(seed)
        self.num_batches = num_batches
        self.shuffle = shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        if self.num_batches is not None:
            return self.num_batches
        return min(len(self.pools[k]) // self.per_kind[k] for k in self.kinds)

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng(self.seed + self.epoch)

        def order(k: str) -> list[int]:
            idx = list(self.pools[k])
            if self.shuffle:
                idx = [idx[i] for i in rng.permutation(len(idx))]
            return idx

        queues = {k: order(k) for k in self.kinds}
        pos = {k: 0 for k in self.kinds}
        for _ in range(len(self)):
            batch: list[int] = []
            for k in self.kinds:
                n = self.per_kind[k]
                if pos[k] + n > len(queues[k]):
                    queues[k], pos[k] = queues[k][pos[k]:] + order(k), 0
                batch += queues[k][pos[k] : pos[k] + n]
                pos[k] += n
            yield batch


def collate_pairs(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack tensors, make ``kind_id`` a tensor, keep strings and records as lists (their
    nested structure differs between kinds, which the default collate cannot handle)."""
    out: dict[str, Any] = {}
    for key in batch[0]:
        vals = [b[key] for b in batch]
        if isinstance(vals[0], torch.Tensor):
            out[key] = torch.stack(vals)
        elif key == "kind_id":
            out[key] = torch.as_tensor(vals, dtype=torch.long)
        else:
            out[key] = vals
    return out


def seed_worker(worker_id: int) -> None:
    """`worker_init_fn` for DataLoader: one torch thread per worker (workers are the
    parallelism) and global RNGs seeded from torch's per-worker seed. The datasets here do
    not use global RNGs; this guards user transforms that might."""
    import random

    torch.set_num_threads(1)
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)
