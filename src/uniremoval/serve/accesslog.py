"""The access log: one JSON line per request on the ``uniremoval.serve.access`` logger."""
from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any, Awaitable, Callable

access_log = logging.getLogger("uniremoval.serve.access")


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
