"""Image-grain ratio contrast and feature-grain InfoNCE on hand-computable inputs."""
from __future__ import annotations

import math

import pytest
import torch

from uniremoval.losses.contrast import (
    DEFAULT_WEIGHTS,
    TeacherEncoderFeatures,
    batch_negatives,
    feature_contrast,
    info_nce,
    level_weights,
    ratio_contrast,
)


def const(v: float, shape=(2, 3, 4, 4)) -> torch.Tensor:
    return torch.full(shape, float(v))


def test_ratio_single_level_is_distance_ratio() -> None:
    a, p, n = const(0.0), const(1.0), const(4.0)
    # D(a, p) = 1, D(a, n) = 4; one level gets the deepest weight, 1.
    assert ratio_contrast([a], [p], [n]).item() == pytest.approx(0.25)


def test_ratio_weights_finest_first_and_sum() -> None:
    a = [const(0.0) for _ in range(5)]
    p = [const(1.0) for _ in range(5)]
    n = [const(2.0) for _ in range(5)]
    expected = sum(DEFAULT_WEIGHTS) * 0.5
    assert ratio_contrast(a, p, n).item() == pytest.approx(expected)
    # level i alone differs: only its weight counts
    p2 = [const(0.0) for _ in range(5)]
    p2[1] = const(1.0)
    assert ratio_contrast(a, p2, n).item() == pytest.approx(DEFAULT_WEIGHTS[1] * 0.5)
    assert level_weights(3) == [1 / 8, 1 / 4, 1.0]
    with pytest.raises(ValueError):
        level_weights(6)


def test_ratio_hard_negatives_mean_over_batch() -> None:
    # anchors 0 and 0 (two samples), positives 1; inputs (negatives) per sample: 2 and 6.
    a = torch.zeros(2, 1, 2, 2)
    p = torch.ones(2, 1, 2, 2)
    inputs = torch.cat([torch.full((1, 1, 2, 2), 2.0), torch.full((1, 1, 2, 2), 6.0)])
    soft = ratio_contrast([a], [p], [inputs])  # D(a, n) = mean(2, 6) = 4
    hard = ratio_contrast([a], [p], batch_negatives([inputs]))  # each anchor vs both: mean 4
    assert soft.item() == pytest.approx(1 / 4)
    assert hard.item() == pytest.approx(1 / 4)
    # now anchors differ: a = (2, 6) -> soft distances 0 -> p/eps; hard mean |a_b - n_j| = (0+4+4+0)/4 = 2
    a2 = inputs.clone()
    d_ap = (inputs - 1).abs().mean().item()  # (1 + 5) / 2 = 3
    assert ratio_contrast([a2], [p], batch_negatives([inputs])).item() == pytest.approx(d_ap / 2)


def test_negative_equal_to_anchor_is_finite_guarded() -> None:
    a = torch.zeros(1, 1, 2, 2, requires_grad=True)
    p = torch.ones(1, 1, 2, 2)
    loss = ratio_contrast([a], [p], [a.detach().clone()])
    assert math.isfinite(loss.item())
    assert loss.item() == pytest.approx(1 / 1e-7, rel=1e-4)
    # all three equal: 0 / (0 + eps) = 0, and the gradient is finite
    b = torch.zeros(1, 1, 2, 2, requires_grad=True)
    loss0 = ratio_contrast([b], [torch.zeros(1, 1, 2, 2)], [torch.zeros(1, 1, 2, 2)])
    loss0.backward()
    assert loss0.item() == 0.0 and torch.isfinite(b.grad).all()


def test_ratio_grad_only_to_anchor() -> None:
    a = torch.zeros(1, 1, 2, 2, requires_grad=True)
    p = torch.ones(1, 1, 2, 2, requires_grad=True)
    n = torch.full((1, 1, 2, 2), 3.0, requires_grad=True)
    ratio_contrast([a], [p], [n]).backward()
    assert a.grad is not None and a.grad.abs().sum() > 0
    assert p.grad is None and n.grad is None


def test_info_nce_known_similarities() -> None:
    # anchor e1, positive e1 (cos 1), negatives e2 (cos 0) and -e1 (cos -1)
    a = torch.tensor([[1.0, 0.0]])
    p = torch.tensor([[2.0, 0.0]])  # normalised inside
    negs = torch.tensor([[0.0, 3.0], [-1.0, 0.0]])
    tau = 0.5
    expected = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + math.exp(0) + math.exp(-1 / tau)))
    assert info_nce(a, p, negs, tau).item() == pytest.approx(expected, rel=1e-6)
    # per-anchor negatives (N, M, D) give the same
    assert info_nce(a, p, negs.unsqueeze(0), tau).item() == pytest.approx(expected, rel=1e-6)
    # feature maps are average-pooled first
    amap = a.view(1, 2, 1, 1).expand(1, 2, 3, 3)
    assert info_nce(amap, p.view(1, 2, 1, 1), negs.view(2, 2, 1, 1), tau).item() == pytest.approx(expected, rel=1e-6)


def test_info_nce_negative_equal_to_positive_is_log_two() -> None:
    a = torch.tensor([[1.0, 1.0]])
    assert info_nce(a, a, a, tau=0.1).item() == pytest.approx(math.log(2), rel=1e-6)
    with pytest.raises(ValueError):
        info_nce(a, a, a, tau=0.0)


def test_info_nce_zero_vectors_are_guarded() -> None:
    z = torch.zeros(2, 4, requires_grad=True)
    loss = info_nce(z, torch.zeros(2, 4), torch.zeros(3, 4), tau=0.1)
    loss.backward()
    # normalising a zero vector gives zero (F.normalize's eps): all logits 0 -> log(1 + M)
    assert loss.item() == pytest.approx(math.log(4), rel=1e-6)
    assert torch.isfinite(z.grad).all()


def test_feature_contrast_negatives_are_other_samples() -> None:
    # two samples; student == teacher per sample, samples orthogonal.
    s = [torch.tensor([[1.0, 0.0], [0.0, 1.0]]).view(2, 2, 1, 1)]
    tau = 1.0
    # for each anchor: pos cos 1; negatives: other teacher (cos 0), other student (cos 0)
    expected = -math.log(math.e / (math.e + 2))
    assert feature_contrast(s, [x.clone() for x in s], tau=tau).item() == pytest.approx(expected, rel=1e-6)
    # an extra negative per anchor identical to the anchor (another teacher's feature of the sample)
    extra = [s[0].view(2, 1, 2)]
    expected2 = -math.log(math.e / (2 * math.e + 2))
    assert feature_contrast(s, [x.clone() for x in s], extra, tau=tau).item() == pytest.approx(expected2, rel=1e-6)


def test_teacher_encoder_features_frozen_and_matches_forward() -> None:
    from uniremoval import nets

    net = nets.build("nafnet", width=4, enc_blocks=[1, 1], middle_blocks=1)
    phi = TeacherEncoderFeatures(net)
    phi.train()
    assert not phi.training and not net.training
    assert all(not p.requires_grad for p in net.parameters())
    x = torch.rand(1, 3, 8, 8, requires_grad=True)
    feats = phi(x)
    _, ref = net(x, return_features=True)
    assert len(feats) == 3 and all(torch.equal(a, b) for a, b in zip(feats, ref))
    feats[-1].sum().backward()
    assert x.grad is not None and all(p.grad is None for p in net.parameters())


def test_batch_negatives_fast_path_equals_loop() -> None:
    g = torch.Generator().manual_seed(0)
    a = [torch.rand(3, 2, 4, 4, generator=g), torch.rand(3, 4, 2, 2, generator=g)]
    p = [torch.rand_like(x) for x in a]
    negs = [torch.rand(5, *x.shape[1:], generator=g) for x in a]
    fast = ratio_contrast(a, p, batch_negatives(negs))
    slow = ratio_contrast(a, p, [list(n) for n in batch_negatives(negs)])  # plain lists: the loop
    assert fast.item() == pytest.approx(slow.item(), rel=1e-6)


def test_vgg19_features_from_a_state_dict_file(tmp_path) -> None:
    from uniremoval import nets
    from uniremoval.losses.contrast import VGGFeatures
    from uniremoval.nets.vgg import VGG19Features

    torch.manual_seed(0)
    ref = VGG19Features()
    # torchvision layout: features.N.* plus classifier keys that must be ignored
    state = {f"features.{k}": v.clone() for k, v in ref.features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)
    pth = tmp_path / "vgg19.pth"
    torch.save(state, pth)
    from safetensors.torch import save_file

    st = tmp_path / "vgg19.safetensors"
    save_file(state, str(st))
    x = torch.rand(1, 3, 32, 32)
    for path in (pth, st):
        phi = VGGFeatures(path)
        phi.train()
        assert not phi.training and all(not q.requires_grad for q in phi.parameters())
        feats = phi(x)
        assert [f.shape[1] for f in feats] == [64, 128, 256, 512, 512]
        assert [f.shape[-1] for f in feats] == [32, 16, 8, 4, 2]
        assert all(torch.equal(f, r) for f, r in zip(feats, ref(x)))
    assert "vgg19-features" in nets.available()
    bad = tmp_path / "bad.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, bad)
    with pytest.raises(KeyError, match="features.0.bias"):
        VGGFeatures(bad)
    with pytest.raises(FileNotFoundError):
        VGGFeatures(tmp_path / "missing.pth")
