"""Cluster-grained contrast: embedder, k-means, prototype bank (k-means and running means,
fixed-size state that checkpoints), InfoNCE over prototypes."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from uniremoval import nets
from uniremoval.losses.cluster import EncoderEmbedder, PrototypeBank, kmeans, prototype_nce


def _blobs(centres: torch.Tensor, n: int, noise: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    idx = torch.arange(n) % centres.shape[0]
    return F.normalize(centres[idx] + noise * torch.randn(n, centres.shape[1], generator=g), dim=1)


def test_embedder_frozen_unit_and_differentiable() -> None:
    net = nets.build("nafnet", width=8, enc_blocks=[1, 1], middle_blocks=1)
    g = EncoderEmbedder(net)
    g.train()
    assert not g.training and g.dim == 64  # 32 bottleneck channels, mean + std
    x = torch.rand(2, 3, 30, 34, requires_grad=True)  # not a size multiple: padded inside
    e = g(x)
    assert e.shape == (2, 64) and torch.allclose(e.norm(dim=1), torch.ones(2), atol=1e-5)
    e.sum().backward()
    assert x.grad is not None and all(p.grad is None for p in net.parameters())


def test_kmeans_finds_separated_clusters() -> None:
    centres = torch.eye(4, 8)
    x = _blobs(centres, 64, 0.05, 0)
    c = kmeans(x, 4, seed=1)
    # every true centre has a centroid close to it
    assert (F.normalize(centres, dim=1) @ c.t()).max(dim=1).values.min() > 0.95


@pytest.mark.parametrize("method", ["kmeans", "running"])
def test_bank_refresh_and_state(method: str) -> None:
    bank = PrototypeBank(["clean", "haze"], dim=8, prototypes=2, memory=16, method=method)  # type: ignore[arg-type]
    assert bank.positives().numel() == 0 and bank.negatives().numel() == 0
    clean = _blobs(torch.eye(2, 8), 40, 0.05, 0)  # 40 > memory: ring buffer wraps
    haze = _blobs(torch.eye(8)[4:6], 20, 0.05, 1)
    bank.push("clean", clean)
    bank.push("haze", haze)
    assert int(bank.count[0]) == 16
    bank.refresh()
    if method == "running":
        bank.refresh()  # second refresh takes the running-mean path
    pos, neg = bank.positives(), bank.negatives()
    assert pos.shape == (2, 8) and neg.shape == (2, 8)
    assert (pos @ torch.eye(8)[:2].t()).max(dim=0).values.min() > 0.9  # clean prototypes near clean modes
    # the bank's state is fixed-size buffers: it round-trips through a state_dict
    other = PrototypeBank(["clean", "haze"], dim=8, prototypes=2, memory=16, method=method)  # type: ignore[arg-type]
    other.load_state_dict(bank.state_dict())
    assert torch.equal(other.positives(), pos)


def test_prototype_nce_values_and_direction() -> None:
    pos = torch.eye(4)[:2]
    neg = torch.eye(4)[2:]
    a = torch.eye(4)[:1]
    # closed form: -log(sum_p e^{s_p} / sum_all e^{s})
    exp = -math.log((math.exp(2) + 1) / (math.exp(2) + 3))
    assert float(prototype_nce(a, pos, neg, tau=0.5)) == pytest.approx(exp, rel=1e-5)
    assert float(prototype_nce(torch.eye(4)[2:3], pos, neg)) > float(prototype_nce(a, pos, neg))
    # gradient moves the anchor toward positives
    x = F.normalize(torch.tensor([[0.5, 0.0, 0.5, 0.0]]), dim=1).requires_grad_(True)
    prototype_nce(x, pos, neg).backward()
    assert x.grad[0, 0] < 0 and x.grad[0, 2] > 0
    # empty bank: zero, but still part of the graph
    z = prototype_nce(x, pos[:0], neg)
    assert float(z.detach()) == 0.0 and z.requires_grad
