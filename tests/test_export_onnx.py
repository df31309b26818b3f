"""ONNX export parity and the onnxruntime backend."""
from __future__ import annotations

import hashlib
import logging
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from uniremoval import Restorer, load_model  # noqa: E402
from uniremoval.cli import app  # noqa: E402
from uniremoval.export import OnnxNet, cached_onnx, export_onnx  # noqa: E402
from typer.testing import CliRunner  # noqa: E402


@pytest.fixture(scope="module")
def onnx_file(random_model: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("onnx") / "m.onnx"
    return out, export_onnx(random_model, out)


def test_parity_under_1e4_for_dynamic_sizes(onnx_file: tuple[Path, dict], random_model: Path) -> None:
    path, report = onnx_file
    assert all(d < 1e-4 for d in report["parity"].values()), report
    net = OnnxNet(path)
    ref = load_model(random_model).net
    assert net.size_multiple == ref.size_multiple == 4
    assert net.metadata["uniremoval.sha256"] == load_model(random_model).config.sha256
    for shape in [(1, 3, 36, 52), (3, 3, 16, 96)]:
        x = torch.rand(*shape)
        with torch.inference_mode():
            assert (net(x) - ref(x)).abs().max().item() < 1e-4


def test_onnxruntime_backend_matches_torch(random_model: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("UNIREMOVAL_CACHE", str(tmp_path))
    img = np.random.default_rng(0).random((45, 61, 3)).astype(np.float32)
    a = Restorer.from_pretrained(random_model, device="cpu", precision="fp32")(img)
    said: list[str] = []
    ort = Restorer.from_pretrained(random_model, device="cpu", backend="onnxruntime", tile=16, overlap=4, on_message=said.append)
    assert said and said[0].startswith("exporting model random to ONNX")
    b = ort(img)
    assert b.shape == img.shape
    # tiles change the channel-attention statistics a little; untiled must agree tightly
    c = Restorer.from_pretrained(random_model, device="cpu", backend="onnxruntime", tile=0)(img)
    assert np.abs(a - c).max() < 1e-4
    assert list((tmp_path / "onnx").glob("*.onnx"))  # exported once, cached
    with pytest.raises(ValueError, match="fp32 only"):
        Restorer.from_pretrained(random_model, device="cpu", backend="onnxruntime", precision="bf16")


def test_export_cli(random_model: Path, tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["export", "onnx", str(random_model), "-o", str(tmp_path / "x.onnx")])
    assert r.exit_code == 0, r.output
    assert "parity" in r.stdout and (tmp_path / "x.onnx").stat().st_size > 1000
    r = CliRunner().invoke(app, ["export", "onnx", str(tmp_path / "missing.json"), "-o", str(tmp_path / "y.onnx")])
    assert r.exit_code == 1 and "no such model file" in r.stderr


def test_parity_when_the_image_is_larger_than_the_tlc_window(tmp_path: Path) -> None:
    """The exported graph must hold the local-pooling path, not a copy specialised to the
    example size (a shape branch once exported only the global-pool path)."""
    from uniremoval import nets
    from uniremoval.modelfile import save_model

    torch.manual_seed(0)
    args = {"width": 8, "enc_blocks": [1, 1], "middle_blocks": 1, "inference_window": 8}
    net = nets.build("nafnet", **args)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.05)
        for m in net.modules():  # make the channel attention matter
            if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1):
                m.weight.mul_(3)
    path = save_model(net, tmp_path / "w.json", "nafnet", args)
    onnx_net = OnnxNet(export_onnx(path, tmp_path / "w.onnx")["path"])
    net.eval()
    x = torch.rand(1, 3, 40, 64)
    with torch.inference_mode():
        ref = net(x)
        glob = nets.build("nafnet", **{**args, "inference_window": None}).eval()
        glob.load_state_dict(net.state_dict())
        assert (glob(x) - ref).abs().max().item() > 1e-3  # local and global pooling differ here
    assert (onnx_net(x) - ref).abs().max().item() < 1e-4


_EXPORT_SCRIPT = "import sys; from uniremoval.export import export_onnx; export_onnx(sys.argv[1], sys.argv[2], check=False)"


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def exported_twice(random_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The random model exported once through the cache in this process (messages, log
    records and warnings captured) and once in a separate process, at the same time."""
    d = tmp_path_factory.mktemp("twice")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"), "OMP_NUM_THREADS": "1"}
    other = d / "other" / "m.onnx"
    proc = subprocess.Popen([sys.executable, "-c", _EXPORT_SCRIPT, str(random_model), str(other)], env=env)
    messages: list[str] = []
    handler = _Records()
    torch_onnx = logging.getLogger("torch.onnx")
    torch_onnx.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            path = cached_onnx(load_model(random_model), cache_dir=d / "cache", on_message=messages.append)
    finally:
        torch_onnx.removeHandler(handler)
    assert proc.wait(timeout=600) == 0
    return {"path": path, "other": other, "messages": messages, "records": handler.records, "warnings": caught}


def test_onnx_export_is_byte_reproducible_across_processes(exported_twice: dict) -> None:
    a, b = exported_twice["path"].read_bytes(), exported_twice["other"].read_bytes()
    assert hashlib.sha256(a).hexdigest() == hashlib.sha256(b).hexdigest()
    import onnx

    proto = onnx.load_from_string(a)
    keys = [p.key for p in proto.metadata_props]
    assert keys == sorted(keys) and "uniremoval.sha256" in keys
    assert not proto.doc_string and not any(n.metadata_props for n in proto.graph.node)


def test_cached_export_announces_itself_and_is_quiet(exported_twice: dict, random_model: Path) -> None:
    msgs = exported_twice["messages"]
    assert len(msgs) == 2
    assert msgs[0].startswith("exporting model random to ONNX") and str(exported_twice["path"]) in msgs[0]
    assert re.fullmatch(r"exported model random to ONNX in \d+\.\d s", msgs[1])
    noisy = [r.getMessage() for r in exported_twice["records"] if r.levelno >= logging.WARNING]
    assert not [m for m in noisy if "torchvision" in m], noisy
    assert not [str(w.message) for w in exported_twice["warnings"] if "torchvision" in str(w.message) or "LeafSpec" in str(w.message)]
    # Cached: the second call exports nothing and says nothing.
    again: list[str] = []
    assert cached_onnx(load_model(random_model), cache_dir=exported_twice["path"].parents[1], on_message=again.append) == exported_twice["path"]
    assert again == []
