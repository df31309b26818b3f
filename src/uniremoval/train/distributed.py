"""Data-parallel setup from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR...).

One process per device; gloo on CPU, NCCL on CUDA. Without torchrun everything degrades to a
single process (rank 0 of 1) and no process group is created, so the same code and config run
either way.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist


@dataclass
class DistEnv:
    """Where this process sits in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    initialised_here: bool = False

    @property
    def is_main(self) -> bool:
        """True on the process that logs, validates and writes checkpoints."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """This process's device by the one rule of :func:`uniremoval.options.resolve_device`
    (``auto``: CUDA, then Apple MPS, then CPU); a plain ``cuda`` means this rank's GPU."""
    from ..options import resolve_device

    dev = resolve_device(name, rank=local_rank if name.strip().lower() == "auto" else None)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device(f"cuda:{local_rank}")
    return dev


def init(device: str = "auto", timeout_s: float = 1800.0) -> DistEnv:
    """Join the torchrun process group when launched by torchrun; otherwise a 1-process env."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device, local)
    if world <= 1:
        return DistEnv(0, 1, 0, dev)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    created = False
    if not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_s))
        created = True
    return DistEnv(rank, world, local, dev, created)


def barrier(env: DistEnv) -> None:
    """Wait for every process (no-op in a 1-process run)."""
    if env.enabled and dist.is_initialized():
        if env.device.type == "cuda":
            dist.barrier(device_ids=[env.device.index])
        else:
            dist.barrier()


def all_reduce_mean(x: torch.Tensor, env: DistEnv) -> torch.Tensor:
    """Mean of ``x`` over processes (``x`` itself in a 1-process run)."""
    if not env.enabled:
        return x
    y = x.detach().clone()
    dist.all_reduce(y, op=dist.ReduceOp.SUM)
    return y / env.world_size


def broadcast_object(obj: object, env: DistEnv) -> object:
    """Rank 0's ``obj`` on every process."""
    if not env.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def shutdown(env: DistEnv) -> None:
    """Leave the process group if :func:`init` created it."""
    if env.initialised_here and dist.is_initialized():
        dist.destroy_process_group()
