"""uniremoval.options: the one tile parser and device resolver the CLI, the server and the
HTTP API share."""
from __future__ import annotations

import pytest
import torch

from uniremoval import infer, options
from uniremoval.options import MIN_TILE, parse_tile, per_device, resolve_device


@pytest.mark.parametrize(
    "value, expected",
    [
        ("auto", "auto"),
        (" AUTO ", "auto"),
        ("0", 0),
        (0, 0),
        ("none", 0),
        ("Never", 0),
        ("16", 16),
        (512, 512),
        (" 384 ", 384),
        (None, None),
    ],
)
def test_parse_tile_accepts(value: str | int | None, expected: int | str | None) -> None:
    assert parse_tile(value) == expected


@pytest.mark.parametrize("value", ["big", "", " ", "15", "1", "-5", -1, 8, "12.5", True])
def test_parse_tile_refuses_with_one_line(value: str | int) -> None:
    with pytest.raises(ValueError) as info:
        parse_tile(value)
    message = str(info.value)
    assert "\n" not in message and "tile" in message and str(MIN_TILE) in message


def test_parse_tile_maximum() -> None:
    assert parse_tile("8192", maximum=8192) == 8192
    with pytest.raises(ValueError, match="at most 8192"):
        parse_tile("8193", maximum=8192)
    assert parse_tile("auto", maximum=64) == "auto" and parse_tile("0", maximum=64) == 0


def test_defaults_are_the_engines() -> None:
    # The help texts quote options' tables; the engine must run with the very same tables
    # (one copy, not two that agree today).
    assert options.DEFAULT_OVERLAP is infer.DEFAULT_OVERLAP
    assert options.DEFAULT_TILE is infer.DEFAULT_TILE
    assert options.DEFAULT_TILE_BATCH is infer.DEFAULT_TILE_BATCH
    assert options.DEFAULT_PIXEL_BUDGET is infer.DEFAULT_PIXEL_BUDGET
    assert per_device({"cpu": 32, "cuda": 64}) == "CPU 32, CUDA 64"


def _fake_hardware(monkeypatch: pytest.MonkeyPatch, cuda: int, mps: bool) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)


def test_resolve_device_auto_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_hardware(monkeypatch, cuda=2, mps=True)
    assert resolve_device() == torch.device("cuda")
    assert resolve_device("auto", rank=3) == torch.device("cuda:1")  # torchrun: ranks share the GPUs
    _fake_hardware(monkeypatch, cuda=0, mps=True)
    assert resolve_device("auto") == torch.device("mps")
    assert resolve_device("auto", rank=1) == torch.device("mps")
    _fake_hardware(monkeypatch, cuda=0, mps=False)
    assert resolve_device("auto", rank=0) == torch.device("cpu")


def test_resolve_device_explicit(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    _fake_hardware(monkeypatch, cuda=0, mps=False)
    for name, needle in (("cuda", "CUDA is not available"), ("cuda:1", "CUDA is not available"), ("mps", "MPS is not available"), ("tpu9", "use auto")):
        with pytest.raises(ValueError, match=needle):
            resolve_device(name)
    _fake_hardware(monkeypatch, cuda=1, mps=False)
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(ValueError, match="1 CUDA device"):
        resolve_device("cuda:3")


def test_options_imports_nothing_heavy() -> None:
    import subprocess
    import sys

    code = "import sys, uniremoval.options; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
