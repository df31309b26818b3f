"""Training-side networks: NAFNet sizes and features, PatchGAN discriminator, projectors."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from uniremoval import nets
from uniremoval.nets.projector import ProjectorSet


def test_registry_knows_training_nets() -> None:
    names = nets.available()
    for n in ("nafnet", "nafnet-small", "nafnet-base", "patchgan", "projector", "inverse-projector", "projector-set"):
        assert n in names


@pytest.mark.parametrize("arch", ["nafnet-small", "nafnet-base"])
def test_nafnet_sizes_return_features(arch: str) -> None:
    net = nets.build(arch)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        out, feats = net(x, return_features=True)
    assert out.shape == x.shape
    assert [f.shape[1] for f in feats] == net.feature_channels
    assert [f.shape[-1] for f in feats] == [32 // 2**i for i in range(len(feats))]


def test_patchgan_shapes_and_spectral_norm() -> None:
    d = nets.build("patchgan", width=16)
    x = torch.rand(2, 3, 64, 64, requires_grad=True)
    y = d(x)
    assert y.shape == (2, 1, 6, 6)  # 70x70 PatchGAN on 64 px: 6x6 overlapping patches
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 5 and all(hasattr(m, "parametrizations") for m in convs)
    # Spectral norm: the largest singular value of each (reshaped) weight is about 1 after a
    # few power iterations in training mode.
    for _ in range(20):
        d(x)
    w = convs[1].weight.detach().flatten(1)
    assert float(torch.linalg.matrix_norm(w, ord=2)) == pytest.approx(1.0, rel=0.05)
    y.mean().backward()
    assert x.grad is not None
    plain = nets.build("patchgan", width=16, spectral=False)
    assert not any(hasattr(m, "parametrizations") for m in plain.modules())


def test_projectors_map_teacher_and_student_to_one_space() -> None:
    student = nets.build("nafnet", width=8, enc_blocks=[1, 1], middle_blocks=1)
    teacher = nets.build("nafnet", width=12, enc_blocks=[1, 1], middle_blocks=1)  # a different width
    x = torch.rand(2, 3, 16, 16)
    _, fs = student(x, return_features=True)
    _, ft = teacher(x, return_features=True)
    common = [c // 2 for c in student.feature_channels]
    ps = ProjectorSet(student.feature_channels)
    pt = ProjectorSet(teacher.feature_channels, common=common, inverse=True)
    zs, zt = ps(fs), pt(ft)
    assert [z.shape for z in zs] == [z.shape for z in zt]
    assert [z.shape[1] for z in zs] == common
    back = pt.invert(zt)
    assert [b.shape for b in back] == [f.shape for f in ft]
    loss = sum((a - b).abs().mean() for a, b in zip(zs, zt)) + 0.05 * sum((b - f).abs().mean() for b, f in zip(back, ft))
    loss.backward()
    assert all(p.grad is not None for p in ps.parameters())
    p = nets.build("projector", in_channels=16)
    assert p(torch.rand(1, 16, 4, 4)).shape == (1, 8, 4, 4)
    with pytest.raises(ValueError):
        ps(fs[:-1])


# ONNX export of NAFNet (dynamic sizes, parity with PyTorch) is covered by test_export_onnx.py.
