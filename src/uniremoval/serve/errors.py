"""Error answers of the HTTP API: every answer that is not an image is JSON
``{"error": {"code": ..., "message": ...}}``."""
from __future__ import annotations

from fastapi.responses import JSONResponse


class ApiError(Exception):
    """An error answer: HTTP status, a stable machine-readable code and a one-line message."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


class Cancelled(Exception):
    """Raised inside a worker (at a tile boundary) when its request has timed out."""


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON body every error uses: ``{"error": {"code": ..., "message": ...}}``."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def too_many_pixels(width: int, height: int, max_pixels: int) -> ApiError:
    """413 for an image over the server's pixel limit, worded like the decoder's own error."""
    return ApiError(
        413,
        "too_many_pixels",
        f"{width}x{height} = {width * height / 1e6:.1f} MP exceeds the {max_pixels / 1e6:.0f} MP limit "
        f"of this server ({max_pixels} pixels)",
    )
