"""Cluster-grained contrast (CGCL) for stage 2 (METHOD.md, "Stage 2").

Instance contrast compares one output with one positive; cluster-grained contrast compares it
with *groups* of photos: a frozen embedding network g maps images to unit vectors, a
:class:`PrototypeBank` keeps a memory of embeddings of clean photos and of real degraded photos
(per kind) and summarises each memory by a few prototypes (k-means centroids or running means,
refreshed every N steps), and :func:`prototype_nce` is an InfoNCE that pulls g(S(r)) toward the
clean prototypes and away from the degraded ones. This pushes restored real photos toward the
clean-photo distribution, as the discriminator does, but through a fixed metric that cannot be
fooled the way a co-trained D can.

g is offline only: the frozen encoder of a trained teacher or of the stage-1 student
(:class:`EncoderEmbedder`), pooled bottleneck features, L2-normalised. Gradients flow through g
into the student; g's weights never change.
"""
from __future__ import annotations

from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn


class EncoderEmbedder(nn.Module):
    """Frozen restorer's bottleneck features -> pooled, L2-normalised embedding.

    The bottleneck is the last of the network's feature levels (:func:`uniremoval.nets.features`:
    only the encoder runs when the descriptor says the network has one). ``pool="meanstd"``
    concatenates the per-channel mean and standard deviation: degradations such as haze and
    blur change feature *statistics* (contrast, spread) more than their means, so the std
    half carries most of the signal. Inputs of any size are padded to the size multiple.

    Raises:
        ValueError: the network declares no feature levels.
    """

    def __init__(self, net: nn.Module, pool: Literal["mean", "meanstd"] = "meanstd") -> None:
        super().__init__()
        from .. import nets

        desc = nets.descriptor(net)
        if not desc.has_features:
            raise ValueError(f"a {desc.arch} network has no feature levels: it cannot embed photos for cluster contrast")
        self.net = net
        self.pool = pool
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.net.eval()
        self.size_multiple = desc.size_multiple
        self.dim = desc.feature_channels[-1] * (2 if pool == "meanstd" else 1)

    def train(self, mode: bool = True) -> "EncoderEmbedder":
        # Always eval: a frozen g must not change behaviour with the trainer's train/eval calls.
        super().train(False)
        return self

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Bottleneck feature map of ``x`` (N, C, H, W)."""
        from .. import nets

        return nets.features(self.net, x)[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from .. import nets

        x, _ = nets.pad_to_multiple(x, self.size_multiple)
        f = self.features(x).float()
        e = f.mean(dim=(2, 3))
        if self.pool == "meanstd":
            e = torch.cat([e, f.flatten(2).std(dim=2, unbiased=False)], dim=1)
        return F.normalize(e, dim=1)


def kmeans(x: torch.Tensor, k: int, iters: int = 10, init: torch.Tensor | None = None, seed: int = 0) -> torch.Tensor:
    """Spherical k-means (cosine similarity) of unit rows ``x`` (M, D) -> (k, D) unit centroids.

    Initialised from ``init`` when given (previous prototypes: keeps them stable between
    refreshes) else from k rows picked with a seeded generator (deterministic). An empty
    cluster keeps its previous centroid.
    """
    k = min(k, x.shape[0])
    if init is not None and init.shape[0] >= k:
        c = init[:k].clone()
    else:
        g = torch.Generator(device="cpu").manual_seed(seed)
        c = x[torch.randperm(x.shape[0], generator=g)[:k].to(x.device)].clone()
    for _ in range(iters):
        assign = (x @ c.t()).argmax(dim=1)
        new = torch.zeros_like(c).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k).unsqueeze(1)
        c = torch.where(counts > 0, new, c)
        c = F.normalize(c, dim=1)
    return c


class PrototypeBank(nn.Module):
    """Memories of embeddings per group ("clean" and each degraded kind) and their prototypes.

    All state lives in fixed-size buffers so the bank checkpoints, resumes and rolls back like
    any module (register it as a frozen Trainer component). :meth:`push` adds embeddings to a
    group's ring buffer; :meth:`refresh` (call it every N steps) recomputes every group's
    prototypes: ``method="kmeans"`` runs spherical k-means on the memory (warm-started from the
    previous prototypes); ``method="running"`` assigns the memory to the current prototypes and
    moves each one toward the mean of its members by ``1 - momentum``.
    """

    def __init__(
        self,
        groups: Sequence[str],
        dim: int,
        prototypes: int = 4,
        memory: int = 256,
        method: Literal["kmeans", "running"] = "kmeans",
        momentum: float = 0.9,
        iters: int = 10,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if "clean" not in groups:
            raise ValueError("a prototype bank needs a 'clean' group")
        self.groups = list(groups)
        self.k, self.memory_size, self.method, self.momentum, self.iters, self.seed = prototypes, memory, method, momentum, iters, seed
        g = len(self.groups)
        self.register_buffer("memory", torch.zeros(g, memory, dim))
        self.register_buffer("count", torch.zeros(g, dtype=torch.long))  # filled slots
        self.register_buffer("ptr", torch.zeros(g, dtype=torch.long))  # next slot to write
        self.register_buffer("protos", torch.zeros(g, prototypes, dim))
        self.register_buffer("valid", torch.zeros(g, dtype=torch.bool))
        self.register_buffer("refreshes", torch.zeros((), dtype=torch.long))

    def index(self, group: str) -> int:
        return self.groups.index(group)

    @torch.no_grad()
    def push(self, group: str, emb: torch.Tensor) -> None:
        """Append embeddings (N, D) to ``group``'s ring buffer (oldest overwritten)."""
        gi = self.index(group)
        emb = emb.detach().to(self.memory.dtype)
        for e in emb[-self.memory_size :]:
            p = int(self.ptr[gi])
            self.memory[gi, p] = e
            self.ptr[gi] = (p + 1) % self.memory_size
            self.count[gi] = min(int(self.count[gi]) + 1, self.memory_size)

    @torch.no_grad()
    def refresh(self) -> None:
        """Recompute the prototypes of every group with at least ``k`` stored embeddings."""
        self.refreshes += 1
        for gi in range(len(self.groups)):
            n = int(self.count[gi])
            if n < self.k:
                continue
            mem = self.memory[gi, :n]
            if self.method == "kmeans" or not bool(self.valid[gi]):
                init = self.protos[gi] if bool(self.valid[gi]) else None
                c = kmeans(mem, self.k, self.iters, init=init, seed=self.seed + gi + 1000 * int(self.refreshes))
            else:
                prev = self.protos[gi]
                assign = (mem @ prev.t()).argmax(dim=1)
                sums = torch.zeros_like(prev).index_add_(0, assign, mem)
                counts = torch.bincount(assign, minlength=prev.shape[0]).unsqueeze(1)
                means = torch.where(counts > 0, sums / counts.clamp(min=1), prev)
                c = F.normalize(self.momentum * prev + (1 - self.momentum) * means, dim=1)
            self.protos[gi, : c.shape[0]] = c
            if c.shape[0] < self.k:  # fewer members than k: repeat the last centroid
                self.protos[gi, c.shape[0] :] = c[-1]
            self.valid[gi] = True

    def positives(self) -> torch.Tensor:
        """Clean prototypes (K, D), or an empty tensor before the first refresh."""
        gi = self.index("clean")
        return self.protos[gi] if bool(self.valid[gi]) else self.protos.new_zeros(0, self.protos.shape[-1])

    def negatives(self, groups: Sequence[str] | None = None) -> torch.Tensor:
        """Prototypes of the degraded groups (all valid non-clean groups by default), stacked."""
        names = [g for g in (groups or self.groups) if g != "clean"]
        parts = [self.protos[self.index(g)] for g in names if bool(self.valid[self.index(g)])]
        return torch.cat(parts) if parts else self.protos.new_zeros(0, self.protos.shape[-1])


def prototype_nce(anchor: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor, tau: float = 0.1) -> torch.Tensor:
    """Multi-positive InfoNCE of unit anchors (N, D) over prototypes.

    loss = -mean_i log( sum_p exp(a_i.p / tau) / (sum_p exp(a_i.p / tau) + sum_n exp(a_i.n / tau)) )

    Every clean prototype is a positive (the clean distribution has several modes; the anchor
    only needs to be near one of them). Returns 0 (with a graph) when there are no positives or
    no negatives yet, so the term can stay in the total loss from step 0.
    """
    if positives.numel() == 0 or negatives.numel() == 0:
        return anchor.sum() * 0.0
    a = anchor.float()
    sp = a @ positives.float().t() / tau
    sn = a @ negatives.float().t() / tau
    return (torch.logsumexp(torch.cat([sp, sn], dim=1), dim=1) - torch.logsumexp(sp, dim=1)).mean()
