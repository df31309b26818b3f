"""What the routes share: the loaded restorer, the limits, the gate and the worker pool."""
from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from ..restorer import Restorer
from .admission import Gate
from .redact import redact_provenance
from .settings import ServeSettings


def index_html() -> str:
    """The single-page web app (one self-contained file shipped with the package)."""
    return (resources.files("uniremoval.serve") / "static" / "index.html").read_text(encoding="utf-8")


def public_model_info(restorer: Restorer) -> dict[str, Any]:
    """The loaded model as ``GET /v1/models`` shows it: name, architecture, kinds, size,
    sha256, a redacted provenance (no absolute paths, see :func:`redact_provenance`) and
    how it runs here."""
    cfg = restorer.model.config
    weights = restorer.model.path.parent / cfg.weights
    net = restorer.model.net
    return {
        "name": restorer.model.name,
        "arch": cfg.arch,
        "arch_args": cfg.arch_args,
        "kinds": cfg.kinds,
        "parameters": sum(p.numel() for p in net.parameters()) if hasattr(net, "parameters") else None,
        "weights_bytes": weights.stat().st_size if weights.is_file() else None,
        "sha256": cfg.sha256,
        "provenance": redact_provenance(cfg.provenance),
        "device": str(restorer.device),
        "precision": str(restorer.engine.dtype).removeprefix("torch."),
        "tile": restorer.engine.tile if restorer.engine.pixel_budget is not None else 0,
        "tile_overlap": restorer.engine.overlap,
    }


@dataclass
class Server:
    """One app's shared state, at ``app.state.server``."""

    restorer: Restorer
    settings: ServeSettings
    gate: Gate
    index_html: str
    model_info: dict[str, Any]
    _pools: list[concurrent.futures.ThreadPoolExecutor] = field(default_factory=list)

    @classmethod
    def create(cls, restorer: Restorer, settings: ServeSettings) -> "Server":
        """State for an app serving ``restorer`` within ``settings``."""
        return cls(restorer, settings, Gate(settings), index_html(), public_model_info(restorer))

    def executor(self) -> concurrent.futures.ThreadPoolExecutor:
        """The worker pool, made on first use (and again after :meth:`shutdown`), so an app
        can be served more than once, e.g. by successive test clients."""
        if not self._pools:
            self._pools.append(
                concurrent.futures.ThreadPoolExecutor(max_workers=self.settings.max_concurrent, thread_name_prefix="uniremoval-restore")
            )
        return self._pools[0]

    def shutdown(self) -> None:
        """Drop the worker pool; work still running is abandoned (its results are not wanted)."""
        while self._pools:
            self._pools.pop().shutdown(wait=False, cancel_futures=True)
