"""YAML in, validated dataclasses out: the generic machinery behind :mod:`.config`.

:func:`load_config` reads a YAML file, applies overrides to the raw mapping (so a typo in an
override is caught like a typo in the file), then converts it with :func:`from_dict`, which
rejects unknown keys and wrong types with the dotted path of the offending key. A config class
may list renamed keys (``RENAMED = {"old": "new"}``): the old name is still read.
:func:`to_dict` / :func:`dump_yaml` give the resolved config back.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal, Mapping, TypeVar, Union

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or override is invalid; the message names the key and the reason."""


# --------------------------------------------------------------------------------------
# Generic dataclass <-> dict conversion with validation
# --------------------------------------------------------------------------------------


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against type ``tp`` and return it converted (e.g. int -> float)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(value, a, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"{where}: {value!r} is not a {' or '.join(_type_name(a) for a in args)}")
    if origin is Literal:
        # YAML 1.1 reads a bare off/on/no/yes as a boolean; `amp: off` means the word.
        if isinstance(value, bool) and "off" in args and value is False:
            value = "off"
        elif isinstance(value, bool) and "on" in args and value is True:
            value = "on"
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if origin in (list, tuple) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__} {value!r}")
        item = args[0] if args else Any
        return [_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__} {value!r}")
        vt = args[1] if len(args) == 2 else Any
        return {str(k): _convert(v, vt, _join(where, str(k))) for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        # YAML reads "2e-4" (no dot) as a string; accept it since it is unambiguous.
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported config type {tp!r}")  # a bug in a config class


def from_dict(cls: type[T], data: Any, where: str = "") -> T:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys and wrong types."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    renamed = _renamed(cls)
    both = [f"{old}/{new}" for old, new in renamed.items() if old in data and new in data]
    if both:
        raise ConfigError(f"{where or 'top level'}: {both[0]}: one key under two names (the first is the old name); give one")
    data = {renamed.get(k, k): v for k, v in data.items()}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where or 'top level'}: unknown key(s) {', '.join(unknown)}; known: {', '.join(fields)}")
    # A renamed field's messages give its old name too, which is what older configs say.
    label = {new: f"{_join(where, new)} (formerly {old})" for old, new in renamed.items()}
    kwargs = {name: _convert(data[name], hints[name], label.get(name, _join(where, name))) for name in fields if name in data}
    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where or 'config'}: {e}") from None
    validate = getattr(obj, "validate", None)
    if callable(validate):
        validate(where or "config")
    return obj


def _renamed(cls: Any) -> Mapping[str, str]:
    """A config class's old key -> current field map (its ``RENAMED`` class attribute)."""
    return getattr(cls, "RENAMED", None) or {}


def apply_renames(cls: Any, data: Any) -> None:
    """Move old keys of a raw config mapping to their current names, through the whole
    dataclass tree of ``cls``, in place (a later value under either name replaces an earlier)."""
    if not isinstance(data, dict) or not dataclasses.is_dataclass(cls):
        return
    for old, new in _renamed(cls).items():
        if old in data:
            data[new] = data.pop(old)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            apply_renames(hints[f.name], data.get(f.name))


def to_dict(obj: Any) -> Any:
    """Plain-Python (YAML-safe) form of a config dataclass tree."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): to_dict(v) for k, v in obj.items()}
    return obj


def dump_yaml(obj: Any) -> str:
    """YAML text of a config dataclass tree (keys in declaration order)."""
    return yaml.safe_dump(to_dict(obj), sort_keys=False, default_flow_style=False)


def apply_override(data: dict[str, Any], item: str) -> None:
    """Apply one ``a.b.c=value`` override to a raw config mapping in place.

    The value is parsed as YAML, so ``1e-4``, ``[1, 2]``, ``true`` and ``null`` mean what they
    look like; intermediate mappings are created as needed (an unknown key is then rejected
    by validation, not here).
    """
    if "=" not in item:
        raise ConfigError(f"override {item!r}: use key=value (e.g. optim.lr=1e-4)")
    key, _, text = item.partition("=")
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {item!r}: empty key")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"override {item!r}: value is not valid YAML: {e}") from None
    node = data
    parts = key.split(".")
    for i, part in enumerate(parts[:-1]):
        nxt = node.get(part)
        if nxt is None:
            nxt = node[part] = {}
        if not isinstance(nxt, dict):
            raise ConfigError(f"override {item!r}: {'.'.join(parts[: i + 1])} is not a mapping")
        node = nxt
    node[parts[-1]] = value


def load_config(
    cls: type[T],
    path: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    base: Mapping[str, Any] | None = None,
    fixed: Mapping[str, Any] | None = None,
) -> T:
    """Read YAML ``path`` (optional), apply ``overrides`` and ``base`` defaults, validate as ``cls``.

    ``base`` entries are applied before the file (a stage can preset e.g. the kind from the
    command line); ``fixed`` (typed values, e.g. folders a caller decides) is merged over the
    file, so it never goes through YAML text (a path holding `` #`` or ``: `` stays whole);
    overrides come last and win.
    """
    data: dict[str, Any] = {}
    if base:
        data.update(_deepcopy(dict(base)))
    if path is not None:
        p = Path(path)
        try:
            loaded = yaml.safe_load(p.read_text())
        except OSError as e:
            raise ConfigError(f"{p}: cannot read config: {e.strerror or e}") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: invalid YAML: {e}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{p}: top level must be a mapping")
        _merge(data, loaded)
    apply_renames(cls, data)
    if fixed:
        _merge(data, fixed)
    # Renamed after each override, so that the last value given wins under either name.
    for item in overrides:
        apply_override(data, item)
        apply_renames(cls, data)
    try:
        return from_dict(cls, data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}" if path is not None else str(e)) from None


def _merge(dst: dict[str, Any], src: Mapping[str, Any]) -> None:
    for k, v in src.items():
        if isinstance(v, Mapping) and isinstance(dst.get(k), dict):
            _merge(dst[k], v)
        else:
            dst[k] = _deepcopy(v)


def _deepcopy(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {k: _deepcopy(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_deepcopy(x) for x in v]
    return v
