"""The FastAPI application: ``POST /v1/restore``, ``GET /v1/models``, ``GET /healthz`` and
the single-page web app at ``/``.

How a restore request flows, and why:

1. **Admission** before the body is read: at most ``max_concurrent + queue_size`` restore
   requests are in flight; the next gets 503 with ``Retry-After`` at once. Admitting first
   bounds the memory held by uploads to ``capacity x max_upload_bytes``.
2. **Upload** streamed with a byte cap (``Content-Length`` is checked first, then every
   chunk): 413 as soon as the image part passes ``max_upload_bytes``. The multipart body is
   parsed in memory by python-multipart's streaming parser, so nothing is ever spooled to
   a temporary file (Starlette's own form parser spools parts over 1 MiB to disk).
3. **Sniffing** by magic bytes, never by file name or declared type: unknown content is 415,
   a known format that does not decode is 400, too many pixels is 413.
4. **Work** (decode, restore, encode) in a dedicated thread pool gated by a semaphore of
   ``max_concurrent``; the event loop stays free to answer /healthz, uploads and 503s. Torch
   releases the GIL, so this is real parallelism.
5. **Timeout**: past ``request_timeout_s`` the client gets 504 (408 while still uploading);
   running work is told to stop at its next tile and keeps its worker slot until it really
   stops, so the concurrency bound holds even for abandoned work.

Every answer that is not an image is JSON ``{"error": {"code": ..., "message": ...}}``,
and every request writes one JSON access-log line to the ``uniremoval.serve.access`` logger.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import ctypes
import json
import logging
import re
import sys
import threading
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, AsyncIterator, Awaitable, Callable, MutableMapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from .. import __version__
from ..image_io import FORMATS, ImageReadError, ImageTooLargeError, decode_image, encode_image
from ..modelfile import bundled_models
from ..restorer import Restorer
from .settings import ServeSettings

log = logging.getLogger("uniremoval.serve")
access_log = logging.getLogger("uniremoval.serve.access")

#: Room for multipart boundaries, part headers and option fields on top of the image bytes.
MULTIPART_SLACK = 64 * 1024
#: Most parts (image + option fields) a multipart body may have.
MAX_PARTS = 16
#: Longest accepted option field value.
MAX_FIELD_BYTES = 1024

#: Formats recognised by their first bytes; GIF is read (first frame) but written as PNG.
MEDIA_TYPES = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
    "TIFF": "image/tiff",
    "BMP": "image/bmp",
    "GIF": "image/gif",
}
EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "TIFF": "tif", "BMP": "bmp"}


# ----------------------------------------------------------------------------- errors


class ApiError(Exception):
    """An error answer: HTTP status, a stable machine-readable code and a one-line message."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON body every error uses: ``{"error": {"code": ..., "message": ...}}``."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


# ----------------------------------------------------------------------------- sniffing


def sniff_image_type(head: bytes) -> str | None:
    """Pillow format name of an encoded image from its magic bytes, or None if unknown.

    Decides 415 (not an image we take) versus 400 (an image that is broken): Pillow's own
    error cannot tell "not an image" from "a truncated PNG" reliably.
    """
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if head[:2] == b"BM" and len(head) >= 26:
        return "BMP"
    return None


# ----------------------------------------------------------------------------- options


@dataclass(frozen=True)
class RestoreOptions:
    """Per-request options, the same as the CLI's (device and precision are the server's).

    ``tile``: None = the server's setting, ``"auto"``, 0 (never tile) or a size in pixels.
    """

    fmt: str | None = None
    jpeg_quality: int = 95
    tile: int | str | None = None
    tile_overlap: int | None = None


def parse_options(fields: MutableMapping[str, str], settings: ServeSettings) -> RestoreOptions:
    """Validate option fields (form fields or query parameters); 400 on a bad value."""
    fmt: str | None = None
    raw_fmt = fields.get("format") or fields.get("ext")
    if raw_fmt:
        key = "." + raw_fmt.strip().lower().lstrip(".")
        if key not in FORMATS:
            choices = ", ".join(sorted(k.lstrip(".") for k in FORMATS))
            raise ApiError(400, "bad_option", f"format {raw_fmt!r}: use one of {choices}")
        fmt = FORMATS[key]
    quality = settings.default_jpeg_quality
    if fields.get("jpeg_quality"):
        quality = _int_option(fields, "jpeg_quality", 1, 100)
    tile: int | str | None = None
    raw_tile = (fields.get("tile") or "").strip().lower()
    if raw_tile == "auto":
        tile = "auto"
    elif raw_tile:
        tile = _int_option(fields, "tile", 0, settings.max_tile)
        if 0 < tile < 16:
            raise ApiError(400, "bad_option", "tile: use auto, 0 (never tile) or a size of at least 16 pixels")
    overlap = _int_option(fields, "tile_overlap", 0, 1024) if fields.get("tile_overlap") else None
    return RestoreOptions(fmt, quality, tile, overlap)


def _int_option(fields: MutableMapping[str, str], name: str, lo: int, hi: int) -> int:
    raw = fields[name].strip()
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "bad_option", f"{name} {raw[:40]!r}: not an integer") from None
    if not lo <= value <= hi:
        raise ApiError(400, "bad_option", f"{name} {value}: must be in {lo}..{hi}")
    return value


def restorer_with_tiling(restorer: Restorer, tile: int | str | None, overlap: int | None) -> Restorer:
    """A restorer sharing ``restorer``'s network (no reload, no copy of weights) with its
    own tiling settings, so concurrent requests with different options cannot race."""
    engine = restorer.engine.with_tiling(tile, overlap)
    if engine is restorer.engine:
        return restorer
    clone = copy.copy(restorer)
    clone.engine = engine
    return clone


# ----------------------------------------------------------------------------- upload


@dataclass
class Upload:
    """The image part of a request plus its option fields."""

    data: bytes
    filename: str
    fields: dict[str, str] = field(default_factory=dict)


class _Part:
    def __init__(self) -> None:
        self.headers: dict[str, str] = {}
        self.name = ""
        self.filename: str | None = None
        self.chunks: list[bytes] = []
        self.size = 0


async def _chunks(request: Request, deadline: float) -> AsyncIterator[bytes]:
    """The request body, chunk by chunk; 408 when the client sends too slowly."""
    stream = request.stream().__aiter__()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ApiError(408, "upload_timeout", "the upload took longer than the request timeout")
        try:
            chunk = await asyncio.wait_for(stream.__anext__(), remaining)
        except StopAsyncIteration:
            return
        except asyncio.TimeoutError:
            raise ApiError(408, "upload_timeout", "the upload took longer than the request timeout") from None
        if chunk:
            yield chunk


def _too_large(settings: ServeSettings) -> ApiError:
    mib = settings.max_upload_bytes / 2**20
    return ApiError(413, "upload_too_large", f"the upload exceeds the {mib:g} MiB limit ({settings.max_upload_bytes} bytes)")


async def read_upload(request: Request, settings: ServeSettings, deadline: float) -> Upload:
    """Read the image (multipart field ``file``/``image``, or a raw ``image/*`` body) with
    the byte cap enforced while reading; option fields come back alongside."""
    body_cap = settings.max_upload_bytes + MULTIPART_SLACK
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > body_cap:
                raise _too_large(settings)
        except ValueError:
            raise ApiError(400, "bad_request", "Content-Length is not a number") from None
    mime, params = parse_options_header(request.headers.get("content-type", ""))
    mime_s = mime.decode("latin-1").lower()
    if mime_s == "multipart/form-data":
        boundary = params.get(b"boundary")
        if not boundary:
            raise ApiError(400, "bad_multipart", "multipart/form-data without a boundary")
        return await _read_multipart(request, settings, deadline, boundary, body_cap)
    if mime_s.startswith("image/") or mime_s == "application/octet-stream":
        chunks, size = [], 0
        async for chunk in _chunks(request, deadline):
            size += len(chunk)
            if size > settings.max_upload_bytes:
                raise _too_large(settings)
            chunks.append(chunk)
        return Upload(b"".join(chunks), request.headers.get("x-filename", "upload"))
    raise ApiError(
        415,
        "unsupported_media_type",
        "send multipart/form-data with the image in a field named 'file', or the raw image bytes with an image/* Content-Type",
    )


async def _read_multipart(request: Request, settings: ServeSettings, deadline: float, boundary: bytes, body_cap: int) -> Upload:
    parts: list[_Part] = []
    current: list[_Part] = []
    hdr_field: list[bytes] = []
    hdr_value: list[bytes] = []

    def on_part_begin() -> None:
        if len(parts) >= MAX_PARTS:
            raise ApiError(400, "bad_multipart", f"more than {MAX_PARTS} parts in the form")
        current[:] = [_Part()]
        parts.append(current[0])

    def on_header_field(data: bytes, start: int, end: int) -> None:
        hdr_field.append(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        hdr_value.append(data[start:end])

    def on_header_end() -> None:
        name = b"".join(hdr_field).decode("latin-1").strip().lower()
        current[0].headers[name] = b"".join(hdr_value).decode("utf-8", "replace").strip()
        hdr_field.clear()
        hdr_value.clear()

    def on_headers_finished() -> None:
        part = current[0]
        _, opts = parse_options_header(part.headers.get("content-disposition", ""))
        part.name = opts.get(b"name", b"").decode("utf-8", "replace")
        fn = opts.get(b"filename")
        part.filename = fn.decode("utf-8", "replace") if fn is not None else None

    def on_part_data(data: bytes, start: int, end: int) -> None:
        part = current[0]
        part.size += end - start
        is_file = part.filename is not None or part.name in ("file", "image")
        if is_file and part.size > settings.max_upload_bytes:
            raise _too_large(settings)
        if not is_file and part.size > MAX_FIELD_BYTES:
            raise ApiError(400, "bad_option", f"form field {part.name[:40]!r} is longer than {MAX_FIELD_BYTES} bytes")
        part.chunks.append(data[start:end])

    parser = MultipartParser(
        boundary,
        {  # type: ignore[arg-type]
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
        },
    )
    total = 0
    try:
        async for chunk in _chunks(request, deadline):
            total += len(chunk)
            if total > body_cap:
                raise _too_large(settings)
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as e:
        raise ApiError(400, "bad_multipart", f"malformed multipart body: {e}") from None
    image: _Part | None = None
    fields: dict[str, str] = {}
    for part in parts:
        if image is None and (part.name in ("file", "image") or part.filename is not None):
            image = part
        elif part.filename is None:
            fields[part.name] = b"".join(part.chunks).decode("utf-8", "replace")
    if image is None:
        raise ApiError(400, "no_image", "no image in the form: send it in a field named 'file'")
    data = b"".join(image.chunks)
    image.chunks.clear()
    return Upload(data, image.filename or "upload", fields)


# ----------------------------------------------------------------------------- work


class Cancelled(Exception):
    """Raised inside a worker (at a tile boundary) when its request has timed out."""


@dataclass
class Result:
    """An encoded restored image and what the user should know about it."""

    data: bytes
    fmt: str
    width: int
    height: int
    notes: list[str]
    ms: float


def _trim_heap() -> None:
    """Give freed heap pages back to the OS (glibc keeps them otherwise), so the server's
    RSS returns to its baseline after large images instead of staying at its peak."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass


def restore_bytes(
    restorer: Restorer, data: bytes, sniffed: str, opts: RestoreOptions, settings: ServeSettings, cancel: threading.Event
) -> Result:
    """Decode, restore and encode one upload (runs in a worker thread).

    Raises:
        ApiError: 413 for too many pixels, 400 for an image that does not decode or bad
            tile options.
        Cancelled: the request timed out (checked after every tile).
    """
    t0 = time.perf_counter()
    try:
        try:
            img = decode_image(data, name="upload", max_pixels=settings.max_pixels)
        except ImageReadError as e:
            msg = str(e).removeprefix("upload: ")
            if isinstance(e, ImageTooLargeError):
                raise ApiError(
                    413, "too_many_pixels", f"{msg.split(' that guards')[0]} of this server ({settings.max_pixels} pixels)"
                ) from None
            raise ApiError(400, "bad_image", f"{sniffed} image could not be decoded: {msg}") from None
        if cancel.is_set():
            raise Cancelled()
        worker = restorer_with_tiling(restorer, opts.tile, opts.tile_overlap)
        try:
            worker.engine.plan(img.height, img.width)
        except ValueError as e:
            raise ApiError(400, "bad_option", str(e)) from None

        def progress(done: int, total: int) -> None:
            if cancel.is_set():
                raise Cancelled()

        out = worker.restore_image(img, progress)
        if cancel.is_set():
            raise Cancelled()
        fmt = opts.fmt or ("PNG" if sniffed == "GIF" else sniffed)
        encoded, notes = encode_image(out, fmt, opts.jpeg_quality)
        if sniffed == "GIF" and opts.fmt is None:
            notes.append("GIF input: written as PNG")
        return Result(encoded, fmt, img.width, img.height, img.notes + notes, (time.perf_counter() - t0) * 1000)
    finally:
        img = out = None  # type: ignore[assignment]  # drop the big arrays before trimming
        _trim_heap()


class Gate:
    """Admission (bounded in-flight count) and the worker semaphore.

    Lives with one event loop: the semaphore is made on first use in the running loop,
    because asyncio primitives must not cross loops (tests start several).
    """

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.in_flight = 0  # admitted restore requests: queued, running, or abandoned but still running
        self.running = 0
        self._sem: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._sem is None or self._loop is not loop:
            self._sem, self._loop = asyncio.Semaphore(self.settings.max_concurrent), loop
        return self._sem

    def try_admit(self) -> bool:
        if self.in_flight >= self.settings.capacity:
            return False
        self.in_flight += 1
        return True

    def leave(self) -> None:
        self.in_flight -= 1


# ----------------------------------------------------------------------------- access log


class AccessLogMiddleware:
    """Pure ASGI middleware: one JSON line per request with method, path, status, bytes
    in/out, latency, client, request id and the error code if any. Pure ASGI (not
    BaseHTTPMiddleware) so it counts the real bytes and never buffers a body."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]], send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        request_id = uuid.uuid4().hex[:16]
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        counts = {"in": 0, "out": 0}
        status: list[int] = []

        async def counting_receive() -> dict[str, Any]:
            message = await receive()
            if message["type"] == "http.request":
                counts["in"] += len(message.get("body", b""))
            return message

        async def counting_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [(b"x-request-id", request_id.encode())]
            elif message["type"] == "http.response.body":
                counts["out"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            client = scope.get("client")
            record = {
                "ts": round(time.time(), 3),
                "request_id": request_id,
                "method": scope.get("method"),
                "path": scope.get("path"),
                "status": status[0] if status else 500,
                "bytes_in": counts["in"],
                "bytes_out": counts["out"],
                "latency_ms": round((time.perf_counter() - t0) * 1000, 2),
                "client": f"{client[0]}:{client[1]}" if client else None,
            }
            if state.get("error_code"):
                record["error"] = state["error_code"]
            access_log.info(json.dumps(record, separators=(",", ":")))


# ----------------------------------------------------------------------------- app


def _index_html() -> str:
    return (resources.files("uniremoval.serve") / "static" / "index.html").read_text(encoding="utf-8")


def _safe_stem(filename: str) -> str:
    stem = filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1].rsplit(".", 1)[0]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._")[:80]
    return stem or "image"


def _ascii_header(text: str, limit: int = 1000) -> str:
    return re.sub(r"[^\x20-\x7e]", "?", text)[:limit]


def create_app(restorer: Restorer, settings: ServeSettings | None = None) -> FastAPI:
    """Build the HTTP application around a loaded restorer.

    The restorer is used as-is for every request (the model is loaded once, by the
    caller); ``settings`` fixes the limits. Tests pass a tiny model here.
    """
    settings = settings or ServeSettings()
    gate = Gate(settings)
    pools: list[concurrent.futures.ThreadPoolExecutor] = []

    def executor() -> concurrent.futures.ThreadPoolExecutor:
        # Made on first use (and again after a shutdown), so an app can be served more than
        # once, e.g. by successive test clients.
        if not pools:
            pools.append(concurrent.futures.ThreadPoolExecutor(max_workers=settings.max_concurrent, thread_name_prefix="uniremoval-restore"))
        return pools[0]
    index_html = _index_html()
    cfg = restorer.model.config
    model_info = {
        "name": restorer.model.name,
        "arch": cfg.arch,
        "arch_args": cfg.arch_args,
        "kinds": cfg.kinds,
        "sha256": cfg.sha256,
        "provenance": cfg.provenance,
        "device": str(restorer.device),
        "precision": str(restorer.engine.dtype).removeprefix("torch."),
        "tile": restorer.engine.tile if restorer.engine.pixel_budget is not None else 0,
        "tile_overlap": restorer.engine.overlap,
    }

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        # Work still running is abandoned (its results are not wanted any more).
        while pools:
            pools.pop().shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="uniremoval", version=__version__, lifespan=lifespan, docs_url="/docs", redoc_url=None)
    app.state.restorer = restorer
    app.state.settings = settings
    app.state.gate = gate
    app.add_middleware(AccessLogMiddleware)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        request.state.error_code = code
        return error_response(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        request.state.error_code = "bad_request"
        return error_response(400, "bad_request", "; ".join(str(e.get("msg")) for e in exc.errors())[:500])

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        request.state.error_code = "internal"
        return error_response(500, "internal", "internal server error (logged on the server)")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(index_html, headers={"Cache-Control": "no-cache"})

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        """Liveness plus load: restore requests in flight and the capacity before 503."""
        return {
            "status": "ok",
            "version": __version__,
            "model": restorer.model.name,
            "device": str(restorer.device),
            "in_flight": gate.in_flight,
            "running": gate.running,
            "capacity": settings.capacity,
        }

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        """The loaded model (the one every request uses), the limits, and bundled names."""
        return {
            "models": [model_info],
            "default": restorer.model.name,
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

    @app.post("/v1/restore")
    async def restore(request: Request) -> Response:
        """Restore one image. Multipart field ``file`` (or a raw image/* body); options as
        form fields or query parameters: ``format``, ``jpeg_quality``, ``tile``,
        ``tile_overlap``. Answers the image in the requested (default: input's) format."""
        try:
            return await _restore(request)
        except ApiError as e:
            request.state.error_code = e.code
            return error_response(e.status, e.code, e.message, e.headers)
        except ClientDisconnect:
            request.state.error_code = "client_disconnected"
            return error_response(400, "client_disconnected", "the client went away during the upload")

    async def _restore(request: Request) -> Response:
        deadline = time.monotonic() + settings.request_timeout_s
        if not gate.try_admit():
            raise ApiError(
                503,
                "busy",
                f"the server is busy ({settings.capacity} requests in flight); retry in {settings.retry_after_s} s",
                {"Retry-After": str(settings.retry_after_s)},
            )
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                gate.leave()

        sem_held = False
        try:
            upload = await read_upload(request, settings, deadline)
            fields = dict(request.query_params)
            fields.update(upload.fields)
            opts = parse_options(fields, settings)
            if not upload.data:
                raise ApiError(400, "empty_upload", "the uploaded file is empty (0 bytes)")
            sniffed = sniff_image_type(upload.data[:32])
            if sniffed is None:
                raise ApiError(
                    415, "unsupported_media_type", "not a supported image (PNG, JPEG, WebP, TIFF, BMP or GIF), judged by its content"
                )
            sem = gate.semaphore()
            try:
                await asyncio.wait_for(sem.acquire(), max(deadline - time.monotonic(), 0.001))
            except asyncio.TimeoutError:
                raise ApiError(504, "timeout", f"waited in the queue longer than the {settings.request_timeout_s:g} s request timeout") from None
            sem_held = True
            cancel = threading.Event()
            gate.running += 1
            loop = asyncio.get_running_loop()
            fut = loop.run_in_executor(executor(), restore_bytes, restorer, upload.data, sniffed, opts, settings, cancel)
            upload.data = b""

            def finished(_: asyncio.Future[Result]) -> None:
                # Runs when the work has truly ended, even after a timeout answer: only then
                # is its worker slot and admission free again.
                gate.running -= 1
                sem.release()
                gate.leave()

            fut.add_done_callback(finished)
            # From here on the slot and the admission belong to `finished`.
            sem_held = False
            released = True
            try:
                result = await asyncio.wait_for(asyncio.shield(fut), max(deadline - time.monotonic(), 0.001))
            except asyncio.TimeoutError:
                cancel.set()
                fut.add_done_callback(lambda f: f.exception() if not f.cancelled() else None)  # silence "never retrieved"
                raise ApiError(504, "timeout", f"restoring took longer than the {settings.request_timeout_s:g} s request timeout") from None
            except Cancelled:
                raise ApiError(504, "timeout", "restoring was stopped at the request timeout") from None
            except MemoryError:
                raise ApiError(503, "out_of_memory", "out of memory restoring this image; retry later or send a smaller one", {"Retry-After": str(settings.retry_after_s)}) from None
            except ApiError:
                raise
        finally:
            if sem_held:
                gate.semaphore().release()
            release()
        name = f"{_safe_stem(upload.filename)}_restored.{EXTENSIONS[result.fmt]}"
        headers = {
            "Content-Disposition": f'attachment; filename="{name}"',
            "X-Image-Width": str(result.width),
            "X-Image-Height": str(result.height),
            "X-Processing-Ms": f"{result.ms:.1f}",
            "X-Model": _ascii_header(restorer.model.name, 200),
            "Cache-Control": "no-store",
        }
        if result.notes:
            headers["X-Notes"] = _ascii_header("; ".join(result.notes))
        return Response(result.data, media_type=MEDIA_TYPES[result.fmt], headers=headers)

    return app
