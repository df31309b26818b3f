"""Data commands (`uniremoval synth`, `uniremoval data ...`): filled in by the synthesis work."""
from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Attach the data commands to the top-level app."""
