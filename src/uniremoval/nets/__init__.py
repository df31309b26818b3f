"""Network architectures and the registry that builds them from a model file's config.

An architecture registers itself under a short name with :func:`register`; a model file's
JSON config names it and gives its keyword arguments, so loading never unpickles code.
"""
from __future__ import annotations

from typing import Any, Callable, TypeVar

from torch import nn

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
    from . import discriminator, nafnet, plain, projector, vgg  # noqa: F401


def available() -> list[str]:
    """Names of all registered architectures."""
    _load_builtin()
    return sorted(_REGISTRY)


def build(name: str, **kwargs: Any) -> nn.Module:
    """Build architecture ``name`` with keyword arguments ``kwargs``."""
    _load_builtin()
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown architecture {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None
    return factory(**kwargs)


def size_multiple(net: nn.Module) -> int:
    """Side length the network's input must be a multiple of (1 when it has no downsampling)."""
    return int(getattr(net, "size_multiple", 1))
