"""Reading an upload: the request body streamed under a byte cap into the image bytes and
the option fields, and the image type judged by its first bytes.

The multipart body is parsed in memory by python-multipart's streaming parser, so nothing is
ever spooled to a temporary file (Starlette's own form parser spools parts over 1 MiB to
disk); ``Content-Length`` is checked first, then every chunk, so an oversized upload gets
413 while it is still arriving.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import AsyncIterator

from fastapi import Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from .errors import ApiError
from .settings import ServeSettings

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
