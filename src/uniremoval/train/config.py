"""Typed experiment configs: YAML in, validated dataclasses out, ``--set a.b=value`` overrides.

Every stage defines its experiment as a dataclass tree built from the shared pieces below
(:class:`RunConfig`, :class:`OptimConfig`, ...). :func:`load_config` reads a YAML file, applies
overrides to the raw mapping (so a typo in an override is caught like a typo in the file),
then converts it with :func:`from_dict`, which rejects unknown keys and wrong types with the
dotted path of the offending key. :func:`to_dict` / :func:`dump_yaml` give the resolved config
back, which every run writes next to its checkpoints.
"""
from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Mapping, TypeVar, Union

import yaml

if TYPE_CHECKING:
    import torch

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or override is invalid; the message names the key and the reason."""


# --------------------------------------------------------------------------------------
# Shared building blocks
# --------------------------------------------------------------------------------------


@dataclass
class ModelConfig:
    """A network from the registry in :mod:`uniremoval.nets`: name + keyword arguments."""

    arch: str = "nafnet-small"
    args: dict[str, Any] = field(default_factory=dict)
    #: Model file (JSON/safetensors, checksum verified) whose weights start a fresh run:
    #: fine-tuning or continued training. Its architecture and arguments must equal ``arch``
    #: and ``args``. Ignored when the run resumes from its own checkpoint (that wins).
    init: str | None = None
    #: Let ``init`` be a shallower network of a growable architecture (its descriptor's
    #: ``grow_block``; NAFNet: same width, fewer blocks per level): the blocks it lacks start
    #: as the identity (NAFNet: zero residual scales), so the grown network computes the
    #: same function as ``init`` at step 0 (checked on load, :func:`uniremoval.nets.grow`)
    #: and training adds capacity to a trained model instead of starting from scratch.
    grow: bool = False

    def build(self) -> "torch.nn.Module":
        """Build the network, with the ``init`` weights when set (train mode, trainable)."""
        from .. import nets
        from ..modelfile import load_model

        net = nets.build(self.arch, **self.args)
        if self.init:
            loaded = load_model(os.path.expanduser(self.init))
            if self.grow:
                try:
                    nets.grow(loaded.net, net)
                except ValueError as e:
                    raise ConfigError(f"model.init {self.init}: {e}") from None
            elif loaded.config.arch != self.arch or dict(loaded.config.arch_args) != dict(self.args):
                raise ConfigError(
                    f"model.init {self.init}: it is {loaded.config.arch} {loaded.config.arch_args}, "
                    f"the run builds {self.arch} {self.args} (model.grow=true starts a deeper "
                    "NAFNet from a shallower one)"
                )
            else:
                net.load_state_dict(loaded.net.state_dict(), strict=True)
        return net


@dataclass
class OptimConfig:
    """Optimiser and the per-step update rules that go with it."""

    name: Literal["adam", "adamw"] = "adam"
    lr: float = 2e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 0.0
    #: Clip the global gradient norm to this value; 0 disables clipping.
    grad_clip: float = 0.0

    def validate(self, where: str) -> None:
        if len(self.betas) != 2 or self.lr <= 0 or self.grad_clip < 0:
            raise ConfigError(f"{where}: need two betas, lr > 0 and grad_clip >= 0")


@dataclass
class ScheduleConfig:
    """Linear warm-up from ``warmup_start`` x lr, then cosine decay to ``min_lr_ratio`` x lr."""

    name: Literal["cosine", "constant"] = "cosine"
    warmup_steps: int = 0
    warmup_start: float = 0.01
    min_lr_ratio: float = 0.01


@dataclass
class RunConfig:
    """How long to train and how often to checkpoint, validate and log (all in steps)."""

    name: str = "run"
    #: Parent folder of the run folder; ``~`` is expanded. ``runs/`` is git-ignored.
    out_dir: str = "runs"
    steps: int = 1000
    seed: int = 0
    ckpt_every: int = 500
    val_every: int = 500
    log_every: int = 50
    #: Write sample images to TensorBoard at every validation (0 = none).
    val_samples: int = 4
    #: Resume from the run folder's last checkpoint when there is one.
    resume: bool = True
    #: Exponential moving average of weights; 0 disables it.
    ema_decay: float = 0.999
    #: Mixed precision: auto = fp16 with loss scaling on CUDA, bf16 on a CPU with native bf16,
    #: else off (fp32); see ``trainer.resolve_amp``.
    amp: Literal["auto", "off", "fp16", "bf16"] = "auto"
    channels_last: bool = False
    #: torch.use_deterministic_algorithms (bit-exact resume on CPU; slower on GPU).
    deterministic: bool = False
    #: CPU threads per process (None: torch's default).
    threads: int | None = None
    device: str = "auto"
    #: Metric that decides the best checkpoint, and whether larger is better.
    best_metric: str = "psnr"
    best_mode: Literal["max", "min"] = "max"
    #: Export the EMA (else raw) weights as a model file when training ends.
    export: bool = True
    export_half: bool = False
    #: Show a progress bar (rank 0 only).
    progress: bool = True

    def validate(self, where: str) -> None:
        for key in ("steps", "ckpt_every", "val_every", "log_every"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{where}.{key}: must be at least 1")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"{where}.ema_decay: must be in [0, 1)")
        if not self.name or "/" in self.name or self.name in (".", ".."):
            raise ConfigError(f"{where}.name: {self.name!r} is not a valid folder name")


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
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where or 'top level'}: unknown key(s) {', '.join(unknown)}; known: {', '.join(fields)}")
    kwargs = {name: _convert(data[name], hints[name], _join(where, name)) for name in fields if name in data}
    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where or 'config'}: {e}") from None
    validate = getattr(obj, "validate", None)
    if callable(validate):
        validate(where or "config")
    return obj


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
) -> T:
    """Read YAML ``path`` (optional), apply ``overrides`` and ``base`` defaults, validate as ``cls``.

    ``base`` entries are applied before the file (a stage can preset e.g. the kind from the
    command line); overrides come last and win.
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
    for item in overrides:
        apply_override(data, item)
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
