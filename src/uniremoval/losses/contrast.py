"""Contrastive losses of stage 1 (and of stage 2's extended instance contrast), METHOD.md term 4.

Two grains:

- **Image grain**, the ratio form of AECR-Net / Chen et al. (CVPR 2022)::

      L_img = sum_i w_i * D(phi_i(a), phi_i(p)) / (D(phi_i(a), phi_i(n)) + eps)

  ``a`` is the restored image (anchor), ``p`` a positive (teacher output or ground truth),
  ``n`` a negative (the degraded input); ``phi_i`` are frozen multi-level features, ``D`` is
  the mean absolute difference and ``w = (1/32, 1/16, 1/8, 1/4, 1)`` (finest level first).
  Several negatives per anchor ("hard" negatives: every degraded input in the batch) enter as
  the mean of their distances. Positives and negatives are constants (detached): only the
  anchor is pulled/pushed.
- **Feature grain**, InfoNCE on pooled, L2-normalised vectors with temperature ``tau``
  (:func:`info_nce`, :func:`feature_contrast`).

Feature extractors phi (:class:`FeatureExtractor`) are frozen modules returning a list of
feature maps: :class:`TeacherEncoderFeatures` (a trained teacher's encoder; the default since
it needs no download) and :class:`VGGFeatures` (VGG-19 from a weights file the user supplies).
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol, Sequence, Union, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn

#: Level weights of the image-grain ratio contrast, finest level first (Chen et al., AECR-Net).
DEFAULT_WEIGHTS: tuple[float, ...] = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)

#: One feature map per level.
Feats = Sequence[torch.Tensor]
#: Either one negative per level (a list of tensors) or several negatives (a list of such lists).
Negatives = Union[Sequence[torch.Tensor], Sequence[Sequence[torch.Tensor]]]


def mean_l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """D: mean absolute difference (``b`` may broadcast against ``a``), computed in float32."""
    return (a.float() - b.float()).abs().mean()


def level_weights(levels: int, weights: Sequence[float] = DEFAULT_WEIGHTS) -> list[float]:
    """The weights of ``levels`` feature levels: the *last* ``levels`` of ``weights``.

    The deepest level keeps weight 1 whatever the number of levels (a teacher encoder with 4
    levels gets (1/16, 1/8, 1/4, 1)); more levels than weights is an error.
    """
    weights = list(weights)
    if levels > len(weights):
        raise ValueError(f"{levels} feature levels but only {len(weights)} weights")
    return weights[len(weights) - levels :]


def _as_negative_list(negative_feats: Negatives, levels: int) -> list[list[torch.Tensor]]:
    if len(negative_feats) == 0:
        raise ValueError("no negatives")
    first = negative_feats[0]
    if isinstance(first, torch.Tensor):  # one negative: a list of levels
        negs = [list(negative_feats)]  # type: ignore[arg-type]
    else:
        negs = [list(n) for n in negative_feats]  # type: ignore[union-attr]
    for n in negs:
        if len(n) != levels:
            raise ValueError(f"a negative has {len(n)} levels, the anchor {levels}")
    return negs


def ratio_contrast(
    anchor_feats: Feats,
    positive_feats: Feats,
    negative_feats: Negatives,
    weights: Sequence[float] = DEFAULT_WEIGHTS,
    eps: float = 1e-7,
) -> torch.Tensor:
    """Image-grain ratio contrast ``sum_i w_i * D(a_i, p_i) / (mean_n D(a_i, n_i) + eps)``.

    Args:
        anchor_feats: phi_i of the restored images, one tensor per level (gradients flow).
        positive_feats: phi_i of the positives, same shapes (detached here).
        negative_feats: one negative (a list of levels) or several (a list of lists); each
            tensor must broadcast against the anchor's (a (1, C, H, W) negative is compared
            with every anchor in the batch, see :func:`batch_negatives`). Detached here.
        weights: level weights, finest first; the last ``len(anchor_feats)`` are used.
        eps: keeps the ratio finite when an anchor equals its negative (then the term is
            ``D(a, p) / eps``: huge, but finite, and its gradient pushes the anchor away).

    Returns a float32 scalar. ``D`` averages over the whole batch (as AECR-Net does), so the
    ratio is one of batch means, not a mean of per-sample ratios.
    """
    levels = len(anchor_feats)
    if len(positive_feats) != levels:
        raise ValueError(f"positive has {len(positive_feats)} levels, anchor {levels}")
    negs = _as_negative_list(negative_feats, levels)
    w = level_weights(levels, weights)
    total = anchor_feats[0].new_zeros((), dtype=torch.float32)
    for i, a in enumerate(anchor_feats):
        d_ap = mean_l1(a, positive_feats[i].detach())
        if isinstance(negative_feats, BatchNegatives):  # same value as the loop below, one op
            d_an = _pairwise_l1(a, negative_feats.batch[i].detach())
        else:
            d_an = torch.stack([mean_l1(a, n[i].detach()) for n in negs]).mean()
        total = total + w[i] * d_ap / (d_an + eps)
    return total


class BatchNegatives(list):
    """Every sample of a batch as a negative of every anchor (what :func:`batch_negatives` returns).

    It is a list of per-sample negatives (so it works wherever a list of negatives does), and
    it keeps the whole batch per level so :func:`ratio_contrast` can compute the mean over all
    (anchor, negative) pairs in one broadcast op per level instead of one op per negative.
    """

    def __init__(self, feats: Feats) -> None:
        self.batch = [f for f in feats]
        n = feats[0].shape[0]
        super().__init__([[f[j : j + 1] for f in feats] for j in range(n)])


def batch_negatives(feats: Feats) -> BatchNegatives:
    """Split a batch of negative features into per-sample negatives of shape (1, C, H, W).

    Used for "hard" negatives: with ``negative_feats=batch_negatives(phi(inputs))`` every
    anchor is compared with every degraded input of the batch (its own included).
    """
    return BatchNegatives(feats)


def _pairwise_l1(a: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    """mean over (anchor b, negative j) of mean |a_b - n_j|, in chunks to bound memory."""
    a, n = a.float(), n.float()
    per = a[0].numel() * n.shape[0]
    chunk = max(1, (1 << 26) // max(1, per))  # ~256 MB of float32 per chunk
    total = a.new_zeros(())
    for i in range(0, a.shape[0], chunk):
        total = total + (a[i : i + chunk].unsqueeze(1) - n.unsqueeze(0)).abs().sum()
    return total / (a.numel() * n.shape[0])


def pool_normalize(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) or (N, D) -> (N, D): global average pool, then L2-normalise (float32)."""
    x = x.float()
    if x.dim() == 4:
        x = x.mean(dim=(2, 3))
    return F.normalize(x, dim=-1)


def info_nce(anchor: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor, tau: float = 0.1) -> torch.Tensor:
    """InfoNCE ``-log(exp(a.p/tau) / (exp(a.p/tau) + sum_j exp(a.n_j/tau)))``, mean over anchors.

    Vectors are L2-normalised here (feature maps are average-pooled first), so the dot
    products are cosine similarities.

    Args:
        anchor: (N, D) or (N, C, H, W).
        positive: same shape as ``anchor``: one positive per anchor.
        negatives: (M, D) / (M, C, H, W) shared by every anchor, or (N, M, D) /
            (N, M, C, H, W) per anchor.
        tau: temperature (> 0).
    """
    if tau <= 0:
        raise ValueError("tau must be > 0")
    a = pool_normalize(anchor)
    p = pool_normalize(positive)
    if negatives.dim() in (3, 5):  # per anchor: (N, M, D) or (N, M, C, H, W)
        neg = negatives.float()
        neg = neg.mean(dim=(-2, -1)) if neg.dim() == 5 else neg
        if neg.shape[0] != a.shape[0]:
            raise ValueError(f"per-anchor negatives for {neg.shape[0]} anchors, got {a.shape[0]} anchors")
        l_neg = torch.einsum("nd,nmd->nm", a, F.normalize(neg, dim=-1))
    elif negatives.dim() in (2, 4):  # shared: (M, D) or (M, C, H, W)
        l_neg = a @ pool_normalize(negatives).t()
    else:
        raise ValueError(f"negatives must have 2 to 5 dimensions, got {negatives.dim()}")
    l_pos = (a * p).sum(dim=-1, keepdim=True)
    logits = torch.cat([l_pos, l_neg], dim=1) / tau
    return F.cross_entropy(logits, torch.zeros(a.shape[0], dtype=torch.long, device=a.device))


def feature_contrast(
    student: Feats,
    teacher: Feats,
    extra_negatives: Sequence[torch.Tensor] | None = None,
    tau: float = 0.1,
) -> torch.Tensor:
    """Feature-grain InfoNCE in the common projected space, averaged over levels.

    For sample b at level l: anchor = the student's projected feature ``student[l][b]``,
    positive = its own teacher's projected feature of the same sample ``teacher[l][b]``,
    negatives = the teacher-space features of every *other* sample in the batch (a batch
    holds every kind, so these come from all teachers) and the student's features of the
    other samples; optionally ``extra_negatives[l]`` (N, M, C, H, W) or (N, M, D) per anchor,
    e.g. the other teachers' features of the same sample.
    The teacher features are constants (detached): the projectors of the teachers learn
    only through the transfer term.
    """
    if len(student) != len(teacher):
        raise ValueError("student and teacher need the same number of levels")
    total = student[0].new_zeros((), dtype=torch.float32)
    for lvl, (s, t) in enumerate(zip(student, teacher)):
        a = pool_normalize(s)
        p = pool_normalize(t.detach())
        n = a.shape[0]
        # (N, N-1, D): for each anchor, the other samples' teacher and student vectors.
        off = ~torch.eye(n, dtype=torch.bool, device=a.device)
        negs = [p.unsqueeze(0).expand(n, n, -1)[off].view(n, n - 1, -1), a.detach().unsqueeze(0).expand(n, n, -1)[off].view(n, n - 1, -1)]
        if extra_negatives is not None:
            e = extra_negatives[lvl].detach().float()
            e = e.mean(dim=(-2, -1)) if e.dim() == 5 else e
            negs.append(F.normalize(e, dim=-1))
        total = total + info_nce(a, p, torch.cat(negs, dim=1), tau)
    return total / len(student)


# --------------------------------------------------------------------------------------
# Frozen feature extractors phi
# --------------------------------------------------------------------------------------


@runtime_checkable
class FeatureExtractor(Protocol):
    """A frozen network mapping images (N, 3, H, W) in [0, 1] to a list of feature maps."""

    def __call__(self, x: torch.Tensor) -> list[torch.Tensor]: ...


def freeze(net: nn.Module) -> nn.Module:
    """No gradients for ``net``'s parameters, eval mode (returned for chaining)."""
    net.requires_grad_(False)
    return net.eval()


class _Frozen(nn.Module):
    """Base: stays in eval mode whatever ``train()`` is called with (no dropout/BN drift)."""

    def train(self, mode: bool = True) -> "_Frozen":
        return super().train(False)


class TeacherEncoderFeatures(_Frozen):
    """phi = the feature levels (encoder + bottleneck) of a frozen restoration network.

    Computed by :func:`uniremoval.nets.features`: only the encoder runs when the network's
    descriptor says it has one (NAFNet), else the whole network with
    ``return_features=True``. Gradients flow to the *input* (the anchor is the student's
    output) but never into the network's weights.

    Raises:
        ValueError: the network declares no feature levels (its descriptor's
            ``feature_channels`` is empty).
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        from .. import nets

        desc = nets.descriptor(net)
        if not desc.has_features:
            raise ValueError(f"a {desc.arch} network has no feature levels: it cannot be a contrast feature extractor")
        self.net = freeze(net)
        self.feature_channels = list(desc.feature_channels)
        self.size_multiple = desc.size_multiple

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        from .. import nets

        return nets.features(self.net, x)


class VGGFeatures(_Frozen):
    """phi = VGG-19 features (relu1_1, relu2_1, relu3_1, relu4_1, relu5_1) from a weights file.

    ``path`` is a torchvision-layout state dict (``features.N.weight``/``.bias``; a ``.pth``
    read with ``torch.load(weights_only=True)`` or a ``.safetensors``); nothing is downloaded.
    Inputs in [0, 1] are normalised with the ImageNet mean/std the weights expect.
    """

    def __init__(self, path: str | Path, layers: Sequence[int] | None = None) -> None:
        super().__init__()
        from ..nets.vgg import VGG19Features

        self.vgg = freeze(VGG19Features.from_file(path, layers=layers))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.vgg(x)
