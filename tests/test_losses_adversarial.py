"""Stage 2 adversarial losses: values on constructed logits, gradients, R1, D/G step ratio."""
from __future__ import annotations

import pytest
import torch

from uniremoval import nets
from uniremoval.losses.adversarial import d_loss, d_steps_at, g_loss, r1_penalty


def test_lsgan_values() -> None:
    ones, zeros = torch.ones(2, 1, 4, 4), torch.zeros(2, 1, 4, 4)
    assert float(d_loss(ones, zeros, "lsgan")) == 0.0  # perfect D
    assert float(d_loss(zeros, ones, "lsgan")) == pytest.approx(1.0)  # 0.5 * (1 + 1)
    assert float(g_loss(ones, "lsgan")) == 0.0
    assert float(g_loss(zeros, "lsgan")) == pytest.approx(0.5)


def test_hinge_values() -> None:
    r, f = torch.full((1, 1, 2, 2), 2.0), torch.full((1, 1, 2, 2), -3.0)
    assert float(d_loss(r, f, "hinge")) == 0.0  # both beyond the margin
    assert float(d_loss(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), "hinge")) == pytest.approx(2.0)
    assert float(g_loss(f, "hinge")) == pytest.approx(3.0)


def test_unknown_loss() -> None:
    with pytest.raises(ValueError):
        d_loss(torch.zeros(1), torch.zeros(1), "wgan")  # type: ignore[arg-type]


def test_generator_gradient_raises_fake_scores() -> None:
    """One gradient step on the fake logits under g_loss must raise them (toward 'real')."""
    for kind in ("lsgan", "hinge"):
        f = torch.zeros(1, 1, 3, 3, requires_grad=True)
        g_loss(f, kind).backward()  # type: ignore[arg-type]
        assert (f.grad < 0).all()


def test_r1_on_linear_discriminator() -> None:
    """For D(x) = sum(w * x) the input gradient is w, so R1 = ||w||^2 exactly."""
    w = torch.randn(1, 3, 4, 4)
    x = torch.rand(2, 3, 4, 4, requires_grad=True)
    logits = (x * w).flatten(1).sum(1)
    assert float(r1_penalty(logits, x)) == pytest.approx(float(w.pow(2).sum()), rel=1e-5)
    with pytest.raises(ValueError):
        r1_penalty(logits, x.detach())


def test_r1_backprops_into_patchgan() -> None:
    d = nets.build("patchgan", width=8, n_layers=2)
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    pen = r1_penalty(d(x), x)
    pen.backward()
    # every weight gets a gradient (biases do not enter the input gradient)
    assert pen.item() > 0 and all(p.grad is not None for n, p in d.named_parameters() if n.endswith("original"))


@pytest.mark.parametrize("ratio,expected", [(1, [1] * 6), (2, [2] * 6), (0.5, [0, 1] * 3), (0, [0] * 6)])
def test_d_steps_ratio(ratio: float, expected: list[int]) -> None:
    assert [d_steps_at(s, ratio) for s in range(6)] == expected
