"""The FastAPI application factory: :func:`create_app` wires the routes (:mod:`.routes`),
the error handlers, the access log (:mod:`.accesslog`) and the shared state (:mod:`.state`).

The layers, from the bottom: :mod:`.errors` (the JSON error answer), :mod:`.upload`
(reading the body under a byte cap, sniffing the type), :mod:`.request` (per-request
options), :mod:`.work` (decode, restore, encode in a worker), :mod:`.admission` (how many
requests are in flight and running), :mod:`.probe` (checks before the queue), then the
routes and this factory.

Every answer that is not an image is JSON ``{"error": {"code": ..., "message": ...}}``,
and every request writes one JSON access-log line to the ``uniremoval.serve.access`` logger.
"""
from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..restorer import Restorer
from .accesslog import AccessLogMiddleware
from .errors import error_response
from .routes import router
from .settings import ServeSettings
from .state import Server

log = logging.getLogger("uniremoval.serve")


def create_app(restorer: Restorer, settings: ServeSettings | None = None) -> FastAPI:
    """Build the HTTP application around a loaded restorer.

    The restorer is used as-is for every request (the model is loaded once, by the
    caller); ``settings`` fixes the limits. Tests pass a tiny model here.
    """
    settings = settings or ServeSettings()
    server = Server.create(restorer, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        server.shutdown()

    app = FastAPI(title="uniremoval", version=__version__, lifespan=lifespan, docs_url="/docs", redoc_url=None)
    app.state.server = server
    app.state.restorer = restorer
    app.state.settings = settings
    app.state.gate = server.gate
    app.add_middleware(AccessLogMiddleware)
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _internal_error)
    app.include_router(router)
    return app


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    request.state.error_code = code
    return error_response(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    request.state.error_code = "bad_request"
    return error_response(400, "bad_request", "; ".join(str(e.get("msg")) for e in exc.errors())[:500])


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    request.state.error_code = "internal"
    return error_response(500, "internal", "internal server error (logged on the server)")
