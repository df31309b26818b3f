"""What `uniremoval serve` checks before work: malformed uploads are refused before they wait
for a worker, /v1/models publishes no trainer paths, and the CLI reads tile and device with
the shared parser (uniremoval.options)."""
from __future__ import annotations

import io
import json
import threading
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

with warnings.catch_warnings():  # Starlette's note that TestClient will move to httpx2
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient  # noqa: E402

from uniremoval.restorer import Restorer  # noqa: E402
from uniremoval.serve import ServeSettings, create_app, redact_provenance  # noqa: E402
from uniremoval.serve.probe import probe_image  # noqa: E402
from uniremoval.serve.upload import sniff_image_type  # noqa: E402


def encoded(fmt: str, h: int = 48, w: int = 64, **save: Any) -> bytes:
    rng = np.random.default_rng(1)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buf, fmt, **save)
    return buf.getvalue()


@pytest.fixture(scope="module")
def restorer(identity_model: Path) -> Restorer:
    return Restorer.from_pretrained(identity_model, device="cpu", precision="fp32")


class HeldRestorer(Restorer):
    """Holds its worker until ``release`` is set (at most 20 s), so the single worker slot is
    deterministically busy while other requests arrive."""

    def __init__(self, base: Restorer) -> None:
        super().__init__(base.model, base.engine)
        self.release = threading.Event()
        self.started = threading.Event()

    def restore_image(self, img, progress=None):  # type: ignore[no-untyped-def, override]
        self.started.set()
        self.release.wait(20)
        return super().restore_image(img)


MALFORMED = [
    ("truncated PNG", {"files": {"file": ("a.png", encoded("PNG")[:-40])}}, 400, "bad_image"),
    ("truncated JPEG", {"files": {"file": ("a.jpg", encoded("JPEG")[: len(encoded("JPEG")) // 2])}}, 400, "bad_image"),
    ("truncated WebP", {"files": {"file": ("a.webp", encoded("WEBP", lossless=True)[:200])}}, 400, "bad_image"),
    ("too many pixels", {"files": {"file": ("big.png", encoded("PNG", 100, 100))}}, 413, "too_many_pixels"),
    ("too many pixels (JPEG)", {"files": {"file": ("big.jpg", encoded("JPEG", 100, 100))}}, 413, "too_many_pixels"),
    ("overlap too big for the tile", {"files": {"file": ("a.png", encoded("PNG"))}, "data": {"tile": "32", "tile_overlap": "64"}}, 400, "bad_option"),
    ("bad tile", {"files": {"file": ("a.png", encoded("PNG"))}, "data": {"tile": "8"}}, 400, "bad_option"),
    ("not an image", {"files": {"file": ("a.png", b"hello, I am text")}}, 415, "unsupported_media_type"),
    ("empty", {"files": {"file": ("a.png", b"")}}, 400, "empty_upload"),
]


@pytest.fixture()
def held_client(restorer: Restorer) -> Iterator[tuple[TestClient, HeldRestorer, list[int]]]:
    held = HeldRestorer(restorer)
    # A long timeout: were a malformed upload queued, it would wait for the held worker
    # and come back as 504 (or only once released), never as the 4xx asserted below.
    settings = ServeSettings(max_concurrent=1, queue_size=2, max_pixels=5000, request_timeout_s=15)
    with TestClient(create_app(held, settings), raise_server_exceptions=False) as client:
        first: list[int] = []
        busy = threading.Thread(target=lambda: first.append(client.post("/v1/restore", files={"file": ("ok.png", encoded("PNG"))}).status_code))
        busy.start()
        try:
            assert held.started.wait(10), "the first request never reached the worker"
            yield client, held, first
        finally:
            held.release.set()
            busy.join(30)


@pytest.mark.parametrize("label, request_kw, status, code", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_upload_refused_before_the_queue(
    held_client: tuple[TestClient, HeldRestorer, list[int]], label: str, request_kw: dict[str, Any], status: int, code: str
) -> None:
    client, held, first = held_client
    res = client.post("/v1/restore", **request_kw)
    # Answered while the only worker is still held: the upload never waited for it.
    assert not held.release.is_set() and first == []
    assert client.get("/healthz").json()["running"] == 1
    assert res.status_code == status, (label, res.text)
    assert res.json()["error"]["code"] == code


def test_probe_reads_upright_size_and_passes_good_images() -> None:
    settings = ServeSettings(max_pixels=10_000)
    for fmt, kw in (("PNG", {}), ("JPEG", {}), ("WEBP", {}), ("BMP", {}), ("TIFF", {}), ("GIF", {})):
        data = encoded(fmt, 30, 50, **kw)
        assert probe_image(data, sniff_image_type(data[:32]) or "", settings) == (30, 50), fmt
    # EXIF orientation 6 (rotate 90): the upright image is 50 high and 30 wide.
    img = Image.fromarray(np.zeros((30, 50, 3), np.uint8))
    exif = img.getexif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes())
    assert probe_image(buf.getvalue(), "JPEG", settings) == (50, 30)
    # 16-bit PNG (the decoder reads it on its own path): still accepted.
    buf = io.BytesIO()
    Image.fromarray(np.full((20, 24), 40000, np.uint16)).save(buf, "PNG")
    assert probe_image(buf.getvalue(), "PNG", settings) == (20, 24)


# ----------------------------------------------------------------------------- provenance


PRIVATE = {
    "stage": "transfer",
    "steps": 4000,
    "date": "2026-12-01T22:02:49+00:00",
    "source": "/root/.cache/uniremoval/c5/runs/transfer/export/transfer.json",
    "source_sha256": "1871c85abaf15670c50380da5940e3c81a95e449a177fda3ccd63a6e3256a926",
    "inputs": {"teachers.haze": {"path": "/home/alice/.cache/uniremoval/c4/teacher-haze.json", "sha256": "8d22"}},
    "pipeline": {
        "out_dir": "/home/alice/runs",
        "transfer": {"set": ["model.init=/home/alice/.cache/x/transfer.json", "run.steps=4000"]},
        "windows": "C:\\Users\\alice\\models\\m.json",
        "models": "~alice/models/m.json",
        "url": "https://github.com/org/repo",
    },
    "host": "alice-workstation",
    "user": "alice",
}


def test_redact_provenance_keeps_facts_not_paths() -> None:
    pub = redact_provenance(PRIVATE)
    text = json.dumps(pub)
    for leak in ("/root", "/home", "alice", ".cache", "C:\\\\", "Users"):
        assert leak not in text, leak
    assert pub["steps"] == 4000 and pub["date"] == PRIVATE["date"] and pub["source_sha256"] == PRIVATE["source_sha256"]
    assert pub["source"] == "transfer.json"
    assert pub["inputs"]["teachers.haze"] == {"path": "teacher-haze.json", "sha256": "8d22"}
    assert pub["pipeline"]["transfer"]["set"] == ["model.init=transfer.json", "run.steps=4000"]
    assert pub["pipeline"]["windows"] == "m.json" and pub["pipeline"]["models"] == "m.json"
    assert pub["pipeline"]["url"] == "https://github.com/org/repo"
    assert PRIVATE["source"].startswith("/root/")  # the input is not changed


def test_models_endpoint_shows_no_trainer_paths(tmp_path: Path, identity_model: Path) -> None:
    cfg = json.loads(identity_model.read_text())
    cfg["provenance"] = PRIVATE
    model = tmp_path / "leaky.json"
    model.write_text(json.dumps(cfg))
    (tmp_path / cfg["weights"]).write_bytes((identity_model.parent / cfg["weights"]).read_bytes())
    restorer = Restorer.from_pretrained(model, device="cpu")
    with TestClient(create_app(restorer)) as client:
        res = client.get("/v1/models")
    assert res.status_code == 200
    for leak in ("/root/", "/home/", "alice", ".cache"):
        assert leak not in res.text, leak
    m = res.json()["models"][0]
    assert m["name"] == "leaky" and m["arch"] == "plain" and m["kinds"] == cfg["kinds"] and m["sha256"] == cfg["sha256"]
    assert m["parameters"] > 0 and m["weights_bytes"] == (tmp_path / cfg["weights"]).stat().st_size
    assert m["provenance"]["steps"] == 4000 and m["provenance"]["source"] == "transfer.json"


# ----------------------------------------------------------------------------- CLI


def _normalized_help() -> str:
    from typer.testing import CliRunner

    from uniremoval.cli import app

    res = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200", "TERM": "dumb"})
    assert res.exit_code == 0
    return " ".join(res.output.replace("│", " ").split())


def test_serve_help_quotes_the_engines_defaults() -> None:
    from uniremoval.infer import DEFAULT_OVERLAP

    text = _normalized_help()
    assert f"CPU {DEFAULT_OVERLAP['cpu']}, CUDA {DEFAULT_OVERLAP['cuda']}" in text
    assert "(64, at most" not in text


@pytest.mark.parametrize("args, needle", [(["--tile", "8"], "at least 16"), (["--tile", "big"], "tile 'big'"), (["--scale", "0"], "scale '0'")])
def test_serve_cli_refuses_bad_tile(args: list[str], needle: str) -> None:
    from typer.testing import CliRunner

    from uniremoval.cli import app

    res = CliRunner().invoke(app, ["serve", "--port", "0", *args])
    assert res.exit_code == 2
    assert needle in " ".join(res.output.split())


def test_build_app_refuses_unknown_device(identity_model: Path) -> None:
    from uniremoval.cli.serve_cmds import build_app

    with pytest.raises(ValueError, match="use auto, cpu, cuda"):
        build_app(str(identity_model), device="tpu9")


def test_build_app_takes_the_working_scale(identity_model: Path) -> None:
    from uniremoval.cli.serve_cmds import build_app

    assert build_app(str(identity_model), device="cpu", scale="auto").state.restorer.engine.scale == "auto"
    assert build_app(str(identity_model), device="cpu").state.restorer.engine.scale == 1
    with pytest.raises(ValueError, match="scale"):
        build_app(str(identity_model), device="cpu", scale="0")
