"""The endpoints: ``POST /v1/restore``, ``GET /v1/models``, ``GET /healthz`` and the web page
at ``/``, on an :class:`~fastapi.APIRouter` that reads its state from ``app.state.server``.

How a restore request flows: admission (503 when full) -> upload read under a byte cap
(413/408) -> every check that needs no model (options, type by content, pixel count,
completeness: 400/413/415) -> a worker slot (504 past the timeout) -> decode, restore,
encode in the worker -> the image. See :mod:`.admission` for why in this order.
"""
from __future__ import annotations

import functools
import re
import threading
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.requests import ClientDisconnect

from .. import __version__
from ..modelfile import bundled_models
from .errors import ApiError, error_response
from .probe import check_upload
from .state import Server
from .upload import EXTENSIONS, MEDIA_TYPES, read_upload
from .work import Result, restore_bytes

router = APIRouter()


def server_of(request: Request) -> Server:
    """The app's shared state."""
    return request.app.state.server  # type: ignore[no-any-return]


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def index(request: Request) -> HTMLResponse:
    """The single-page web app."""
    return HTMLResponse(server_of(request).index_html, headers={"Cache-Control": "no-cache"})


@router.get("/healthz")
async def healthz(request: Request) -> dict[str, Any]:
    """Liveness plus load: restore requests in flight and the capacity before 503."""
    server = server_of(request)
    return {
        "status": "ok",
        "version": __version__,
        "model": server.restorer.model.name,
        "device": str(server.restorer.device),
        "in_flight": server.gate.in_flight,
        "running": server.gate.running,
        "capacity": server.settings.capacity,
    }


@router.get("/v1/models")
async def models(request: Request) -> dict[str, Any]:
    """The loaded model (the one every request uses), the limits, and bundled names."""
    server = server_of(request)
    settings = server.settings
    return {
        "models": [server.model_info],
        "default": server.restorer.model.name,
        "bundled": bundled_models(),
        "limits": {
            "max_upload_bytes": settings.max_upload_bytes,
            "max_pixels": settings.max_pixels,
            "max_concurrent": settings.max_concurrent,
            "queue_size": settings.queue_size,
            "request_timeout_s": settings.request_timeout_s,
        },
        "formats": sorted({EXTENSIONS[f] for f in EXTENSIONS}),
    }


@router.post("/v1/restore")
async def restore(request: Request) -> Response:
    """Restore one image. Multipart field ``file`` (or a raw image/* body); options as
    form fields or query parameters: ``format``, ``jpeg_quality``, ``tile``,
    ``tile_overlap``. Answers the image in the requested (default: input's) format."""
    try:
        return await _restore(request, server_of(request))
    except ApiError as e:
        request.state.error_code = e.code
        return error_response(e.status, e.code, e.message, e.headers)
    except ClientDisconnect:
        request.state.error_code = "client_disconnected"
        return error_response(400, "client_disconnected", "the client went away during the upload")


async def _restore(request: Request, server: Server) -> Response:
    settings, gate = server.settings, server.gate
    deadline = time.monotonic() + settings.request_timeout_s
    async with gate.admission() as ticket:
        upload = await read_upload(request, settings, deadline)
        opts, sniffed = await check_upload(upload, request.query_params, server.restorer, settings, gate, deadline)
        cancel = threading.Event()
        job = functools.partial(restore_bytes, server.restorer, upload.data, sniffed, opts, settings, cancel)
        upload.data = b""  # the job holds the only reference now
        result = await gate.run(ticket, server.executor(), job, cancel, deadline)
    return _image_response(result, upload.filename, server.restorer.model.name)


def _image_response(result: Result, filename: str, model_name: str) -> Response:
    name = f"{_safe_stem(filename)}_restored.{EXTENSIONS[result.fmt]}"
    headers = {
        "Content-Disposition": f'attachment; filename="{name}"',
        "X-Image-Width": str(result.width),
        "X-Image-Height": str(result.height),
        "X-Processing-Ms": f"{result.ms:.1f}",
        "X-Model": _ascii_header(model_name, 200),
        "Cache-Control": "no-store",
    }
    if result.notes:
        headers["X-Notes"] = _ascii_header("; ".join(result.notes))
    return Response(result.data, media_type=MEDIA_TYPES[result.fmt], headers=headers)


def _safe_stem(filename: str) -> str:
    stem = filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1].rsplit(".", 1)[0]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._")[:80]
    return stem or "image"


def _ascii_header(text: str, limit: int = 1000) -> str:
    return re.sub(r"[^\x20-\x7e]", "?", text)[:limit]
