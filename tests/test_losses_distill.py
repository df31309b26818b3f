"""Output distillation, ground truth and collaborative feature transfer on small inputs."""
from __future__ import annotations

import pytest
import torch

from uniremoval.losses.distill import FeatureTransfer, feature_transfer_loss, gt_loss, match_levels, output_distill


def test_output_and_gt_are_mean_l1() -> None:
    s = torch.zeros(1, 3, 2, 2, requires_grad=True)
    t = torch.full((1, 3, 2, 2), 0.5, requires_grad=True)
    y = torch.ones(1, 3, 2, 2)
    lo = output_distill(s, t)
    assert lo.item() == pytest.approx(0.5)
    assert gt_loss(s, y).item() == pytest.approx(1.0)
    lo.backward()
    assert s.grad is not None and t.grad is None  # the teacher output is a constant


def test_feature_transfer_loss_hand_computed() -> None:
    z_s = [torch.zeros(1, 2, 2, 2), torch.zeros(1, 4, 1, 1)]
    z_t = [torch.ones(1, 2, 2, 2), torch.full((1, 4, 1, 1), 2.0)]
    rec = [torch.zeros(1, 4, 2, 2), torch.zeros(1, 8, 1, 1)]
    ft = [torch.full((1, 4, 2, 2), 10.0), torch.full((1, 8, 1, 1), 20.0)]
    assert feature_transfer_loss(z_s, z_t).item() == pytest.approx(3.0)
    assert feature_transfer_loss(z_s, z_t, rec, ft).item() == pytest.approx(3.0 + 0.05 * 30.0)
    assert feature_transfer_loss(z_s, z_t, rec, ft, recon_weight=0).item() == pytest.approx(3.0)
    # equal projections and perfect reconstruction: zero
    assert feature_transfer_loss(z_t, z_t, ft, ft).item() == 0.0


def test_match_levels_pairs_deepest() -> None:
    s = [torch.zeros(1, 1, 8, 8), torch.zeros(1, 2, 4, 4), torch.zeros(1, 4, 2, 2)]
    t = [torch.zeros(1, 5, 4, 4), torch.zeros(1, 6, 2, 2)]
    ms, mt = match_levels(s, t)
    assert [f.shape[1] for f in ms] == [2, 4] and [f.shape[1] for f in mt] == [5, 6]


def test_projectors_absorb_widths_depths_and_sizes() -> None:
    # student channels (8, 16, 32); a wider teacher with 2 levels at other resolutions
    ft = FeatureTransfer([8, 16, 32], {"haze": [8, 16, 32], "rain": [24, 48]})
    s = [torch.randn(2, 8, 16, 16), torch.randn(2, 16, 8, 8), torch.randn(2, 32, 4, 4)]
    t_rain = [torch.randn(2, 24, 16, 16), torch.randn(2, 48, 2, 2)]
    z_s, z_t, rec, f = ft.project("rain", s, t_rain)
    assert [z.shape for z in z_s] == [z.shape for z in z_t] == [torch.Size([2, 8, 8, 8]), torch.Size([2, 16, 4, 4])]
    assert [r.shape for r in rec] == [x.shape for x in f] == [torch.Size([2, 24, 8, 8]), torch.Size([2, 48, 4, 4])]
    loss = feature_transfer_loss(z_s, z_t, rec, f)
    loss.backward()
    assert ft.teachers["rain"].proj[0].body[0].weight.grad is not None
    assert ft.teachers["rain"].inv[0].body[0].weight.grad is not None
    assert ft.student.proj[1].body[0].weight.grad is not None
    assert ft.student.proj[0].body[0].weight.grad is None  # level not paired with this teacher
    z_s, z_t, rec, f = ft.project("haze", s, [x.clone() for x in s])
    assert [z.shape[1] for z in z_s] == [4, 8, 16]
