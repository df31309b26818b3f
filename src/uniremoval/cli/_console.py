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


def readable_arguments() -> None:
    """Show positional arguments as click always did (``PHOTO...``), not as typer >= 0.2x
    does (``{inputs}...`` in the usage line and a ``<list[str]>`` type beside the name).

    The argument's metavar names what to give and the help panel marks it required, so the
    braces and the Python type only confuse. Guarded: a typer without these hooks (older or
    newer) keeps its own rendering, and the CLI works the same.
    """
    arg = getattr(getattr(typer, "core", None), "TyperArgument", None)
    if arg is None or not hasattr(arg, "_usage_display_name") or not hasattr(arg, "display_type_rich"):
        return

    def usage(self) -> str:  # type: ignore[no-untyped-def]
        name = str(self.metavar or self.name or "").upper()
        name = name if self.required else f"[{name}]"
        return name if self.nargs == 1 else f"{name}..."

    def display_type(self, ctx) -> None:  # type: ignore[no-untyped-def]
        return None

    arg._usage_display_name = usage
    arg.display_type_rich = display_type
