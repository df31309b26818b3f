"""ONNX export of a model file, and the onnxruntime network the inference engine can use.

The exported graph takes ``image`` (N, 3, H, W) float32 in [0, 1] with dynamic N, H and W
(H, W multiples of the network's size multiple, which the engine's padding guarantees) and
returns ``restored`` of the same shape. A network that reads the whole photo (descriptor
``context_size``) takes a second input ``context``: the photo's thumbnail
(:func:`uniremoval.nets.thumbnail`, shape (1, 3, S, S), shared by the batch), with
``uniremoval.context_size`` = S in the metadata. The model's identity travels in the ONNX metadata
(``uniremoval.sha256``, ``uniremoval.size_multiple``, ...), so an .onnx file alone is enough
for ``restore --backend onnxruntime``.

Exports are byte-reproducible: the same model gives the same .onnx bytes in any process.
The exporter's per-node and per-graph debugging metadata (Python stack traces, function
addresses, sets printed in hash order) is stripped, and our metadata is sorted by key.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np
import torch

from . import nets
from .modelfile import LoadedModel, ModelError, load_model, model_digest

if TYPE_CHECKING:
    import onnx

OPSET = 18
log = logging.getLogger(__name__)


class _DropTorchvision(logging.Filter):
    """Drops the exporter's "torchvision is not installed. Skipping torchvision::nms" lines:
    it logs four on every export, and no uniremoval network uses torchvision ops."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "torchvision" not in str(record.msg)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence what the exporter says about internals we do not control, and nothing else."""
    source = logging.getLogger("torch.onnx._internal.exporter._registration")
    drop = _DropTorchvision()
    source.addFilter(drop)
    try:
        with warnings.catch_warnings():
            # Deprecations inside torch.export / onnxscript, raised on every export.
            warnings.filterwarnings("ignore", category=FutureWarning, message=r".*LeafSpec")
            warnings.filterwarnings("ignore", message=r".*torchvision")
            yield
    finally:
        source.removeFilter(drop)


def _strip_debug_metadata(graph: "onnx.GraphProto") -> None:
    """Remove the exporter's debugging metadata from a graph and its subgraphs: stack traces
    (source paths), ``<function sym_min at 0x7f...>`` addresses and range constraints printed
    in set order, which differ between processes and would make the bytes differ."""
    del graph.metadata_props[:]
    graph.doc_string = ""
    for v in (*graph.input, *graph.output, *graph.value_info, *graph.initializer):
        del v.metadata_props[:]
        v.doc_string = ""
    for node in graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
        for attr in node.attribute:
            if attr.HasField("g"):
                _strip_debug_metadata(attr.g)
            for g in attr.graphs:
                _strip_debug_metadata(g)


def canonical_onnx(proto: "onnx.ModelProto", meta: dict[str, str]) -> "onnx.ModelProto":
    """``proto`` without the exporter's process-dependent metadata (stack traces, addresses,
    set orders) and with ``meta`` as its only model metadata, sorted by key."""
    _strip_debug_metadata(proto.graph)
    for f in proto.functions:
        del f.metadata_props[:]
        f.doc_string = ""
        for node in f.node:
            del node.metadata_props[:]
            node.doc_string = ""
    proto.doc_string = ""
    del proto.metadata_props[:]
    for k in sorted(meta):
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, meta[k]
    return proto


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
    desc = nets.descriptor(net)
    if desc.photo_prior:
        # The prior reads the whole photo and runs in PyTorch before the tiles (the engine's
        # `prior`); the graph is the tiled body.
        net = net.body
        desc = nets.descriptor(net)
    m = desc.size_multiple
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    example = torch.rand(1, 3, 4 * m, 6 * m, generator=torch.Generator().manual_seed(0))
    dim = torch.export.Dim
    h = dim("h", min=1, max=16384 // m)
    w = dim("w", min=1, max=16384 // m)
    dyn_x = {0: dim("batch", min=1, max=256), 2: h * m if m > 1 else h, 3: w * m if m > 1 else w}
    args: tuple[torch.Tensor, ...] = (example,)
    dynamic: Any = {"x": dyn_x}
    names = ["image"]
    if desc.context_size is not None:
        # One thumbnail per call (static shape), broadcast over the batch of tiles.
        args, dynamic, names = (example, nets.thumbnail(example, desc.context_size)), (dyn_x, None), ["image", "context"]
    tmp = out.with_name(f".{out.name}.tmp")
    with _quiet_exporter():
        program = torch.onnx.export(
            net, args, dynamo=True, dynamic_shapes=dynamic, input_names=names,
            output_names=["restored"], opset_version=opset, verbose=False,
        )
    import onnx

    proto = program.model_proto
    meta = {
        "uniremoval.arch": loaded.config.arch,
        "uniremoval.arch_args": json.dumps(loaded.config.arch_args, sort_keys=True),
        "uniremoval.kinds": ",".join(loaded.config.kinds),
        "uniremoval.sha256": loaded.config.sha256,
        "uniremoval.size_multiple": str(m),
    }
    if desc.context_size is not None:
        meta["uniremoval.context_size"] = str(desc.context_size)
    if desc.tile_scale != 1.0:  # only then, so exports of other networks keep their bytes
        meta["uniremoval.tile_scale"] = repr(float(desc.tile_scale))
    report: dict[str, Any] = {"opset": opset, "size_multiple": m}
    if check:
        report["parity"] = _parity(net, proto.SerializeToString(), m, desc.context_size)
        meta["uniremoval.parity"] = json.dumps(report["parity"], sort_keys=True)
    onnx.save(canonical_onnx(proto, meta), str(tmp))
    os.replace(tmp, out)
    report["path"] = str(out)
    return report


def _parity(net: torch.nn.Module, model_bytes: bytes, m: int, context_size: int | None = None) -> dict[str, float]:
    import onnxruntime as ort

    sess = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    g = torch.Generator().manual_seed(0)
    result = {}
    big = -(-300 // m) * m  # larger than NAFNet's 192 px TLC window: the local-pooling path
    for n, hh, ww in ((1, 8 * m, 12 * m), (2, 5 * m, 3 * m), (1, big, big + 2 * m)):
        x = torch.rand(n, 3, hh, ww, generator=g)
        feeds = {"image": x.numpy()}
        kw = {}
        if context_size is not None:
            # A thumbnail of another photo: the graph must use the context it is given.
            kw["context"] = nets.thumbnail(torch.rand(1, 3, 2 * hh, ww, generator=g), context_size)
            feeds["context"] = kw["context"].numpy()
        with torch.inference_mode():
            ref = net(x, **kw).numpy()
        got = sess.run(None, feeds)[0]
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
        ctx = meta.get("uniremoval.context_size")
        self.context_size = int(ctx) if ctx else None
        # onnxruntime runs the graph in float32 only; the engine reads this.
        # The engine sizes its default tiles by tile_scale (uniremoval-net: 1.5x), as for torch.
        self.descriptor = nets.NetDescriptor(arch=meta.get("uniremoval.arch", "onnx"), size_multiple=self.size_multiple,
                                             precisions=("fp32",), context_size=self.context_size,
                                             tile_scale=float(meta.get("uniremoval.tile_scale", "1.0")))
        self.input_name = self.session.get_inputs()[0].name
        self.providers = self.session.get_providers()

    def __call__(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """Run the graph on ``x`` (N, 3, H, W); ``context`` is the photo's thumbnail, made from
        ``x`` itself when omitted (a batch of one photo only)."""
        feeds = {self.input_name: x.detach().float().cpu().contiguous().numpy()}
        if self.context_size is not None:
            if context is None:
                if x.shape[0] != 1:
                    raise ValueError("a batch of several images needs the whole photo's thumbnail (context=)")
                context = nets.thumbnail(x, self.context_size)
            feeds["context"] = context.detach().float().cpu().contiguous().numpy()
        y = self.session.run(None, feeds)[0]
        return torch.from_numpy(y)


def cached_onnx(
    loaded: LoadedModel,
    cache_dir: str | os.PathLike[str] | None = None,
    on_message: Callable[[str], None] | None = None,
) -> Path:
    """The ONNX export of ``loaded``, made once and kept under the cache folder.

    The cache key is the model's digest (weights and architecture arguments), so a model
    file edited to other ``arch_args`` gets its own export. An export takes minutes on a
    CPU for a large model: it is announced before and after through ``on_message`` (say the
    CLI's stderr printer) and the ``uniremoval.export`` logger.
    """
    root = Path(cache_dir or os.environ.get("UNIREMOVAL_CACHE", Path.home() / ".cache" / "uniremoval")) / "onnx"
    path = root / f"{loaded.config.arch}-{model_digest(loaded.config)[:16]}.onnx"
    if path.is_file():
        return path

    def say(msg: str) -> None:
        log.info(msg)
        if on_message is not None:
            on_message(msg)

    say(f"exporting model {loaded.name} to ONNX (once; cached at {path})...")
    t0 = time.perf_counter()
    export_onnx(loaded, path, check=False)
    say(f"exported model {loaded.name} to ONNX in {time.perf_counter() - t0:.1f} s")
    return path
