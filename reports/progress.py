"""The one progress display of long commands: a transient line on stderr, on a terminal only.

Every command that can take more than a second passes the callback from
``progress_on(err)`` to its use case (``application/progress.py``). The
display is always ONE line, and never cuts a number: it shows the phase, a
bar, the count (of its total, when known), the rate and, when the total is
known, the time remaining; when the use case tells them, which file of how
many (``file 3/200``) and the events read a second. It drops the least
important parts, whole, until the rest fits the terminal's width
(``ProgressLine``). Nothing is shown when stderr is not a terminal or with
``--quiet``.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.segment import Segment
from rich.text import Text

from eventfold.application.progress import BYTES, EVENTS, NOTIFICATIONS, RECORDS, Progress

if TYPE_CHECKING:  # Rich's progress is imported when a line is drawn (a terminal) only
    from rich.progress import Progress as Bar
    from rich.progress import Task, TaskID

# The bar's width: it takes what is left of the line, within these bounds, or is dropped.
BAR_MIN, BAR_MAX = 10, 40

# The unit words as written when the full word does not fit, and in rates.
SHORT_UNITS = {NOTIFICATIONS: "notif", EVENTS: "ev", RECORDS: "rec"}

_BYTE_UNITS = ("bytes", "kB", "MB", "GB", "TB", "PB", "EB")


@contextlib.contextmanager
def progress_on(
    err: Console, *, clock: Callable[[], float] | None = None
) -> Iterator[Progress | None]:
    """A ``Progress`` callback drawing on ``err`` while the block runs, or None when ``err``
    is not a terminal (or is quiet). Each new phase is drawn at least once. ``clock`` (seconds,
    for tests) times the rate and the time remaining; the monotonic clock by default."""
    if not err.is_terminal or err.quiet:
        yield None
        return
    with _one_line_bar()(console=err, transient=True, get_time=clock) as bar:
        tasks: dict[str, TaskID] = {}  # the phase shown, and its task
        first_events: dict[str, tuple[int, float]] = {}  # its events first told, and when

        def update(
            phase: str,
            done: int,
            total: int | None,
            unit: str,
            *,
            files: tuple[int, int] | None = None,
            events: int | None = None,
        ) -> None:
            if phase not in tasks:
                for task in tasks.values():
                    bar.remove_task(task)
                tasks.clear()
                first_events.clear()
                fields = beside(phase, files, events)
                tasks[phase] = bar.add_task(phase, total=total, completed=done, unit=unit, **fields)
                bar.refresh()
            else:
                bar.update(
                    tasks[phase], total=total, completed=done, **beside(phase, files, events)
                )

        def beside(phase: str, files: tuple[int, int] | None, events: int | None) -> dict[str, Any]:
            """The task's fields for what was told beside the count: the events' rate is
            theirs since they were first told in this phase."""
            fields: dict[str, Any] = {}
            if files is not None:
                fields["files"] = files
            if events is not None:
                now = bar.get_time()
                before, since = first_events.setdefault(phase, (events, now))
                fields["events"] = events
                if now > since:
                    fields["event_speed"] = (events - before) / (now - since)
            return fields

        yield update


@functools.cache
def _one_line_bar() -> type[Bar]:
    """Rich's progress (its timing, refresh and transient display), each task drawn as one
    ``ProgressLine`` instead of a table row."""
    from rich.progress import Progress as Bar

    class OneLineBar(Bar):
        def get_renderables(self) -> Iterable[RenderableType]:
            for task in self.tasks:
                yield ProgressLine.of(task)

    return OneLineBar


@dataclass(frozen=True)
class ProgressLine:
    """One phase's progress as one line of at most the width it is given.

    The parts, in the order shown: the phase, the bar, which file of how many (``file 3/200``,
    when told), ``done/total`` (``done`` while the total is unknown; bytes as
    ``18.7/21.4 MB``), the rate, the events read a second (``45,210 ev/s``, when told), the time
    remaining. The line is the first that fits of: everything with the unit word in full, then
    short (``notif``, ``ev``); without the bar; without the rate (the events a second, when
    told, say how fast it goes); without the events a second; without the file; without the
    time remaining; without the unit word; the count alone; ``done`` alone. So the parts go,
    least important first: the bar, the rate, the events a second, the file, the time
    remaining, the unit word, the phase, the total. A part is shown whole or not at all.
    While the rate, the events a second and the time remaining are not known yet, the bar
    leaves room for them, so that it does not shrink or vanish when they appear."""

    phase: str
    done: int
    total: int | None
    unit: str
    speed: float | None = None  # units a second, when known
    remaining: float | None = None  # seconds, when known
    files: tuple[int, int] | None = None  # the file being read, of how many, when told
    events: int | None = None  # the events read so far, when told (shown as their rate)
    event_speed: float | None = None  # events a second, when known

    @classmethod
    def of(cls, task: Task) -> ProgressLine:
        total = None if task.total is None else int(task.total)
        return cls(
            task.description,
            int(task.completed),
            total,
            str(task.fields.get("unit", "")),
            task.finished_speed or task.speed,
            task.time_remaining if total is not None else None,
            task.fields.get("files"),
            task.fields.get("events"),
            task.fields.get("event_speed"),
        )

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        for parts, bar in self._layouts():
            room = width - sum(cell_len(text) for text, _ in parts) - (len(parts) - 1)
            if not bar and room >= 0:
                yield from self._segments(console, options, parts, 0)
                break
            room -= 1 + self._not_yet_known()  # the bar keeps its width as they appear
            if bar and room >= BAR_MIN:
                yield from self._segments(console, options, parts, min(BAR_MAX, room))
                break
        yield Segment.line()

    def _layouts(self) -> Iterator[tuple[list[tuple[str, str]], bool]]:
        """Candidate lines, most complete first: their parts (text, style), and whether the bar
        follows the phase."""
        phase = (self.phase, "progress.description")
        full, short, bare, done = ((text, "progress.download") for text in self._counts())
        files = [self._files()] if self.files is not None else []
        rate = [self._rate()] if self.speed is not None else []
        events = [self._event_rate()] if self.event_speed is not None else []
        remaining = [self._remaining()] if self.remaining is not None else []
        yield [phase, *files, full, *rate, *events, *remaining], True
        yield [phase, *files, short, *rate, *events, *remaining], True
        yield [phase, *files, short, *rate, *events, *remaining], False
        yield [phase, *files, short, *events, *remaining], False
        yield [phase, *files, short, *remaining], False
        yield [phase, short, *remaining], False
        yield [phase, short], False
        yield [phase, bare], False
        yield [bare], False
        yield [done], False

    def _not_yet_known(self) -> int:
        """The cells the rate, the events a second and the time remaining will likely take once
        known (a rate of about the total a second; six figures of events), while they are
        not."""
        cells = 0
        if self.speed is None:
            unit = SHORT_UNITS.get(self.unit, self.unit)
            likely = "999.9 kB" if self.unit == BYTES else f"{self.total or self.done:,} {unit}"
            cells += 1 + cell_len(f"{likely}/s")
        if self.event_speed is None and self.events is not None:
            cells += 1 + cell_len(f"{999_999:,} {SHORT_UNITS[EVENTS]}/s")
        if self.remaining is None and self.total is not None:
            cells += 1 + cell_len("0:00:00")
        return cells

    def _counts(self) -> tuple[str, str, str, str]:
        """``done/total`` with the unit word in full, short, and without it; ``done`` alone."""
        if self.unit == BYTES:
            shown = self._bytes(self.total)
            return shown, shown, shown, self._bytes(None)
        done = f"{self.done:,}"
        count = done if self.total is None else f"{done}/{self.total:,}"
        short = SHORT_UNITS.get(self.unit, self.unit)
        return f"{count} {self.unit}".strip(), f"{count} {short}".strip(), count, done

    def _bytes(self, total: int | None) -> str:
        """``18.7/21.4 MB`` in the unit of ``total`` (``done`` rounded down, so it shows the
        total when it reaches it and not before), or ``18.7 MB`` without a total."""
        scale = total if total is not None else self.done
        power = 0
        while power + 1 < len(_BYTE_UNITS) and scale >= 1000 ** (power + 1):
            power += 1
        step = Decimal(1) if power == 0 else Decimal("0.1")

        def scaled(value: int, rounding: str) -> str:
            return f"{(Decimal(value) / 1000**power).quantize(step, rounding=rounding):,}"

        if total is None:
            shown = scaled(self.done, ROUND_HALF_EVEN)
        else:
            whole = scaled(total, ROUND_HALF_EVEN)
            shown = f"{whole if self.done >= total else scaled(self.done, ROUND_DOWN)}/{whole}"
        return f"{shown} {_BYTE_UNITS[power]}"

    def _rate(self) -> tuple[str, str]:
        """``195,602 notif/s``, ``12.3 MB/s``."""
        per_second = round(self.speed or 0)
        if self.unit == BYTES:
            rate = ProgressLine("", per_second, None, BYTES)._bytes(None)
        else:
            rate = f"{per_second:,} {SHORT_UNITS.get(self.unit, self.unit)}".strip()
        return f"{rate}/s", "progress.data.speed"

    def _files(self) -> tuple[str, str]:
        """``file 3/200``: the file being read, of how many."""
        current, total = self.files or (0, 0)
        return f"file {current:,}/{total:,}", "progress.download"

    def _event_rate(self) -> tuple[str, str]:
        """``45,210 ev/s``."""
        return f"{round(self.event_speed or 0):,} {SHORT_UNITS[EVENTS]}/s", "progress.data.speed"

    def _remaining(self) -> tuple[str, str]:
        """``0:01:05``."""
        minutes, seconds = divmod(int(self.remaining or 0), 60)
        hours, minutes = divmod(minutes, 60)
        return f"{hours}:{minutes:02d}:{seconds:02d}", "progress.remaining"

    def _segments(
        self, console: Console, options: ConsoleOptions, parts: list[tuple[str, str]], bar: int
    ) -> Iterator[Segment]:
        """The parts separated by spaces, with a bar of ``bar`` cells after the first."""
        for index, (text, style) in enumerate(parts):
            if index:
                yield Segment(" ")
            yield from Text(text, style=style).render(console)
            if index == 0 and bar:
                from rich.progress_bar import ProgressBar

                yield Segment(" ")
                yield from console.render(
                    ProgressBar(total=self.total, completed=self.done, width=bar),
                    options.update(width=bar),
                )
