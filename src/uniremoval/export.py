"""ONNX export of a model file, and the onnxruntime network the inference engine can use.

The exported graph takes ``image`` (N, 3, H, W) float32 in [0, 1] with dynamic N, H and W
(H, W multiples of the network's size multiple, which the engine's padding guarantees) and
returns ``restored`` of the same shape. The model's identity travels in the ONNX metadata
(``uniremoval.sha256``, ``uniremoval.size_multiple``, ...), so an .onnx file alone is enough
for ``restore --backend onnxruntime``.
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .modelfile import LoadedModel, ModelError, load_model

OPSET = 18


def export_onnx(
    model: LoadedModel | str | os.PathLike[str],
    out: str | os.PathLike[str],
    check: bool = True,
    opset: int = OPSET,
) -> dict[str, Any]:
    """Export a model to ONNX with dynamic batch, height and width.

    With ``check`` the exported graph is run by onnxruntime on two sizes and compared with
    PyTorch; the report (max abs differences) is returned and stored in the metadata.
    """
    loaded = model if isinstance(model, LoadedModel) else load_model(model)
    net = loaded.net.eval().float()
    m = int(getattr(net, "size_multiple", 1))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    example = torch.rand(1, 3, 4 * m, 6 * m)
    dim = torch.export.Dim
    h = dim("h", min=1, max=16384 // m)
    w = dim("w", min=1, max=16384 // m)
    dynamic = {"x": {0: dim("batch", min=1, max=256), 2: h * m if m > 1 else h, 3: w * m if m > 1 else w}}
    tmp = out.with_name(f".{out.name}.tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter is chatty about internals we do not control
        program = torch.onnx.export(
            net, (example,), dynamo=True, dynamic_shapes=dynamic, input_names=["image"],
            output_names=["restored"], opset_version=opset, verbose=False,
        )
    import onnx

    proto = program.model_proto
    meta = {
        "uniremoval.arch": loaded.config.arch,
        "uniremoval.arch_args": json.dumps(loaded.config.arch_args),
        "uniremoval.kinds": ",".join(loaded.config.kinds),
        "uniremoval.sha256": loaded.config.sha256,
        "uniremoval.size_multiple": str(m),
    }
    report: dict[str, Any] = {"opset": opset, "size_multiple": m}
    if check:
        report["parity"] = _parity(net, proto.SerializeToString(), m)
        meta["uniremoval.parity"] = json.dumps(report["parity"])
    for k, v in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(proto, str(tmp))
    os.replace(tmp, out)
    report["path"] = str(out)
    return report


def _parity(net: torch.nn.Module, model_bytes: bytes, m: int) -> dict[str, float]:
    import onnxruntime as ort

    sess = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    g = torch.Generator().manual_seed(0)
    result = {}
    big = -(-300 // m) * m  # larger than NAFNet's 192 px TLC window: the local-pooling path
    for n, hh, ww in ((1, 8 * m, 12 * m), (2, 5 * m, 3 * m), (1, big, big + 2 * m)):
        x = torch.rand(n, 3, hh, ww, generator=g)
        with torch.inference_mode():
            ref = net(x).numpy()
        got = sess.run(None, {"image": x.numpy()})[0]
        result[f"{n}x3x{hh}x{ww}"] = float(np.abs(got - ref).max())
    return result


class OnnxNet:
    """An exported model run by onnxruntime, callable like the PyTorch network on CPU tensors.

    ``threads`` sets onnxruntime's intra-op threads (default: its own choice, all cores).
    The CUDA execution provider is used when onnxruntime has it and ``device`` is cuda.
    """

    def __init__(self, path: str | os.PathLike[str], threads: int | None = None, device: str = "cpu") -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise ModelError("the onnxruntime backend needs the onnxruntime package (pip install onnxruntime)") from None
        self.path = Path(path)
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(str(self.path), opts, providers=providers)
        except Exception as e:
            raise ModelError(f"{self.path}: not a loadable ONNX model: {str(e).splitlines()[0]}") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        self.metadata = dict(meta)
        self.size_multiple = int(meta.get("uniremoval.size_multiple", "1"))
        self.input_name = self.session.get_inputs()[0].name
        self.providers = self.session.get_providers()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        y = self.session.run(None, {self.input_name: x.detach().float().cpu().contiguous().numpy()})[0]
        return torch.from_numpy(y)


def cached_onnx(loaded: LoadedModel, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The ONNX export of ``loaded``, made once and kept under the cache folder by checksum."""
    root = Path(cache_dir or os.environ.get("UNIREMOVAL_CACHE", Path.home() / ".cache" / "uniremoval")) / "onnx"
    path = root / f"{loaded.config.arch}-{loaded.config.sha256[:16]}.onnx"
    if not path.is_file():
        export_onnx(loaded, path, check=False)
    return path
