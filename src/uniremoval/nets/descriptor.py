"""What a network needs and supports, written down once: the network descriptor.

:func:`uniremoval.nets.build` attaches a :class:`NetDescriptor` to every network it builds
(``net.descriptor``); code that runs networks (the inference engine, ONNX export, feature
extractors, model growth) reads it through :func:`describe` instead of probing attributes or
checking for a particular class. An architecture declares its descriptor with a describer,
a function ``(net) -> NetDescriptor`` registered for its class with :func:`describer`.

The protocol a restoration network follows
------------------------------------------

Input and output
    ``net(x)`` maps a float (N, 3, H, W) batch in [0, 1] to a batch of the same shape.
    H and W must be multiples of ``size_multiple`` (a U-Net halving the resolution k times
    needs 2**k); callers pad with :func:`uniremoval.nets.pad_to_multiple` and crop back.

Feature levels
    A network with ``feature_channels`` (non-empty, one entry per level, finest first, the
    last one the bottleneck) also accepts ``net(x, return_features=True)`` and then returns
    ``(out, feats)`` with ``feats[i].shape[1] == feature_channels[i]``. When
    ``encoder_features`` is true it also has ``net.encode(x) -> feats`` that computes the same
    features without running the decoder; :func:`uniremoval.nets.features` picks the cheaper
    of the two. Stage 1's feature transfer and contrast and stage 2's cluster contrast need
    features; a network without them cannot be a teacher for those terms.

Precision
    ``precisions`` lists the autocast compute dtypes the network runs correctly under
    (``fp32``, ``bf16``, ``fp16``). The engine refuses an explicit precision outside it and
    falls back to fp32 for ``auto``.

Tiling
    ``receptive_radius`` is how far (in input pixels) an output pixel can see, or None when
    it is unbounded or unknown (global pooling, NAFNet's 192 px TLC windows). Tiled inference
    equals one pass exactly when the radius is at most a quarter of the tile overlap (the
    engine's blend ignores the outer quarter of each overlap); otherwise tiling is an
    approximation whose quality depends on the tile size.

    ``tile_scale`` enlarges the engine's default tile side (``tile="auto"``) for a network
    whose activations per input pixel are smaller than a full-resolution U-Net's (1.5 for
    ``uniremoval-net``, whose top level runs at half resolution: fewer, larger tiles waste less
    on overlaps and per-call overhead at the same cache footprint).

Growth
    ``grow_block`` is the block class whose freshly initialised instances compute the
    identity: a deeper network of the same architecture can then start from a shallower
    trained one (:func:`uniremoval.nets.grow`), the extra blocks being inserted as no-ops.
    None means the architecture cannot be grown.

Context
    ``context_size`` is not None for a network that reads the whole photo: ``net(x,
    context=thumb)`` with ``thumb = nets.thumbnail(photo, context_size)`` (N or 1, 3,
    context_size, context_size), the area-downsampled WHOLE photo, not the tile or crop ``x``
    is cut from. The engine computes it once per photo from the unpadded image and passes the
    same one with every tile, so tiles share the photo's tone; ONNX exports take it as a
    second input ``context`` (batch 1). ``context`` is optional: without it the network uses
    ``x``'s own thumbnail (training on crops before the data supplies whole-photo thumbnails).
    ``encode(x, context=None)`` and ``return_features`` follow the same rule.

    ``zero_init_modules`` names modules (attribute names anywhere in the network, e.g.
    ``film``) whose freshly built weights leave the function unchanged: :func:`grow` accepts
    them as new, like new blocks, so a conditioned network starts from an unconditioned one.

Photo prior
    ``photo_prior`` is true for a network ``body(prior(x))`` whose ``prior`` reads the whole
    photo (:class:`uniremoval.nets.hazeprior.PriorNet`): ``net.prior.apply_photo(photo)``
    runs once per photo and only ``net.body`` is tiled. Everything else in the descriptor is
    the body's.

Modules with no registered describer (a test's own network, a wrapper of another network)
are described from the attributes this protocol used to be implicit in: ``size_multiple``,
``feature_channels`` and ``receptive_radius``; an attached ``descriptor`` wins over all.
Wrappers (``DistributedDataParallel``'s ``module``, ``torch.compile``'s ``_orig_mod``) are
looked through.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from torch import nn

#: Every autocast compute dtype the engine knows, by its precision name.
ALL_PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")


@dataclass(frozen=True)
class NetDescriptor:
    """What a network needs and supports (see the module docstring for the protocol)."""

    #: Registry name when built by :func:`uniremoval.nets.build`, else the class name.
    arch: str
    size_multiple: int = 1
    feature_channels: tuple[int, ...] = ()
    encoder_features: bool = False
    precisions: tuple[str, ...] = ALL_PRECISIONS
    receptive_radius: int | None = None
    grow_block: type[nn.Module] | None = None
    context_size: int | None = None
    tile_scale: float = 1.0
    zero_init_modules: tuple[str, ...] = ()
    photo_prior: bool = False

    @property
    def has_features(self) -> bool:
        """Whether the network returns feature levels (``return_features=True``)."""
        return bool(self.feature_channels)

    @property
    def growable(self) -> bool:
        """Whether a deeper network of this architecture can start from a shallower one."""
        return self.grow_block is not None

    @property
    def takes_context(self) -> bool:
        """Whether the network reads a thumbnail of the whole photo (``context=``)."""
        return self.context_size is not None

    def supports(self, precision: str) -> bool:
        """Whether the network runs under ``precision`` (``fp32``, ``bf16`` or ``fp16``)."""
        return precision in self.precisions

    def tiling_exact(self, overlap: int) -> bool:
        """Whether tiles overlapping by ``overlap`` pixels give exactly the one-pass output."""
        return self.receptive_radius is not None and self.receptive_radius <= overlap // 4


_Describer = Callable[[Any], NetDescriptor]
_DESCRIBERS: dict[type, _Describer] = {}


def describer(cls: type) -> Callable[[_Describer], _Describer]:
    """Decorator registering ``fn(net) -> NetDescriptor`` for instances of ``cls`` (and of
    its subclasses without their own)."""

    def deco(fn: _Describer) -> _Describer:
        _DESCRIBERS[cls] = fn
        return fn

    return deco


def unwrap(net: Any) -> Any:
    """The network inside data-parallel and ``torch.compile`` wrappers (``net`` otherwise)."""
    for _ in range(8):  # wrappers of wrappers, but never a cycle
        mods = getattr(net, "_modules", None) or {}
        if isinstance(net, (nn.DataParallel, nn.parallel.DistributedDataParallel)) and "module" in mods:
            net = mods["module"]
        elif type(net).__name__ == "OptimizedModule" and "_orig_mod" in mods:
            net = mods["_orig_mod"]
        else:
            break
    return net


def _from_attributes(net: Any) -> NetDescriptor:
    # The legacy, implicit protocol (module docstring): one place reads it.
    chans = getattr(net, "feature_channels", None) or ()
    radius = getattr(net, "receptive_radius", None)
    return NetDescriptor(
        arch=type(net).__name__,
        size_multiple=int(getattr(net, "size_multiple", 1)),
        feature_channels=tuple(int(c) for c in chans),
        receptive_radius=None if radius is None else int(radius),
    )


def describe(net: Any) -> NetDescriptor:
    """The descriptor of ``net``: the one :func:`uniremoval.nets.build` attached, else its
    class's describer's, else one read from the legacy attributes (module docstring)."""
    attached = getattr(net, "__dict__", {}).get("descriptor")
    if isinstance(attached, NetDescriptor):
        return attached
    inner = unwrap(net)
    if inner is not net:
        return describe(inner)
    for cls in type(net).__mro__:
        fn = _DESCRIBERS.get(cls)
        if fn is not None:
            return fn(net)
    return _from_attributes(net)
