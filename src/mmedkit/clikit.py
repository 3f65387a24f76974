"""Console helpers shared by every ``mmed`` sub-command: consoles, literal messages, one way to fail.

Every command wraps its work in :func:`handle_errors`: bad input (a :class:`~mmedkit.errors.MmedError`,
a backend, value or OS error) prints ``error: message`` and exits with status 2; Ctrl-C exits with 130,
after the command's resume hint when it has one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console

console = Console()
err = Console(stderr=True)

#: Exit statuses: bad input or a failed backend, and an interrupt (128 + SIGINT).
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


def say(label: str, style: str, message: object, *, stream: Console = err) -> None:
    """Print ``label: message`` unwrapped, with the message taken literally (paths, brackets)."""
    stream.print(f"[{style}]{label}:[/] ", end="")
    stream.print(str(message), markup=False, highlight=False, soft_wrap=True)


def fail(exc: BaseException) -> typer.Exit:
    """Report ``exc`` as an error and return the exit (status 2) to raise."""
    say("error", "bold red", exc)
    return typer.Exit(code=EXIT_ERROR)


def user_errors() -> tuple[type[BaseException], ...]:
    """The errors a command reports as ``error: message`` rather than a traceback."""
    from mmedkit.errors import MmedError
    from mmedkit.models.base import BackendError

    return MmedError, BackendError, ValueError, OSError


@contextmanager
def handle_errors(*extra: type[BaseException], interrupted: str | None = None) -> Iterator[None]:
    """Turn :func:`user_errors` (and ``extra``) into ``error: message`` + exit 2, Ctrl-C into exit 130.

    ``interrupted`` is the hint printed after ``interrupted:`` (e.g. how to resume).
    """
    try:
        yield
    except (typer.Exit, typer.Abort):
        raise  # a deliberate exit; both are RuntimeErrors, so never report them as errors
    except KeyboardInterrupt:
        if interrupted:
            say("interrupted", "yellow", interrupted)
        else:
            err.print("[yellow]interrupted[/]")
        raise typer.Exit(code=EXIT_INTERRUPTED) from None
    except (*user_errors(), *extra) as exc:
        raise fail(exc) from exc
