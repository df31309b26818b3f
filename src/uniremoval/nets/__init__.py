"""Network architectures, their registry and their descriptors.

- :mod:`.registry`: :func:`register` an architecture under a name, :func:`build` it from a
  model file's config (attaching its descriptor), list what is :func:`available`;
- :mod:`.descriptor`: :class:`NetDescriptor`, what a network needs and supports (size
  multiple, feature levels, precisions, tiling, growth), and the protocol it stands for;
- :func:`pad_to_multiple`: the padding every caller of a network uses;
- :func:`features`: a network's feature levels, the cheap way when it has one;
- :func:`grow`: a deeper network started from a shallower trained one;
- :func:`thumbnail`: the context input of a whole photo for networks that read one
  (descriptor ``context_size``; :mod:`.globalctx`, :mod:`.ctxnet`);
- :func:`warm_start`: a ``nafnet-ctx`` / ``uniremoval-net`` started from a NAFNet's weights
  wherever they fit (not the same function unless the layouts match; :func:`grow` is).
"""
from __future__ import annotations

from typing import Any

import torch

from .descriptor import NetDescriptor, unwrap
from .grow import grow
from .padding import pad_to_multiple, reflect_indices
from .registry import available, build, descriptor, register, size_multiple
from .globalctx import thumbnail  # after the registry: its network modules register on import
from .ctxnet import warm_start

__all__ = [
    "NetDescriptor", "available", "build", "descriptor", "features", "grow", "pad_to_multiple",
    "reflect_indices", "register", "size_multiple", "thumbnail",
    "warm_start",
]


def features(net: Any, x: torch.Tensor, context: torch.Tensor | None = None) -> list[torch.Tensor]:
    """The feature levels of ``net`` for ``x`` (finest first, bottleneck last).

    Runs only the encoder when the descriptor says the network has one (``net.encode``),
    else the whole network with ``return_features=True``. ``context`` (the whole photo's
    thumbnail) is passed to networks that take one (descriptor ``context_size``).

    Raises:
        ValueError: the network declares no feature levels.
    """
    desc = descriptor(net)
    if not desc.has_features:
        raise ValueError(f"architecture {desc.arch} has no feature levels (see uniremoval.nets.descriptor)")
    kw = {"context": context} if desc.takes_context else {}
    if desc.encoder_features:
        return list(unwrap(net).encode(x, **kw))
    _, feats = net(x, return_features=True, **kw)
    return list(feats)
