"""The architecture registry: networks built by name from a model file's config.

An architecture registers itself under a short name with :func:`register`; a model file's
JSON config names it and gives its keyword arguments, so loading never unpickles code.
:func:`build` attaches the network's :class:`~uniremoval.nets.descriptor.NetDescriptor`.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, TypeVar

from torch import nn

from .descriptor import NetDescriptor, describe

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
_T = TypeVar("_T", bound=Callable[..., nn.Module])


def register(name: str) -> Callable[[_T], _T]:
    """Class/factory decorator that makes an architecture buildable by name."""

    def deco(factory: _T) -> _T:
        if name in _REGISTRY and _REGISTRY[name] is not factory:
            raise ValueError(f"architecture {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return deco


def _load_builtin() -> None:
    # Imported lazily so `import uniremoval` stays cheap; each module registers on import.
    from . import ctxnet, discriminator, hazeprior, nafnet, plain, projector, vgg  # noqa: F401


def available() -> list[str]:
    """Names of all registered architectures."""
    _load_builtin()
    return sorted(_REGISTRY)


def build(name: str, **kwargs: Any) -> nn.Module:
    """Build architecture ``name`` with keyword arguments ``kwargs``; the network carries its
    descriptor as ``net.descriptor`` (its ``arch`` is ``name``)."""
    _load_builtin()
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown architecture {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None
    net = factory(**kwargs)
    net.descriptor = dataclasses.replace(describe(net), arch=name)
    return net


def descriptor(net: Any) -> NetDescriptor:
    """The descriptor of ``net`` (see :func:`uniremoval.nets.descriptor.describe`)."""
    _load_builtin()  # the built-in describers register on import
    return describe(net)


def size_multiple(net: Any) -> int:
    """Side length the network's input must be a multiple of (1 when it has no downsampling)."""
    return descriptor(net).size_multiple
