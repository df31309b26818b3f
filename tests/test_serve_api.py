"""HTTP API of `uniremoval serve`: every status the API promises, with a tiny model.

The identity model returns its input, so a 200 can be checked pixel for pixel; slow
restorers (a subclass that waits) make the queue-full 503 and the timeout 504 deterministic.
"""
from __future__ import annotations

import io
import json
import logging
import os
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

with warnings.catch_warnings():  # Starlette's note that TestClient will move to httpx2
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient  # noqa: E402

from uniremoval.restorer import Restorer  # noqa: E402
from uniremoval.serve import ServeSettings, create_app  # noqa: E402
from uniremoval.serve.upload import sniff_image_type  # noqa: E402



def png_bytes(h: int = 48, w: int = 64, seed: int = 0, mode: str = "RGB") -> bytes:
    rng = np.random.default_rng(seed)
    shape = (h, w) if mode == "L" else (h, w, len(mode))
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(buf, "PNG")
    return buf.getvalue()


def jpeg_bytes(h: int = 40, w: int = 56) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((h, w, 3), 120, np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture(scope="module")
def restorer(identity_model: Path) -> Restorer:
    return Restorer.from_pretrained(identity_model, device="cpu", precision="fp32")


@pytest.fixture()
def make_client(restorer: Restorer) -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def make(r: Restorer | None = None, **limits: Any) -> TestClient:
        client = TestClient(create_app(r or restorer, ServeSettings(**limits)), raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.__exit__(None, None, None)


class SlowRestorer(Restorer):
    """Waits for ``release`` (or ``steps x delay`` seconds, reporting progress like tiles)."""

    def __init__(self, base: Restorer, release: threading.Event | None = None, steps: int = 0, delay: float = 0.0) -> None:
        super().__init__(base.model, base.engine)
        self.release = release
        self.steps, self.delay = steps, delay
        self.finished = threading.Event()

    def restore_image(self, img, progress=None):  # type: ignore[no-untyped-def, override]
        try:
            if self.release is not None:
                self.release.wait(10)
            for i in range(self.steps):
                time.sleep(self.delay)
                if progress:
                    progress(i + 1, self.steps)
            return super().restore_image(img)
        finally:
            self.finished.set()


def error_of(res: Any) -> dict[str, str]:
    body = res.json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body
    return body["error"]


# ----------------------------------------------------------------------------- 200


def test_restore_roundtrip_png(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    data = png_bytes()
    res = client.post("/v1/restore", files={"file": ("photo.png", data, "image/png")})
    assert res.status_code == 200, res.text
    assert res.headers["content-type"] == "image/png"
    assert res.headers["content-disposition"] == 'attachment; filename="photo_restored.png"'
    assert (res.headers["x-image-width"], res.headers["x-image-height"]) == ("64", "48")
    assert res.headers["x-request-id"]
    out = np.asarray(Image.open(io.BytesIO(res.content)))
    assert np.array_equal(out, np.asarray(Image.open(io.BytesIO(data))))  # identity model


def test_options_format_quality_tiling_and_raw_body(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    data = png_bytes(90, 100, mode="RGBA")
    res = client.post("/v1/restore", files={"file": ("a.png", data)}, data={"format": "webp", "jpeg_quality": "80"})
    assert res.status_code == 200 and res.headers["content-type"] == "image/webp"
    assert Image.open(io.BytesIO(res.content)).mode == "RGBA"  # alpha kept
    # Query parameters work too; JPEG has no alpha, which the notes header says.
    res = client.post("/v1/restore?format=jpg&jpeg_quality=70", files={"file": ("a.png", data)})
    assert res.status_code == 200 and res.headers["content-type"] == "image/jpeg"
    assert "alpha dropped" in res.headers["x-notes"]
    assert res.headers["content-disposition"].endswith('a_restored.jpg"')
    # Small tiles with overlap: still the identity, so the same pixels come back.
    res = client.post("/v1/restore", files={"file": ("t.png", data)}, data={"tile": "32", "tile_overlap": "8"})
    assert res.status_code == 200
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(res.content))), np.asarray(Image.open(io.BytesIO(data))))
    # At a working scale the identity's (zero) change is carried up: the same pixels again.
    res = client.post("/v1/restore?scale=2", files={"file": ("t.png", data)})
    assert res.status_code == 200
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(res.content))), np.asarray(Image.open(io.BytesIO(data))))
    # A raw image body (no multipart); the default output format follows the content.
    res = client.post("/v1/restore", content=jpeg_bytes(), headers={"content-type": "application/octet-stream"})
    assert res.status_code == 200 and res.headers["content-type"] == "image/jpeg"


def test_sniffing_ignores_names_and_declared_types(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    res = client.post("/v1/restore", files={"file": ("notes.txt", jpeg_bytes(), "text/plain")})
    assert res.status_code == 200 and res.headers["content-type"] == "image/jpeg"
    assert sniff_image_type(png_bytes()[:32]) == "PNG" and sniff_image_type(b"GIF89a" + b"\0" * 20) == "GIF"
    assert sniff_image_type(b"<html>") is None


# ----------------------------------------------------------------------------- 400 / 415


def test_malformed_images_are_400(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    truncated = png_bytes()[:120]
    res = client.post("/v1/restore", files={"file": ("x.png", truncated, "image/png")})
    assert res.status_code == 400 and error_of(res)["code"] == "bad_image"
    res = client.post("/v1/restore", files={"file": ("x.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 64, "image/jpeg")})
    assert res.status_code == 400 and error_of(res)["code"] == "bad_image"
    res = client.post("/v1/restore", files={"file": ("x.png", b"", "image/png")})
    assert res.status_code == 400 and error_of(res)["code"] == "empty_upload"
    res = client.post("/v1/restore", data={"format": "png"})
    assert res.status_code in (400, 415)
    res = client.post("/v1/restore", content=b"--x\r\nbroken", headers={"content-type": "multipart/form-data; boundary=x"})
    assert res.status_code == 400 and error_of(res)["code"] in ("bad_multipart", "no_image")
    res = client.post("/v1/restore", files={"other": ("a.bin", b"", "application/octet-stream")}, data={"format": "png"})
    assert res.status_code == 400


@pytest.mark.parametrize(
    "fields, needle",
    [
        ({"format": "gif"}, "format"),
        ({"jpeg_quality": "0"}, "jpeg_quality"),
        ({"tile": "big"}, "tile"),
        ({"tile": "32", "tile_overlap": "64"}, "overlap"),
        ({"scale": "0"}, "scale"),
        ({"scale": "huge"}, "scale"),
    ],
)
def test_bad_options_are_400(make_client: Callable[..., TestClient], fields: dict[str, str], needle: str) -> None:
    client = make_client()
    res = client.post("/v1/restore", files={"file": ("a.png", png_bytes())}, data=fields)
    assert res.status_code == 400
    err = error_of(res)
    assert err["code"] == "bad_option" and needle in err["message"]


def test_non_images_are_415(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    for payload in (b"hello, I am text", b"%PDF-1.7\n...", b"\x00" * 100):
        res = client.post("/v1/restore", files={"file": ("photo.png", payload, "image/png")})
        assert res.status_code == 415, payload
        assert error_of(res)["code"] == "unsupported_media_type"
    res = client.post("/v1/restore", content=b"plain", headers={"content-type": "text/plain"})
    assert res.status_code == 415


# ----------------------------------------------------------------------------- 413


def test_upload_too_large_is_413(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_upload_bytes=20_000)
    big = png_bytes(128, 128)  # random pixels do not compress: ~49 KB
    assert len(big) > 20_000
    res = client.post("/v1/restore", files={"file": ("big.png", big)})
    assert res.status_code == 413
    err = error_of(res)
    assert err["code"] == "upload_too_large" and "20000 bytes" in err["message"]

    # No Content-Length (chunked): the cap is enforced while reading.
    def chunks() -> Iterator[bytes]:
        for i in range(0, len(big), 4096):
            yield big[i : i + 4096]

    res = client.post("/v1/restore", content=chunks(), headers={"content-type": "image/png"})
    assert res.status_code == 413 and error_of(res)["code"] == "upload_too_large"
    small = png_bytes(16, 16)
    assert client.post("/v1/restore", files={"file": ("s.png", small)}).status_code == 200


def test_too_many_pixels_is_413(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_pixels=1000)
    res = client.post("/v1/restore", files={"file": ("a.png", png_bytes(48, 64))})
    assert res.status_code == 413
    err = error_of(res)
    assert err["code"] == "too_many_pixels" and "1000 pixels" in err["message"]


# ----------------------------------------------------------------------------- 503 / 504


def _wait_for(pred: Callable[[], bool], timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, "condition not reached"
        time.sleep(0.01)


def test_full_queue_is_503_with_retry_after(make_client: Callable[..., TestClient], restorer: Restorer) -> None:
    release = threading.Event()
    client = make_client(SlowRestorer(restorer, release), max_concurrent=1, queue_size=1, retry_after_s=7)
    results: list[int] = []

    def post() -> None:
        results.append(client.post("/v1/restore", files={"file": ("a.png", png_bytes())}).status_code)

    threads = [threading.Thread(target=post) for _ in range(2)]
    try:
        for t in threads:
            t.start()
        # One running, one queued: the server is at capacity but still answers health checks.
        _wait_for(lambda: client.get("/healthz").json()["in_flight"] == 2)
        assert client.get("/healthz").json()["running"] == 1
        res = client.post("/v1/restore", files={"file": ("a.png", png_bytes())})
        assert res.status_code == 503
        assert res.headers["retry-after"] == "7"
        assert error_of(res)["code"] == "busy"
    finally:
        release.set()
        for t in threads:
            t.join(20)
    assert results == [200, 200]
    assert client.get("/healthz").json()["in_flight"] == 0
    assert client.post("/v1/restore", files={"file": ("a.png", png_bytes())}).status_code == 200


def test_timeout_is_504_and_work_stops(make_client: Callable[..., TestClient], restorer: Restorer) -> None:
    slow = SlowRestorer(restorer, steps=200, delay=0.02)  # would take 4 s
    client = make_client(slow, request_timeout_s=0.4)
    t0 = time.monotonic()
    res = client.post("/v1/restore", files={"file": ("a.png", png_bytes())})
    assert res.status_code == 504 and error_of(res)["code"] == "timeout"
    assert time.monotonic() - t0 < 3
    # The worker is told to stop at its next step, then frees its slot.
    assert slow.finished.wait(3)
    _wait_for(lambda: client.get("/healthz").json()["in_flight"] == 0, 3)


def test_queue_wait_timeout_is_504(make_client: Callable[..., TestClient], restorer: Restorer) -> None:
    release = threading.Event()
    client = make_client(SlowRestorer(restorer, release), max_concurrent=1, queue_size=2, request_timeout_s=0.5)
    first: list[int] = []
    t = threading.Thread(target=lambda: first.append(client.post("/v1/restore", files={"file": ("a.png", png_bytes())}).status_code))
    t.start()
    try:
        _wait_for(lambda: client.get("/healthz").json()["running"] == 1)
        res = client.post("/v1/restore", files={"file": ("b.png", png_bytes())})
        assert res.status_code == 504 and "queue" in error_of(res)["message"]
    finally:
        release.set()
        t.join(20)
    assert first == [504]  # the first one also ran past its 0.5 s while held


class BrokenRestorer(Restorer):
    def restore_image(self, img, progress=None):  # type: ignore[no-untyped-def, override]
        raise RuntimeError("simulated failure inside the model")


def test_internal_error_is_500_json_and_server_stays_up(make_client: Callable[..., TestClient], restorer: Restorer) -> None:
    client = make_client(BrokenRestorer(restorer.model, restorer.engine))
    res = client.post("/v1/restore", files={"file": ("a.png", png_bytes())})
    assert res.status_code == 500 and error_of(res)["code"] == "internal"
    assert "simulated" not in res.text  # internals stay in the server log
    health = client.get("/healthz").json()
    assert health["in_flight"] == 0 and health["running"] == 0


# ----------------------------------------------------------------------------- info endpoints


def test_models_healthz_index_and_404(make_client: Callable[..., TestClient], restorer: Restorer) -> None:
    client = make_client(max_upload_bytes=123_456)
    info = client.get("/v1/models").json()
    m = info["models"][0]
    assert m["name"] == restorer.model.name and m["arch"] == "plain" and m["sha256"] == restorer.model.config.sha256
    assert m["device"] == "cpu" and info["limits"]["max_upload_bytes"] == 123_456
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'id="file"' in page.text and "v1/restore" in page.text and "http://" not in page.text.replace("http://www.w3.org", "")
    res = client.get("/nope")
    assert res.status_code == 404 and error_of(res)["code"] == "not_found"
    res = client.get("/v1/restore")
    assert res.status_code == 405 and error_of(res)["code"] == "method_not_allowed"


# ----------------------------------------------------------------------------- hygiene


def test_no_temporary_files_left(make_client: Callable[..., TestClient], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spool = tmp_path / "tmp"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    client = make_client(max_upload_bytes=4 * 2**20)
    big = png_bytes(900, 900)  # ~2.4 MB: over Starlette's 1 MiB in-memory spool limit
    assert len(big) > 2**20
    assert client.post("/v1/restore", files={"file": ("big.png", big)}).status_code == 200
    assert client.post("/v1/restore", files={"file": ("bad.png", big[: len(big) // 2])}).status_code == 400
    assert client.post("/v1/restore", files={"file": ("x.png", b"x" * (5 * 2**20))}).status_code == 413
    assert list(spool.iterdir()) == []


def test_model_loaded_once(identity_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import uniremoval.restorer as restorer_mod
    from uniremoval.cli.serve_cmds import build_app

    calls: list[str] = []
    real = restorer_mod.load_model

    def counting(*a: Any, **k: Any) -> Any:
        calls.append(str(a[0]))
        return real(*a, **k)

    monkeypatch.setattr(restorer_mod, "load_model", counting)
    app = build_app(str(identity_model), device="cpu", queue_size=2)
    assert app.state.settings.max_concurrent == 1  # CPU default
    with TestClient(app) as client:
        for _ in range(3):
            res = client.post("/v1/restore", files={"file": ("a.png", png_bytes())}, data={"tile": "64"})
            assert res.status_code == 200
    assert len(calls) == 1


def test_access_log_lines(make_client: Callable[..., TestClient], caplog: pytest.LogCaptureFixture) -> None:
    client = make_client()
    data = png_bytes()
    with caplog.at_level(logging.INFO, logger="uniremoval.serve.access"):
        ok = client.post("/v1/restore", files={"file": ("a.png", data)})
        bad = client.post("/v1/restore", files={"file": ("a.png", b"not an image")})
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "uniremoval.serve.access"]
    assert len(lines) == 2
    first, second = lines
    assert first["method"] == "POST" and first["path"] == "/v1/restore" and first["status"] == 200
    assert first["bytes_in"] > len(data) and first["bytes_out"] == len(ok.content)
    assert first["latency_ms"] > 0 and first["client"] and first["request_id"] == ok.headers["x-request-id"]
    assert second["status"] == 415 and second["error"] == "unsupported_media_type" and bad.status_code == 415


def test_cli_serve_without_model_fails_clearly() -> None:
    from typer.testing import CliRunner

    from uniremoval.cli import app

    res = CliRunner().invoke(app, ["serve", "--port", "0", "--model", "no-such-model"])
    assert res.exit_code == 1
    assert "no-such-model: no such model" in " ".join(res.output.split())


def test_app_can_be_served_twice(restorer: Restorer) -> None:
    app = create_app(restorer)
    for _ in range(2):
        with TestClient(app) as client:
            assert client.post("/v1/restore", files={"file": ("a.png", png_bytes())}).status_code == 200


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError):
        ServeSettings(max_concurrent=0)
    with pytest.raises(ValueError):
        ServeSettings(request_timeout_s=0)
    assert ServeSettings(max_concurrent=2, queue_size=3).capacity == 5


@pytest.mark.skipif(os.name != "posix", reason="loopback server test uses POSIX sockets")
def test_real_server_survives_bad_clients(identity_model: Path) -> None:
    """Through a real uvicorn on loopback: a client that promises 100 kB, sends 4 bytes and
    hangs up does not hold a slot; one that stalls mid-upload gets 408 at the timeout; the
    next request succeeds."""
    import socket

    import httpx

    from uniremoval.serve.background import serve_in_thread

    app = create_app(Restorer.from_pretrained(identity_model, device="cpu"), ServeSettings(request_timeout_s=1.0))
    head = b"POST /v1/restore HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 100000\r\n\r\n\x89PNG"
    with serve_in_thread(app) as base:
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(head)
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(head)  # ... and then nothing more
            t0 = time.monotonic()
            answer = b""
            while b"upload_timeout" not in answer:
                chunk = s.recv(4096)  # the status line and the JSON body may come apart
                if not chunk:
                    break
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 408") and b"upload_timeout" in answer
            assert 0.8 < time.monotonic() - t0 < 4
        res = httpx.post(f"{base}/v1/restore", files={"file": ("a.png", png_bytes())}, timeout=20)
        assert res.status_code == 200
        assert httpx.get(f"{base}/healthz", timeout=5).json()["in_flight"] == 0


def test_every_working_resolution_the_page_offers_is_accepted(make_client: Callable[..., TestClient]) -> None:
    import re

    client = make_client()
    page = client.get("/").text
    block = re.search(r'<select id="scale">(.*?)</select>', page, re.S)
    assert block, "the page has no working-resolution choice"
    values = [v for v in re.findall(r'<option value="([^"]*)"', block.group(1)) if v]
    assert {"1", "auto"} <= set(values)
    assert 'form.append("scale"' in page
    data = png_bytes(40, 56)
    for v in values:
        res = client.post("/v1/restore", files={"file": ("t.png", data)}, data={"scale": v})
        assert res.status_code == 200, (v, res.text)
        assert Image.open(io.BytesIO(res.content)).size == (56, 40)
