"""ONNX export of a network that reads the whole photo: two inputs (image, context), parity
with PyTorch, and the onnxruntime backend giving every tile the photo's context."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from uniremoval import nets  # noqa: E402
from uniremoval.export import OnnxNet, export_onnx  # noqa: E402
from uniremoval.infer import Engine  # noqa: E402
from uniremoval.modelfile import load_model, save_model  # noqa: E402

ARGS = {"width": 8, "enc_blocks": [1, 1], "middle_blocks": 1, "context_width": 8, "context_dim": 16,
        "fix": "affine", "fix_scale": 4, "refine": 4, "context_size": 64}


def test_context_network_exports_with_two_inputs_and_parity(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = nets.build("uniremoval-net", **ARGS)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    path = save_model(net, tmp_path / "m.json", "uniremoval-net", ARGS, ["test"])
    report = export_onnx(path, tmp_path / "m.onnx")
    assert all(d < 1e-4 for d in report["parity"].values()), report
    ort = OnnxNet(tmp_path / "m.onnx")
    assert [i.name for i in ort.session.get_inputs()] == ["image", "context"]
    assert ort.context_size == ort.descriptor.context_size == 64 and ort.metadata["uniremoval.context_size"] == "64"
    # onnxruntime gets the same default tiles as torch (uniremoval-net's are 1.5x larger)
    assert ort.descriptor.tile_scale == nets.descriptor(net).tile_scale == 1.5
    ref = load_model(path).net.eval()
    x = torch.rand(1, 3, 40, 56)
    with torch.inference_mode():
        assert (ort(x) - ref(x, context=nets.thumbnail(x, 64))).abs().max() < 1e-4
    with pytest.raises(ValueError, match="thumbnail"):
        ort(torch.rand(2, 3, 16, 16))
    # The engine hands onnxruntime the whole photo's thumbnail with every tile.
    img = torch.rand(3, 50, 70)
    a = Engine(ref, device="cpu", precision="fp32", tile=32, overlap=8)(img)
    b = Engine(ort, device="cpu", tile=32, overlap=8)(img)
    assert a.shape == b.shape == img.shape and (a - b).abs().max() < 1e-4
