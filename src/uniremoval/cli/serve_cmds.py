"""`uniremoval serve`: the HTTP API and web page (FastAPI + uvicorn).

FastAPI and uvicorn are imported inside the command so the rest of the CLI starts fast.
"""
from __future__ import annotations

import logging
import sys
from typing import Any, Optional

import typer

from ..options import DEFAULT_OVERLAP, DEFAULT_SCALE, DEFAULT_TILE, DEFAULT_TILE_BATCH, MIN_TILE, parse_scale, parse_tile, per_device, resolve_device
from ._console import fail as _fail

#: Help texts quote the engine's real per-device defaults (uniremoval.options), never a copy.
TILE_HELP = (
    f"Default tiling: auto (tiles of {per_device(DEFAULT_TILE)} px once an image is large), 0 (never) "
    f"or a tile size of at least {MIN_TILE} pixels (requests may override)."
)
OVERLAP_HELP = (
    f"Default minimum overlap between tiles in pixels (default {per_device(DEFAULT_OVERLAP)}; "
    "at most a quarter of the tile)."
)
TILE_BATCH_HELP = f"Tiles per forward pass (default {per_device(DEFAULT_TILE_BATCH)})."




def build_app(
    model: str,
    device: str = "auto",
    precision: str = "auto",
    tile: str = "auto",
    tile_overlap: int | None = None,
    tile_batch: Optional[int] = None,
    max_concurrent: Optional[int] = None,
    scale: str | int | None = None,
    **limits: Any,
) -> Any:
    """Load the model once and build the FastAPI app around it: what ``serve`` runs (tests
    call it too). ``tile``, ``scale`` and ``device`` are read by
    :func:`~uniremoval.options.parse_tile`, :func:`~uniremoval.options.parse_scale` and
    :func:`~uniremoval.options.resolve_device`, the same as every other command's.
    ``max_concurrent`` defaults to 1 on a CPU (one job already uses every core) and 2 on a
    GPU; ``limits`` are the other :class:`ServeSettings` fields.

    Raises:
        ModelError: the model cannot be found or loaded.
        ValueError: an option is invalid.
    """
    from ..restorer import Restorer
    from ..serve.app import create_app
    from ..serve.settings import ServeSettings

    tile_arg = parse_tile(tile)
    restorer = Restorer.from_pretrained(
        model, device=resolve_device(device), precision=precision, tile=tile_arg, overlap=tile_overlap, tile_batch=tile_batch,
        scale=parse_scale(scale),
    )
    concurrent = max_concurrent or (1 if restorer.device.type == "cpu" else 2)
    return create_app(restorer, ServeSettings(max_concurrent=concurrent, **limits))


def register(app: typer.Typer) -> None:
    """Add the ``serve`` command to the CLI."""

    @app.command()
    def serve(
        host: str = typer.Option("127.0.0.1", help="Interface to listen on (0.0.0.0 exposes it to the network)."),
        port: int = typer.Option(8000, min=0, max=65535, help="TCP port."),
        model: str = typer.Option("default", "--model", "-m", help="Bundled model name or path to a model .json."),
        device: str = typer.Option("auto", help="auto | cpu | cuda | cuda:N | mps"),
        precision: str = typer.Option("auto", help="auto | fp32 | bf16 | fp16"),
        tile: str = typer.Option("auto", help=TILE_HELP),
        tile_overlap: Optional[int] = typer.Option(None, help=OVERLAP_HELP),
        tile_batch: Optional[int] = typer.Option(None, help=TILE_BATCH_HELP),
        scale: str = typer.Option(str(DEFAULT_SCALE), metavar="SCALE", help="Default working resolution: 1 (full), a factor d, auto or pyramid, as 'restore --scale' (requests may override)."),
        max_upload_mb: float = typer.Option(50.0, help="Largest accepted upload in MiB (413 above)."),
        max_pixels: int = typer.Option(40_000_000, help="Largest accepted image in pixels (413 above)."),
        max_concurrent: Optional[int] = typer.Option(None, help="Images restored at once (default: 1 on CPU, 2 on a GPU)."),
        queue_size: int = typer.Option(8, min=0, help="Requests that may wait for a worker before 503."),
        timeout: float = typer.Option(120.0, help="Request timeout in seconds (upload + queue + restore)."),
        threads: Optional[int] = typer.Option(None, help="CPU threads for torch (default: all cores)."),
        log_level: str = typer.Option("info", help="debug | info | warning | error (server messages)"),
        access_log: bool = typer.Option(True, help="One JSON line per request on stderr (independent of --log-level)."),
    ) -> None:
        """Serve the web page and HTTP API: POST /v1/restore, GET /v1/models, GET /healthz."""
        from ..modelfile import ModelError

        try:
            import fastapi  # noqa: F401
            import uvicorn
        except ImportError as e:
            raise _fail(f"serve needs fastapi and uvicorn, which uniremoval depends on: {e}")

        try:
            parse_tile(tile)
            parse_scale(scale)
        except ValueError as e:
            raise _fail(f"--{e}", 2)
        if threads:
            import torch

            torch.set_num_threads(threads)
        try:
            api = build_app(
                model, device, precision, tile, tile_overlap, tile_batch, max_concurrent, scale,
                max_upload_bytes=int(max_upload_mb * 2**20), max_pixels=max_pixels,
                queue_size=queue_size, request_timeout_s=timeout,
            )
        except (ModelError, ValueError) as e:
            raise _fail(str(e))
        restorer, settings = api.state.restorer, api.state.settings
        # Logging is configured only once the server will really run (not when start-up
        # fails, e.g. in-process tests of the error path).
        _setup_logging(log_level, access_log)
        log = logging.getLogger("uniremoval.serve")
        log.info(
            "model %s (%s) on %s; %d worker(s), queue %d, upload limit %.0f MiB, %d MP, timeout %g s; http://%s:%d/",
            restorer.model.name, restorer.model.config.arch, restorer.device, settings.max_concurrent, queue_size,
            settings.max_upload_bytes / 2**20, max_pixels / 1e6, timeout, host, port,
        )
        uvicorn.run(
            api,
            host=host,
            port=port,
            access_log=False,  # our own JSON access log replaces uvicorn's
            log_config=None,
            log_level=log_level,
            # A connection-level backstop above the app's own queue: /healthz and 503s stay cheap.
            limit_concurrency=settings.capacity + 64,
            timeout_keep_alive=5,
            timeout_graceful_shutdown=10,
        )


def _setup_logging(level: str, access_log: bool = True) -> None:
    """Plain lines for the server log; access lines are already JSON and printed as-is, at
    their own level so ``--log-level warning`` quiets the server but keeps the access log."""
    root = logging.getLogger("uniremoval")
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access = logging.getLogger("uniremoval.serve.access")
    access.addHandler(handler)
    access.setLevel(logging.INFO if access_log else logging.CRITICAL + 1)
    access.propagate = False
    plain = logging.StreamHandler(sys.stderr)
    plain.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(plain)
    root.setLevel(level.upper())
    logging.getLogger("uvicorn").addHandler(plain)
    logging.getLogger("uvicorn").setLevel(level.upper())
