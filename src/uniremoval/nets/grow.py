"""Growing a trained network into a deeper one of the same architecture."""
from __future__ import annotations

import torch
from torch import nn

from .registry import descriptor


def grow(small: nn.Module, big: nn.Module, tol: float = 1e-5) -> None:
    """Load ``small``'s weights into the deeper ``big``; the blocks ``small`` lacks stay the
    identities they are when freshly built (``descriptor(big).grow_block``), and so do the
    modules the descriptor lists in ``zero_init_modules`` (a NAFNet grows into a ``nafnet-ctx``
    whose FiLM conditioning starts at zero).

    ``big`` keeps its train/eval mode; ``small`` is left in eval mode.

    Raises:
        ValueError: ``big``'s architecture cannot be grown, a weight of ``small`` has no place
            of the same shape in ``big``, ``big`` has a weight beyond ``small``'s that is not
            part of a whole new block, or the two differ by more than ``tol`` on a test input
            (a new block is not a no-op).
    """
    desc = descriptor(big)
    if desc.grow_block is None:
        raise ValueError(f"cannot grow into the run's network: architecture {desc.arch} cannot be grown")
    state = small.state_dict()
    target = big.state_dict()
    bad = [k for k, v in state.items() if k not in target or target[k].shape != v.shape]
    if bad:
        raise ValueError(f"cannot grow into the run's network: {bad[0]} has no place of that shape")
    new_blocks = [
        name + "." for name, m in big.named_modules()
        if isinstance(m, desc.grow_block) and not any(k.startswith(name + ".") for k in state)
    ]
    fresh = set(desc.zero_init_modules)
    stray = [
        k for k in target
        if k not in state and not any(k.startswith(b) for b in new_blocks) and not fresh & set(k.split(".")[:-1])
    ]
    if stray:
        raise ValueError(f"cannot grow into the run's network: it lacks {stray[0]}, which is not part of a new block")
    big.load_state_dict(state, strict=False)
    # The claim, tested: a mismatch here means a new block is not a no-op (e.g. a different
    # window), and the grown network would not start from ``small``.
    m = desc.size_multiple
    x = torch.rand(1, 3, 4 * m, 4 * m, generator=torch.Generator().manual_seed(0))
    was_training = big.training
    small.eval()
    big.eval()
    with torch.no_grad():
        diff = (small(x) - big(x)).abs().max().item()
    big.train(was_training)
    if diff > tol:
        raise ValueError(f"the grown network differs from it by {diff:.2g} on a test input")
