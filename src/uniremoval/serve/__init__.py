"""HTTP API and web page for a restorer: ``uniremoval serve``.

:func:`create_app` builds the FastAPI application around an already loaded
:class:`~uniremoval.restorer.Restorer` (the model is loaded once, at start-up), with the
limits of a :class:`ServeSettings`. FastAPI is imported only by this package, so the rest
of uniremoval works without it. :func:`redact_provenance` is the public view of a model's
provenance that ``GET /v1/models`` shows (no absolute paths); it needs no FastAPI either.
"""
from __future__ import annotations

from .redact import redact_provenance
from .settings import ServeSettings

__all__ = ["ServeSettings", "create_app", "redact_provenance"]


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    # Lazy: importing the settings (e.g. for CLI help) must not import FastAPI.
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(name)
