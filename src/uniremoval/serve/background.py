"""Run the app with uvicorn in a background thread on a free loopback port (tests,
notebooks, embedding): ``with serve_in_thread(app) as url: ...``."""
from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on ``host``."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_in_thread(app: Any, host: str = "127.0.0.1", port: int | None = None, start_timeout: float = 20.0) -> Iterator[str]:
    """Serve ``app`` until the block ends; yields its base URL (``http://host:port``).

    The server is stopped and its thread joined on exit, also when the block raises, so
    nothing keeps running after a test.
    """
    import uvicorn

    port = port or free_port(host)
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    # Signal handlers can only be installed from the main thread.
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    end = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"the server on {host}:{port} did not start")
        if time.monotonic() > end:
            server.should_exit = True
            raise RuntimeError(f"the server on {host}:{port} did not start within {start_timeout:g} s")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
