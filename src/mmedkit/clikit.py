"""Console helpers shared by every ``mmed`` sub-command: consoles, literal messages, clean exits."""

from __future__ import annotations

import typer
from rich.console import Console

console = Console()
err = Console(stderr=True)


def say(label: str, style: str, message: object, *, stream: Console = err) -> None:
    """Print ``label: message`` unwrapped, with the message taken literally (paths, brackets)."""
    stream.print(f"[{style}]{label}:[/] ", end="")
    stream.print(str(message), markup=False, highlight=False, soft_wrap=True)


def fail(exc: Exception) -> typer.Exit:
    """Report ``exc`` as an error and return the exit (status 2) to raise."""
    say("error", "bold red", exc)
    return typer.Exit(code=2)
