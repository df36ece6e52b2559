"""The one progress display of long commands: a transient bar on stderr, on a terminal only.

Every command that can take more than a second passes the callback from
``progress_on(err)`` to its use case (``application/progress.py``): the line
shows the phase, the count (of its total, when known), the rate and, when the
total is known, the time remaining. Nothing is shown when stderr is not a
terminal or with ``--quiet``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rich import filesize
from rich.console import Console
from rich.progress import (
    BarColumn,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as Bar
from rich.text import Text

from eventfold.application.progress import BYTES, Progress


@contextlib.contextmanager
def progress_on(err: Console) -> Iterator[Progress | None]:
    """A ``Progress`` callback drawing on ``err`` while the block runs, or None when ``err``
    is not a terminal (or is quiet). Each new phase is drawn at least once."""
    if not err.is_terminal or err.quiet:
        yield None
        return
    with Bar(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        _Count(),
        _Rate(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as bar:
        tasks: dict[str, TaskID] = {}  # the phase shown, and its task

        def update(phase: str, done: int, total: int | None, unit: str) -> None:
            if phase not in tasks:
                for task in tasks.values():
                    bar.remove_task(task)
                tasks.clear()
                tasks[phase] = bar.add_task(phase, total=total, completed=done, unit=unit)
                bar.refresh()
            else:
                bar.update(tasks[phase], total=total, completed=done)

        yield update


def _amount(value: float, unit: str) -> str:
    if unit == BYTES:
        return filesize.decimal(int(value))
    return f"{int(value):,}"


class _Count(ProgressColumn):
    """``1,234/5,000 events`` (``1,234 events`` while the total is unknown)."""

    def render(self, task: Task) -> Text:
        unit = str(task.fields.get("unit", ""))
        done = _amount(task.completed, unit)
        shown = done if task.total is None else f"{done}/{_amount(task.total, unit)}"
        return Text(f"{shown} {unit}" if unit != BYTES else shown, style="progress.download")


class _Rate(ProgressColumn):
    """``5,000 events/s``, ``12.3 MB/s``."""

    def render(self, task: Task) -> Text:
        unit = str(task.fields.get("unit", ""))
        speed = task.finished_speed or task.speed
        if speed is None:
            return Text("", style="progress.data.speed")
        if unit == BYTES:
            return Text(f"{filesize.decimal(int(speed))}/s", style="progress.data.speed")
        return Text(f"{speed:,.0f} {unit}/s", style="progress.data.speed")
