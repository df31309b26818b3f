"""Registry of degradation kinds: name -> synthesiser + typed parameter ranges.

New kinds are added by configuration alone: a config can retune an existing kind's ranges,
define a new kind on top of an existing synthesiser (``base``), or define a compound kind as
a list of parts, each applied with its own probability. See `Registry.from_config`.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from ._common import as_float_image
from .blur import BlurParams, add_blur
from .clean import CleanParams, add_clean
from .haze import HazeParams, add_haze
from .noise import JpegParams, NoiseParams, add_jpeg, add_noise
from .presets import DEFAULT_PRESET, PRESETS, preset_spec
from .rain import RainParams, add_rain

SynthFn = Callable[[np.ndarray, np.random.Generator, Any, "float | None"], "tuple[np.ndarray, dict[str, Any]]"]

#: Built-in synthesisers a config can build kinds on: name -> (function, parameter class).
SYNTHESISERS: dict[str, tuple[SynthFn, type]] = {
    "haze": (add_haze, HazeParams),
    "rain": (add_rain, RainParams),
    "blur": (add_blur, BlurParams),
    "noise": (add_noise, NoiseParams),
    "jpeg": (add_jpeg, JpegParams),
    "clean": (add_clean, CleanParams),
}


@dataclass
class Part:
    """One part of a compound kind: `kind` is applied with probability `p`."""

    kind: str
    p: float = 1.0


@dataclass
class Kind:
    """A registered kind: either a synthesiser with its parameters, or a compound of parts."""

    name: str
    fn: SynthFn | None = None
    params: Any = None
    parts: list[Part] = field(default_factory=list)
    base: str | None = None

    @property
    def is_compound(self) -> bool:
        return bool(self.parts)


def apply_overrides(params: Any, overrides: Mapping[str, Any]) -> Any:
    """Return a copy of dataclass `params` with `overrides` applied (lists become tuples,
    nested dataclasses take nested dicts); unknown names raise, so config typos surface."""
    names = {f.name: f for f in dataclasses.fields(params)}
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        if key not in names:
            raise KeyError(f"{type(params).__name__} has no parameter {key!r} (known: {sorted(names)})")
        current = getattr(params, key)
        if dataclasses.is_dataclass(current) and isinstance(value, Mapping):
            changes[key] = apply_overrides(current, value)
        elif isinstance(value, list):
            changes[key] = tuple(value)
        else:
            changes[key] = value
    return dataclasses.replace(params, **changes)


class Registry:
    """Kinds by name. `synthesize` is the one entry point that degrades an image."""

    def __init__(self) -> None:
        self._kinds: dict[str, Kind] = {}

    def register(self, name: str, fn: SynthFn, params: Any, base: str | None = None) -> None:
        """Register (or replace) a kind made by `fn(image, rng, params, strength)`."""
        self._kinds[name] = Kind(name=name, fn=fn, params=params, base=base or name)

    def register_compound(self, name: str, parts: list[Part] | list[tuple[str, float]]) -> None:
        """Register a compound kind: parts applied in order, each with its probability; at
        least one part is always applied (the most probable one if none was drawn)."""
        plist = [p if isinstance(p, Part) else Part(str(p[0]), float(p[1])) for p in parts]
        if not plist:
            raise ValueError(f"compound kind {name!r} has no parts")
        for p in plist:
            if p.kind not in self._kinds:
                raise KeyError(f"compound kind {name!r}: unknown part {p.kind!r}")
        self._kinds[name] = Kind(name=name, parts=plist)

    def names(self) -> list[str]:
        """Names of all registered kinds, in registration order."""
        return list(self._kinds)

    def get(self, name: str) -> Kind:
        """The kind called `name` (KeyError listing the known names otherwise)."""
        try:
            return self._kinds[name]
        except KeyError:
            raise KeyError(f"unknown degradation kind {name!r}; known: {', '.join(self._kinds)}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._kinds

    def copy(self) -> "Registry":
        """A deep copy, so a config can be applied without touching the default registry."""
        new = Registry()
        new._kinds = copy.deepcopy(self._kinds)
        return new

    def _has_camera(self, name: str) -> bool:
        kind = self.get(name)
        if kind.is_compound:
            return any(self._has_camera(p.kind) for p in kind.parts)
        return getattr(kind.params, "camera", None) is not None

    def _apply(
        self, image: np.ndarray, name: str, rng: np.random.Generator, strength: float | None, camera: bool = True
    ) -> tuple[np.ndarray, dict[str, Any]]:
        kind = self.get(name)
        if not kind.is_compound:
            assert kind.fn is not None
            params = kind.params
            if not camera and getattr(params, "camera", None) is not None:
                params = dataclasses.replace(params, camera=None)
            return kind.fn(image, rng, params, strength)
        draws = [bool(rng.random() < p.p) for p in kind.parts]
        if not any(draws):
            draws[max(range(len(kind.parts)), key=lambda i: kind.parts[i].p)] = True
        used = [part for part, use in zip(kind.parts, draws) if use]
        # A photo is recorded once: only the last part with a camera stage keeps it (rain
        # then blur: the shake blurs the streaks in linear light, then noise and JPEG).
        last = max((i for i, part in enumerate(used) if self._has_camera(part.kind)), default=-1)
        out = image
        records = []
        for i, part in enumerate(used):
            out, rec = self._apply(out, part.kind, rng, strength, camera and i == last)
            records.append({"kind": part.kind, "params": rec})
        return out, {"parts": records}

    def synthesize(
        self,
        image: np.ndarray,
        kind: str,
        rng: np.random.Generator | None = None,
        *,
        seed: int | None = None,
        strength: float | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Degrade `image` (HxWx3 float32 in [0, 1]; uint8 accepted) with `kind`.

        Randomness comes from `rng`, or from `numpy.random.default_rng(seed)` when `rng` is
        None; with neither, a fresh seed is drawn and recorded so the call can be replayed.
        Returns (degraded float32 HxWx3 in [0, 1], JSON-serialisable record).
        """
        img = as_float_image(image)
        if rng is None:
            if seed is None:
                seed = int(np.random.SeedSequence().entropy % (2**63))
            rng = np.random.default_rng(seed)
        out, params = self._apply(img, kind, rng, strength)
        out = np.clip(np.asarray(out, dtype=np.float32), 0.0, 1.0)
        record: dict[str, Any] = {
            "kind": kind,
            "seed": None if seed is None else int(seed),
            "strength": None if strength is None else float(strength),
            "size": [int(img.shape[0]), int(img.shape[1])],
            "params": params,
        }
        return out, record

    @classmethod
    def preset(cls, name: str = DEFAULT_PRESET) -> "Registry":
        """A fresh registry with the kinds and ranges of preset `name` (``r6``: the ranges the
        shipped model was trained on; ``r7``: the current defaults). See `presets`."""
        spec = preset_spec(name)
        reg = cls()
        for kind, (base, params) in spec["kinds"].items():
            reg.register(kind, SYNTHESISERS[base][0], params, base=base)
        for kind, parts in spec["compounds"].items():
            reg.register_compound(kind, [Part(k, float(pr)) for k, pr in parts])
        return reg

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | str | Path, start: "Registry | None" = None) -> "Registry":
        """Build a registry from a dict or YAML file, starting from the defaults.

        Format::

            kinds:
              haze: {beta: [0.3, 2.0]}                 # retune an existing kind
              thick_haze: {base: haze, beta: [2, 3]}   # a new kind on a built-in synthesiser
            compounds:
              rain+haze: [{kind: rain, p: 1.0}, {kind: haze, p: 0.7}]
            only: [haze, rain, blur, rain+haze]        # optional: keep just these kinds
            preset: r6                                 # optional: start from a named preset

        ``preset`` (default: `start`, else the default preset) names the ranges the other keys
        modify; see `uniremoval.degrade.presets`.
        """
        if isinstance(config, (str, Path)):
            import yaml

            config = yaml.safe_load(Path(config).read_text()) or {}
        if config.get("preset"):
            reg = cls.preset(str(config["preset"]))
        else:
            reg = (start or default_registry()).copy()
        for name, spec in (config.get("kinds") or {}).items():
            spec = dict(spec or {})
            base = spec.pop("base", None)
            if base is None and name in reg and not reg.get(name).is_compound:
                kind = reg.get(name)
                reg.register(name, kind.fn, apply_overrides(kind.params, spec), base=kind.base)  # type: ignore[arg-type]
                continue
            base = base or name
            if base not in SYNTHESISERS:
                raise KeyError(f"kind {name!r}: unknown base synthesiser {base!r}; known: {sorted(SYNTHESISERS)}")
            fn, pcls = SYNTHESISERS[base]
            reg.register(name, fn, apply_overrides(pcls(), spec), base=base)
        for name, parts in (config.get("compounds") or {}).items():
            if isinstance(parts, Mapping):
                parts = parts.get("parts", [])
            reg.register_compound(name, [Part(str(p["kind"]), float(p.get("p", 1.0))) for p in parts])
        only = config.get("only")
        if only:
            missing = [k for k in only if k not in reg]
            if missing:
                raise KeyError(f"'only' names unknown kinds: {missing}")
            reg._kinds = {k: v for k, v in reg._kinds.items() if k in set(only)}
        return reg


def default_registry(preset: str = DEFAULT_PRESET) -> Registry:
    """A fresh registry with the built-in kinds and compounds of `preset` (default r7)."""
    return Registry.preset(preset)


__all__ = ["PRESETS", "SYNTHESISERS", "Kind", "Part", "Registry", "apply_overrides", "default_registry"]
