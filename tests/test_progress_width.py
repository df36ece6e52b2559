"""The progress display is one line at any width and never cuts a number: parts are dropped
whole (bar, rate, time remaining, unit word) until the rest fits."""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
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


def drawn(state: State, width: int) -> list[str]:
    """Every frame the display drew for ``state`` on a terminal ``width`` columns wide, as
    plain text (a frame drawn over several rows keeps its newlines). Fails unless the cursor
    went up one row only: when the display was removed, after the newline ending it."""
    terminal = Console(file=io.StringIO(), force_terminal=True, width=width)
    clock = Clock()
    with progress_on(terminal, clock=clock) as progress:
        assert progress is not None
        progress(state.phase, 0, state.total, state.unit)
        for done in (state.first, state.done):
            clock.now += 10
            progress(state.phase, done, state.total, state.unit)
    output = terminal.file.getvalue()  # type: ignore[attr-defined]
    assert output.count("\x1b[1A") == 1, repr(output)  # no frame took more than one row
    frames = [frame for frame in CONTROL.sub("", output).split("\r") if frame.strip()]
    return [*frames[:-1], frames[-1].removesuffix("\n")]


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
