"""Model files: safetensors weights + a small JSON config, checked by sha256 on load.

A model ``NAME`` is two files side by side::

    NAME.safetensors   the weights (tensors only: nothing is unpickled, ever)
    NAME.json          {"format": "uniremoval-model/1", "arch": ..., "arch_args": {...},
                        "kinds": [...], "weights": "NAME.safetensors", "sha256": ...,
                        "provenance": {...}}

``load_model`` accepts a bundled model's name, either file's path, or a folder that holds
exactly one model.

Saving is byte-reproducible: the same weights, architecture and kinds give the same
.safetensors bytes (its header metadata is written in sorted order; the safetensors library
writes it in hash order, which changes from process to process) and the same JSON apart from
``provenance``, the one field meant for times, paths and run details. :func:`model_digest`
hashes what defines a model and leaves provenance and file names out.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file
from torch import nn

from . import nets

FORMAT = "uniremoval-model/1"
DEFAULT_MODEL = "default"


class ModelError(Exception):
    """A model could not be found, verified or built; the message says which and why."""


@dataclass
class ModelConfig:
    """What a model's JSON holds, apart from the weights."""

    arch: str
    arch_args: dict[str, Any] = field(default_factory=dict)
    kinds: list[str] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    weights: str = ""
    sha256: str = ""
    format: str = FORMAT

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str) -> "ModelConfig":
        if not isinstance(data, dict):
            raise ModelError(f"{where}: model config must be a JSON object")
        if data.get("format") != FORMAT:
            raise ModelError(f"{where}: not a uniremoval model config (format {data.get('format')!r}, want {FORMAT!r})")
        unknown = set(data) - {f for f in cls.__dataclass_fields__}
        if unknown:
            raise ModelError(f"{where}: unknown keys in model config: {', '.join(sorted(unknown))}")
        for key, typ in (("arch", str), ("arch_args", dict), ("kinds", list), ("provenance", dict), ("weights", str), ("sha256", str)):
            if key in data and not isinstance(data[key], typ):
                raise ModelError(f"{where}: {key!r} must be a {typ.__name__}")
        if "arch" not in data or "weights" not in data or "sha256" not in data:
            raise ModelError(f"{where}: model config needs 'arch', 'weights' and 'sha256'")
        return cls(**data)


@dataclass
class LoadedModel:
    """A built network in eval mode with the config it came from."""

    net: nn.Module
    config: ModelConfig
    path: Path

    @property
    def name(self) -> str:
        return self.path.stem


def model_digest(cfg: ModelConfig) -> str:
    """Hex sha256 of what defines a model's function: format, architecture and its
    arguments, kinds and the weights' sha256; not its provenance nor its file names."""
    ident = {"format": cfg.format, "arch": cfg.arch, "arch_args": cfg.arch_args, "kinds": cfg.kinds, "sha256": cfg.sha256}
    return hashlib.sha256(json.dumps(ident, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _sort_safetensors_header(path: Path) -> None:
    """Rewrite a .safetensors file's JSON header in place with ``__metadata__`` sorted by key.

    The library serialises the metadata from a Rust hash map, whose order is random per
    process, so identical weights gave files with different bytes. Reordering keys keeps the
    header's length (same compact JSON), so the tensor data does not move.
    """
    with open(path, "r+b") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        raw = fh.read(n)
        header = json.loads(raw)
        meta = header.pop("__metadata__", None)
        ordered = ({"__metadata__": dict(sorted(meta.items()))} if meta is not None else {}) | header
        text = json.dumps(ordered, separators=(",", ":"), ensure_ascii=False).encode()
        if len(text) > n:  # cannot happen for a pure reordering; never corrupt the file
            raise ModelError(f"{path}: unexpected safetensors header layout")
        fh.seek(8)
        fh.write(text + b" " * (n - len(text)))


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def bundled_dir() -> Path:
    """Folder of the models shipped inside the package."""
    return Path(str(resources.files("uniremoval") / "models"))


def bundled_models() -> list[str]:
    """Names of the models shipped inside the package."""
    d = bundled_dir()
    return sorted(p.stem for p in d.glob("*.json")) if d.is_dir() else []


def save_model(
    net: nn.Module,
    path: str | os.PathLike[str],
    arch: str,
    arch_args: dict[str, Any] | None = None,
    kinds: list[str] | None = None,
    provenance: dict[str, Any] | None = None,
    half: bool = False,
) -> Path:
    """Write ``net`` as ``path`` (.json) + its .safetensors; returns the JSON path.

    ``half`` stores fp16 weights (half the size; loading converts back to fp32).
    """
    json_path = Path(path).with_suffix(".json")
    weights_path = json_path.with_suffix(".safetensors")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: (v.detach().half() if half and v.is_floating_point() else v.detach()).contiguous().cpu() for k, v in net.state_dict().items()}
    tmp = weights_path.with_name(f".{weights_path.name}.tmp")
    save_file(state, str(tmp), metadata={"format": FORMAT, "arch": arch})
    _sort_safetensors_header(tmp)
    os.replace(tmp, weights_path)
    cfg = ModelConfig(
        arch=arch,
        arch_args=dict(arch_args or {}),
        kinds=list(kinds or []),
        provenance=dict(provenance or {}),
        weights=weights_path.name,
        sha256=sha256_file(weights_path),
    )
    tmp_json = json_path.with_name(f".{json_path.name}.tmp")
    # Sorted keys: the JSON depends on the values only, never on how a caller built a dict.
    # (The round trip first turns non-string keys into strings, which sort_keys needs.)
    tmp_json.write_text(json.dumps(json.loads(json.dumps(asdict(cfg))), indent=2, sort_keys=True) + "\n")
    os.replace(tmp_json, json_path)
    return json_path


def resolve_model_path(name_or_path: str | os.PathLike[str]) -> Path:
    """Find the JSON config of a model given by bundled name, file path or folder."""
    s = str(name_or_path)
    p = Path(s).expanduser()
    if p.is_dir():
        found = sorted(p.glob("*.json"))
        if len(found) != 1:
            raise ModelError(f"{p}: folder must hold exactly one model .json (found {len(found)})")
        return found[0]
    if p.suffix in (".json", ".safetensors"):
        j = p.with_suffix(".json")
        if not j.is_file():
            raise ModelError(f"{p}: model config {j.name} not found" if p.exists() else f"{p}: no such model file")
        return j
    bundled = bundled_dir() / f"{s}.json"
    if bundled.is_file():
        return bundled
    if s == DEFAULT_MODEL:
        raise ModelError(
            "no trained model is bundled with this version of uniremoval yet; "
            "pass --model PATH to a model .json (train one with `uniremoval train`)"
        )
    known = bundled_models()
    raise ModelError(
        f"{s}: no such model file or bundled model"
        + (f" (bundled: {', '.join(known)})" if known else " (no model is bundled)")
    )


def read_config(name_or_path: str | os.PathLike[str]) -> tuple[ModelConfig, Path]:
    """Read and validate a model's JSON config without loading weights."""
    json_path = resolve_model_path(name_or_path)
    try:
        data = json.loads(json_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelError(f"{json_path}: unreadable model config: {e}") from None
    return ModelConfig.from_json(data, str(json_path)), json_path


def load_model(name_or_path: str | os.PathLike[str] = DEFAULT_MODEL, verify: bool = True) -> LoadedModel:
    """Load a model by bundled name or path, verify its sha256 and build it in eval mode.

    Raises:
        ModelError: missing files, checksum mismatch, unknown architecture or weights that
            do not fit the architecture.
    """
    cfg, json_path = read_config(name_or_path)
    weights = json_path.parent / cfg.weights
    if not weights.is_file():
        raise ModelError(f"{json_path}: weights file {weights.name} not found next to it")
    if verify:
        digest = sha256_file(weights)
        if digest != cfg.sha256:
            raise ModelError(f"{weights}: sha256 {digest[:12]}... does not match the config's {cfg.sha256[:12]}... (corrupt or replaced file)")
    try:
        net = nets.build(cfg.arch, **cfg.arch_args)
    except (KeyError, TypeError, ValueError) as e:
        raise ModelError(f"{json_path}: cannot build architecture {cfg.arch!r}: {e}") from None
    try:
        state = load_file(str(weights))
    except Exception as e:
        raise ModelError(f"{weights}: not a readable safetensors file: {e}") from None
    ref = net.state_dict()
    state = {k: v.to(ref[k].dtype) if k in ref and v.is_floating_point() else v for k, v in state.items()}
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise ModelError(f"{weights}: weights do not fit {cfg.arch}: {' '.join(first[:2])}") from None
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return LoadedModel(net, cfg, json_path)
