"""Adversarial losses for stage 2 (METHOD.md, "Stage 2"): LSGAN, hinge and the R1 penalty.

The student is the generator; a PatchGAN discriminator (``nets.build("patchgan")``) scores
restored real photos ("fake") against unpaired clean photos ("real"). Every function takes the
discriminator's raw patch logits (N, 1, H', W') and averages over patches and batch, so the
losses do not depend on the image size. Computed in float32 (AMP outputs are upcast) because
the squared/relu terms are what overflow first in fp16.
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

GanLoss = Literal["lsgan", "hinge"]


def d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: GanLoss = "lsgan") -> torch.Tensor:
    """Discriminator loss: clean photos should score "real", restored photos "fake".

    lsgan (Mao et al. 2017): 0.5 * [(D(c) - 1)^2 + D(G(r))^2], targets 1 / 0.
    hinge (Lim & Ye 2017; Miyato et al. 2018): relu(1 - D(c)) + relu(1 + D(G(r))).
    """
    real, fake = real_logits.float(), fake_logits.float()
    if kind == "lsgan":
        return 0.5 * ((real - 1.0).pow(2).mean() + fake.pow(2).mean())
    if kind == "hinge":
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
    raise ValueError(f"unknown GAN loss {kind!r} (lsgan or hinge)")


def g_loss(fake_logits: torch.Tensor, kind: GanLoss = "lsgan") -> torch.Tensor:
    """Generator (student) loss: restored photos should score "real".

    lsgan: 0.5 * (D(G(r)) - 1)^2.  hinge: -D(G(r)) (the usual generator side of the hinge GAN).
    """
    fake = fake_logits.float()
    if kind == "lsgan":
        return 0.5 * (fake - 1.0).pow(2).mean()
    if kind == "hinge":
        return -fake.mean()
    raise ValueError(f"unknown GAN loss {kind!r} (lsgan or hinge)")


def r1_penalty(real_logits: torch.Tensor, real_images: torch.Tensor) -> torch.Tensor:
    """R1 gradient penalty (Mescheder et al. 2018): E ||grad_x D(x)||^2 on real (clean) photos.

    ``real_images`` must have ``requires_grad=True`` and ``real_logits`` must be computed from
    them. Returns the mean over the batch of the squared gradient norm; the caller scales it by
    gamma / 2 (and by the lazy interval when the penalty is applied every k steps).
    """
    if not real_images.requires_grad:
        raise ValueError("r1_penalty: real_images must require grad (call .requires_grad_() before D)")
    (grad,) = torch.autograd.grad(real_logits.float().sum(), real_images, create_graph=True)
    return grad.float().pow(2).flatten(1).sum(1).mean()


def d_steps_at(step: int, ratio: float) -> int:
    """How many discriminator updates to make at (0-based) training step ``step``.

    ``ratio`` = D updates per G update: 1 (alternate), 2 (two D steps each step), 0.5 (one D
    step every other step). A pure function of the step, so a resumed run makes the same
    updates as an uninterrupted one.
    """
    if ratio < 0:
        raise ValueError("D/G ratio must be >= 0")
    return int((step + 1) * ratio + 1e-9) - int(step * ratio + 1e-9)
