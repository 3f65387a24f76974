"""A rich progress bar for item-level work, with items/s and ETA."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class RateColumn(ProgressColumn):
    """Items per second."""

    def render(self, task: Task) -> Text:
        """Render the speed of ``task``."""
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.2f} items/s" if speed else "– items/s", style="cyan")


@contextmanager
def item_progress(total: int, already: int = 0, *, enabled: bool = True, console: Any = None,
                  description: str = "evaluating") -> Iterator[Callable[[int], None]]:
    """Yield an ``advance(n)`` callback that drives a progress bar (a no-op when disabled)."""
    if not enabled:
        yield lambda n: None
        return
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(description, total=total, completed=already)
        yield lambda n: bar.advance(task, n)
