"""The consoles and the one-line fatal error shared by the command modules."""
from __future__ import annotations

import typer
from rich.console import Console

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` on stderr and return the Exit to raise (1 fatal, 2 usage)."""
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    return typer.Exit(code)
