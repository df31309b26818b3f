"""Extended instance contrast on real photos (stage 2, METHOD.md).

Stage 1's image-grain ratio contrast (:func:`uniremoval.losses.contrast.ratio_contrast`),
extended to photos without ground truth: anchor = S(r) (the student's restoration of a real
photo r), positive = a frozen pseudo-target, negative = r itself. The pseudo-target is the
matching teacher's output where the photo's kind is known (from its folder) and a teacher for
that kind was given, else the frozen initial (stage-1) student's output: the adapted student
may move toward "cleaner" but stays anchored to what the supervised networks would produce,
and away from the degraded input.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import nn

from .. import nets
from .contrast import DEFAULT_WEIGHTS, FeatureExtractor, ratio_contrast


@torch.no_grad()
def pseudo_targets(
    real: torch.Tensor,
    kinds: Sequence[str],
    teachers: Mapping[str, nn.Module],
    fallback: nn.Module,
    context: torch.Tensor | None = None,
) -> tuple[torch.Tensor, list[str]]:
    """Frozen pseudo-targets for a batch of real photos, and which network made each.

    Samples whose kind has a teacher go through that teacher (one forward per kind present);
    all others through ``fallback`` (the frozen initial student). Inputs must already be a
    size multiple of every network (crops of the training loader are). ``context`` (each
    photo's whole-photo thumbnail) goes to the networks that read one.
    """
    out = torch.empty_like(real)
    source = ["student"] * len(kinds)
    rest = [i for i, k in enumerate(kinds) if k not in teachers]
    for kind, net in teachers.items():
        idx = [i for i, k in enumerate(kinds) if k == kind]
        if idx:
            sel = torch.as_tensor(idx, device=real.device)
            out[sel] = _run(net, real, sel, context).to(out.dtype)
            for i in idx:
                source[i] = kind
    if rest:
        sel = torch.as_tensor(rest, device=real.device)
        out[sel] = _run(fallback, real, sel, context).to(out.dtype)
    return out.clamp(0, 1), source


def _run(net: nn.Module, x: torch.Tensor, sel: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
    """``net`` on the selected samples, with their context when the network reads one."""
    if context is not None and nets.descriptor(net).context_size is not None:
        return net(x[sel], context=context[sel])
    return net(x[sel])


def extended_contrast(
    phi: FeatureExtractor,
    restored: torch.Tensor,
    pseudo_target: torch.Tensor,
    real_input: torch.Tensor,
    weights: Sequence[float] = DEFAULT_WEIGHTS,
) -> torch.Tensor:
    """``sum_i w_i * D(phi_i(S(r)), phi_i(pseudo)) / (D(phi_i(S(r)), phi_i(r)) + eps)``.

    Gradients flow only through the anchor ``restored``; phi is frozen and positive/negative
    features are computed without a graph.
    """
    anchor = phi(restored)
    with torch.no_grad():
        pos = phi(pseudo_target)
        neg = phi(real_input)
    return ratio_contrast(anchor, pos, neg, weights)
