"""The progress display is one line at any width and never cuts a number: parts are dropped
whole (bar, rate, time remaining, unit word) until the rest fits."""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass, replace
from decimal import Decimal

import pytest
from rich.cells import cell_len
from rich.console import Console

from eventfold.reports.progress import ProgressLine, progress_on

CONTROL = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")  # cursor moves, erasing, colours
FIGURE = re.compile(r"\d[\d,.:]*\d|\d")


class Clock:
    """The time the display reads, moved by the test."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class State:
    """A phase told three times, ten seconds apart: it starts at 0, then ``first``, then
    ``done``; Rich's rate is then ``(done - first) / 10`` per second."""

    phase: str
    unit: str
    first: int
    done: int
    total: int | None
    count: str  # done/total as the display must show it
    rate: str  # the rate's figure (its unit follows)

    def remaining(self) -> str | None:
        if self.total is None:
            return None
        seconds = math.ceil((self.total - self.done) / ((self.done - self.first) / 10))
        return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"

    def figures(self) -> set[str]:
        """Every figure the line may show."""
        shown = {self.rate, self.remaining() or ""}
        return {*FIGURE.findall(self.count), *FIGURE.findall(self.rate), *shown} - {""}


SEVEN_DIGITS = State(
    "rebuilding", "notifications", 1_000_000, 1_286_169, 1_300_560,
    f"{1_286_169:,}/{1_300_560:,}", f"{round(286_169 / 10):,}",
)  # fmt: skip
UNKNOWN_TOTAL = State(
    "comparing", "notifications", 2_000_000, 4_321_987, None,
    f"{4_321_987:,}", f"{round(2_321_987 / 10):,}",
)  # fmt: skip
BYTES = State(
    "reading source", "bytes", 10_000_000, 18_712_345, 21_400_000, "18.7/21.4 MB", "871.2 kB"
)
STATES = [SEVEN_DIGITS, UNKNOWN_TOTAL, BYTES]


def frames_of(terminal: Console) -> list[str]:
    """Every frame drawn on ``terminal``, as plain text (a frame drawn over several rows keeps
    its newlines). Fails unless the cursor went up one row only: when the display was
    removed, after the newline ending it."""
    output = terminal.file.getvalue()  # type: ignore[attr-defined]
    assert output.count("\x1b[1A") == 1, repr(output)  # no frame took more than one row
    frames = [frame for frame in CONTROL.sub("", output).split("\r") if frame.strip()]
    return [*frames[:-1], frames[-1].removesuffix("\n")]


def drawn(state: State, width: int) -> list[str]:
    """Every frame the display drew for ``state`` on a terminal ``width`` columns wide."""
    terminal = Console(file=io.StringIO(), force_terminal=True, width=width)
    clock = Clock()
    with progress_on(terminal, clock=clock) as progress:
        assert progress is not None
        progress(state.phase, 0, state.total, state.unit)
        for done in (state.first, state.done):
            clock.now += 10
            progress(state.phase, done, state.total, state.unit)
    return frames_of(terminal)


@pytest.mark.parametrize("width", [30, 40, 60, 80, 120])
@pytest.mark.parametrize("state", STATES, ids=lambda state: state.phase)
def test_every_frame_is_one_line_of_whole_figures(state: State, width: int) -> None:
    frames = drawn(state, width)
    assert frames
    for frame in frames:
        assert "\n" not in frame, frames  # one row, never two
        assert "…" not in frame, frame
        assert cell_len(frame) <= width, frame
    last = frames[-1]  # the display is drawn once more as it stops: the final state
    figures = set(FIGURE.findall(last))
    assert figures <= state.figures(), f"a figure was cut: {last!r}"
    assert state.count in last, last  # done/total, whole, at any width
    if width >= 40:
        assert last.startswith(state.phase + " "), last


@pytest.mark.parametrize("state", STATES, ids=lambda state: state.phase)
def test_a_wide_terminal_shows_every_part(state: State) -> None:
    last = drawn(state, 120)[-1]
    assert "━" in last  # the bar
    assert f"{state.rate} " in last or f"{state.rate}/s" in last
    assert (state.remaining() or "") in last
    if state.unit != "bytes":
        assert f"{state.count} {state.unit}" in last  # the unit word in full


def shown(line: ProgressLine, width: int) -> str:
    out = io.StringIO()
    Console(file=out, width=width, force_terminal=True, color_system=None).print(line)
    return out.getvalue()


def test_parts_are_dropped_bar_first_then_rate_then_time_remaining() -> None:
    line = ProgressLine("rebuilding", 286_169, 300_560, "notifications", 195_602.0, 1.0)
    lines = list(dict.fromkeys(shown(line, width).rstrip("\n") for width in range(200, 0, -1)))
    for text in lines:
        assert "\n" not in text and "…" not in text
        assert set(FIGURE.findall(text)) <= {"286,169", "300,560", "195,602", "0:00:01"}, text
    plain = [text for text in lines if "━" not in text]
    assert plain[:6] == [
        "rebuilding 286,169/300,560 notif 195,602 notif/s 0:00:01",
        "rebuilding 286,169/300,560 notif 0:00:01",
        "rebuilding 286,169/300,560 notif",
        "rebuilding 286,169/300,560",
        "286,169/300,560",
        "286,169",
    ]
    assert "━" in lines[0] and "notifications" in lines[0]  # all of it, with the unit in full
    assert plain[-1] == ""  # narrower than a figure: nothing rather than a cut figure


@pytest.mark.parametrize("total", [14_788_890, 14_750_000, 999, 1_000])
def test_bytes_show_the_total_once_it_is_reached_and_not_before(total: int) -> None:
    whole = shown(ProgressLine("ingesting", total, total, "bytes"), 80)
    assert whole.count(whole.split()[-2].split("/")[-1]) == 2, whole  # 14.8/14.8 MB
    almost = shown(ProgressLine("ingesting", total - 1, total, "bytes"), 80)
    done, of = almost.split()[-2].split("/")
    assert Decimal(done) < Decimal(of), almost


@pytest.mark.parametrize("width", [60, 80, 120])
def test_the_bar_keeps_its_width_when_the_rate_appears(width: int) -> None:
    def bar(line: ProgressLine) -> int:  # in colour, the bar's part still to do is drawn too
        out = io.StringIO()
        Console(file=out, width=width, force_terminal=True, color_system="standard").print(line)
        return sum(out.getvalue().count(cell) for cell in "━╸╺")

    before = ProgressLine("rebuilding", 16_000, 300_308, "notifications")
    after = ProgressLine("rebuilding", 40_000, 300_308, "notifications", 275_227.0, 1.0)
    assert bar(before) == bar(after)


MANY = ProgressLine(
    "ingesting", 18_712_345, 21_400_000, "bytes", 871_234.0, 3.0, (3, 200), 123_456, 45_210.4
)
MANY_FIGURES = {"3", "200", "18.7", "21.4", "871.2", "45,210", "0:00:03"}


def test_files_and_events_are_dropped_after_the_bar_and_the_rate_and_before_the_rest() -> None:
    lines = list(dict.fromkeys(shown(MANY, width).rstrip("\n") for width in range(200, 0, -1)))
    for text in lines:
        assert "\n" not in text and "…" not in text
        assert set(FIGURE.findall(text)) <= MANY_FIGURES, text
    assert "━" in lines[0]
    assert lines[0].startswith("ingesting ━") and lines[0].endswith(
        " file 3/200 18.7/21.4 MB 871.2 kB/s 45,210 ev/s 0:00:03"
    )
    plain = [text for text in lines if "━" not in text]
    assert plain == [
        "ingesting file 3/200 18.7/21.4 MB 871.2 kB/s 45,210 ev/s 0:00:03",
        "ingesting file 3/200 18.7/21.4 MB 45,210 ev/s 0:00:03",
        "ingesting file 3/200 18.7/21.4 MB 0:00:03",
        "ingesting 18.7/21.4 MB 0:00:03",
        "ingesting 18.7/21.4 MB",
        "18.7/21.4 MB",
        "18.7 MB",
        "",
    ]
    for text in plain[:-1]:  # each the widest it can be: one cell less, and it is the next
        assert shown(MANY, cell_len(text) - 1).rstrip("\n") == plain[plain.index(text) + 1]


def many_files_drawn(width: int) -> list[str]:
    """The frames drawn for an ingest told at 0, 10 and 20 seconds: of 200 files, the third
    at the end, with 452,104 events read (22,605.2 a second)."""
    terminal = Console(file=io.StringIO(), force_terminal=True, width=width)
    clock = Clock()
    with progress_on(terminal, clock=clock) as progress:
        assert progress is not None
        progress("ingesting", 0, 21_400_000, "bytes", files=(1, 200), events=0)
        clock.now += 10
        progress("ingesting", 10_000_000, 21_400_000, "bytes", files=(2, 200), events=200_000)
        clock.now += 10
        progress("ingesting", 18_712_345, 21_400_000, "bytes", files=(3, 200), events=452_104)
    return frames_of(terminal)


@pytest.mark.parametrize("width", [20, 30, 40, 60, 80, 120])
def test_an_ingest_of_many_files_is_one_line_of_whole_figures(width: int) -> None:
    frames = many_files_drawn(width)
    seconds = math.ceil((21_400_000 - 18_712_345) / (8_712_345 / 10))
    remaining = f"0:00:{seconds:02d}"
    figures = {"1", "2", "3", "200", "0.0", "10.0", "18.7", "21.4", "871.2", remaining, "22,605"}
    for frame in frames:
        assert "\n" not in frame and "…" not in frame, frames
        assert cell_len(frame) <= width, frame
        assert set(FIGURE.findall(frame)) <= figures, f"a figure was cut: {frame!r}"
    last = frames[-1]
    assert "18.7/21.4 MB" in last
    if width >= 80:
        assert f"file 3/200 18.7/21.4 MB 871.2 kB/s 22,605 ev/s {remaining}" in last, last
    if width == 120:
        assert "━" in last


def test_the_events_rate_is_over_the_time_since_they_were_first_told_in_the_phase() -> None:
    terminal = Console(file=io.StringIO(), force_terminal=True, width=120)
    clock = Clock()
    with progress_on(terminal, clock=clock) as progress:
        assert progress is not None
        progress("ingesting", 0, 1_000, "bytes", files=(1, 2), events=0)
        clock.now += 4
        progress("replaying", 10, 10, "events")  # a phase between: the rate starts anew
        clock.now += 100
        progress("ingesting", 500, 1_000, "bytes", files=(1, 2), events=1_000)
        clock.now += 2
        progress("ingesting", 900, 1_000, "bytes", files=(2, 2), events=1_300)
    last = frames_of(terminal)[-1]
    assert last.endswith(" file 2/2 0.9/1.0 kB 150 ev/s"), last  # 300 events in 2 seconds


@pytest.mark.parametrize("width", [60, 80, 120])
@pytest.mark.parametrize("many", [True, False], ids=["files and events", "bytes alone"])
def test_the_bar_keeps_its_width_when_the_byte_and_event_rates_appear(
    width: int, many: bool
) -> None:
    def bar(line: ProgressLine) -> int:
        out = io.StringIO()
        Console(file=out, width=width, force_terminal=True, color_system="standard").print(line)
        return sum(out.getvalue().count(cell) for cell in "━╸╺")

    before = ProgressLine("ingesting", 0, 21_400_000, "bytes")
    after = ProgressLine("ingesting", 1_200_000, 21_400_000, "bytes", 871_234.0, 3.0)
    if many:
        before = replace(before, files=(1, 200), events=0)
        after = replace(after, files=(2, 200), events=5_000, event_speed=245_210.0)
    assert bar(before) == bar(after)
    if width == 120 or not many:
        assert bar(after) > 0
