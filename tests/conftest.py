"""Shared fixtures: small model files made in the test (no trained weights are needed to test
the machinery around a model)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from uniremoval import nets
from uniremoval.modelfile import save_model


@pytest.fixture(scope="session")
def identity_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A plain CNN whose residual branch is zero, so it returns its input exactly: end-to-end
    tests can then check pixels, orientation and metadata through the whole pipeline."""
    net = nets.build("plain", width=8, depth=3)
    last = net.body[-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)
    return save_model(net, tmp_path_factory.mktemp("models") / "identity.json", "plain", {"width": 8, "depth": 3}, ["test"])


@pytest.fixture(scope="session")
def random_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small randomly initialised NAFNet: changes pixels, has a size multiple of 4."""
    torch.manual_seed(0)
    args = {"width": 8, "enc_blocks": [1, 1], "middle_blocks": 1}
    net = nets.build("nafnet", **args)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return save_model(net, tmp_path_factory.mktemp("models") / "random.json", "nafnet", args, ["test"])
