"""The consoles and the one-line fatal error shared by the command modules."""
from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` on stderr and return the Exit to raise (1 fatal, 2 usage)."""
    # escape: a path such as photos[2]/a.jpg must print as written, not as markup
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)
