"""The frequency reconstruction term: what it measures, and that stage 1 trains with it."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_stage_transfer import SwappedDark, ToyTuples, cfg_for, random_nafnet  # noqa: E402

from uniremoval.losses.frequency import fft_l1  # noqa: E402
from uniremoval.stages.transfer import train_transfer  # noqa: E402


def _pixel_l1(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().mean())


def test_zero_for_equal_symmetric_and_shape_checked() -> None:
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(2, 3, 32, 40, generator=g), torch.rand(2, 3, 32, 40, generator=g)
    assert float(fft_l1(a, a)) == 0.0
    assert float(fft_l1(a, b)) == pytest.approx(float(fft_l1(b, a)), rel=1e-6)
    with pytest.raises(ValueError, match="shapes differ"):
        fft_l1(a, b[..., :39])


def test_broadband_error_counts_tone_error_hardly() -> None:
    """Orthonormal spectrum: white noise of std s gives about 0.71 x its pixel L1 (real and
    imaginary parts, each s / sqrt 2), whatever the crop size; a global offset of the same
    pixel L1 is one coefficient out of H (W / 2 + 1), so it is nearly free; a blur's missing
    high frequencies count about as much as white noise of the same pixel L1."""
    g = torch.Generator().manual_seed(1)
    for size in (32, 128):
        clean = torch.rand(1, 3, size, size, generator=g)
        noisy = clean + 0.05 * torch.randn(clean.shape, generator=g)
        ratio = float(fft_l1(noisy, clean)) / _pixel_l1(noisy, clean)
        assert 0.6 < ratio < 0.8, (size, ratio)
        offset = clean + _pixel_l1(noisy, clean)  # the same pixel L1, all of it tone
        assert float(fft_l1(offset, clean)) < 0.05 * float(fft_l1(noisy, clean))
    # A box blur of a random image: the error is high-frequency, so its ratio is near noise's.
    blurred = F.avg_pool2d(F.pad(clean, (2, 2, 2, 2), mode="replicate"), 5, 1)
    assert float(fft_l1(blurred, clean)) / _pixel_l1(blurred, clean) > 0.5


def test_gradient_flows_in_float32_under_bf16_inputs() -> None:
    out = torch.rand(1, 3, 16, 16).to(torch.bfloat16).requires_grad_()
    loss = fft_l1(out, torch.rand(1, 3, 16, 16))
    assert loss.dtype == torch.float32
    loss.backward()
    assert out.grad is not None and bool(out.grad.abs().sum() > 0)


def test_stage1_trains_on_the_fft_term_alone(tmp_path: Path) -> None:
    """With every other term off, the fft term alone moves the student, and from the samples it
    sees: changing the dark inputs changes the trained student (so the term is in the loss)."""
    kinds = ["veil", "dark"]
    off = ("loss.gt_weight=0", "loss.out_weight=0", "loss.feat_weight=0", "loss.img_weight=0", "loss.fcl_weight=0")

    def student_after(ds: ToyTuples) -> dict[str, torch.Tensor]:
        teachers = {"veil": random_nafnet(1, width=8, enc_blocks=[1, 1], middle_blocks=1), "dark": random_nafnet(2, width=8, enc_blocks=[1, 1], middle_blocks=1)}
        torch.manual_seed(0)
        sub = tmp_path / f"run{len(list(tmp_path.iterdir()))}"
        cfg = cfg_for(sub, "run.steps=2", "data.val_count=0", "optim.lr=1e-2", *off, "loss.fft_weight=1.0")
        assert cfg.loss.fft_weight == 1.0
        res = train_transfer(cfg, ds, {}, teachers=teachers)
        assert res.step == 2
        return {n: p.detach().clone() for n, p in res.model.student.state_dict().items()}

    a, b = student_after(ToyTuples(kinds)), student_after(SwappedDark(kinds))
    assert any(not torch.allclose(a[n], b[n]) for n in a)
