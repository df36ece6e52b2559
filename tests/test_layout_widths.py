"""``FigureTable`` at every width from 20 to 160: every figure is whole on one line, no
line is wider than the screen, stacked blocks line up, and text folds between words."""

from __future__ import annotations

import io
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.text import Text

from eventfold.reports.layout import Col, FigureTable
from eventfold.reports.text import grouped, signed

WIDTHS = range(20, 161)


def render(renderable: Any, width: int) -> list[str]:
    console = Console(file=io.StringIO(), width=width, highlight=False, color_system=None)
    console.print(renderable, crop=False)
    output = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(output, str)
    return output.splitlines()


def figure_in(lines: list[str], figure: str) -> bool:
    """``figure`` on one line, not part of a longer run of digits."""
    pattern = re.compile(rf"(?<![\d,.]){re.escape(figure)}(?![\d,]|\.\d)")
    return any(pattern.search(line) for line in lines)


figures = st.one_of(
    st.integers(0, 10**12).map(grouped),
    st.decimals(-(10**9), 10**9, places=3, allow_nan=False).map(lambda d: signed(str(d))),
    st.sampled_from(["-", "0"]),
)
words = st.text("abcdefghij/-_.", min_size=1, max_size=10)
texts = st.lists(words, min_size=1, max_size=6).map(" ".join)
headers = st.sampled_from(["lines", "valid", "invalid", "repeats", "size on disk", "n", "total"])


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[Col], list[list[str]]]:
    kinds = draw(st.lists(st.sampled_from(["figure", "figure", "text", "word"]), max_size=7))
    columns = [Col("name", "key"), *(Col(draw(headers), kind) for kind in kinds)]
    cells = {"figure": figures, "text": texts, "word": st.sampled_from(["gzip", "ok", "none"])}
    row = st.tuples(texts, *(cells[kind] for kind in kinds)).map(list)
    return columns, draw(st.lists(row, min_size=1, max_size=4))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables())
def test_every_figure_is_whole_and_every_line_fits_at_every_width(
    table: tuple[list[Col], list[list[str]]],
) -> None:
    columns, rows = table
    shown = [row[i] for row in rows for i, column in enumerate(columns) if column.kind == "figure"]
    for width in WIDTHS:
        lines = render(FigureTable(columns, rows, title="t"), width)
        for figure in shown:
            assert figure_in(lines, figure), f"{figure!r} cut at {width}:\n" + "\n".join(lines)
        assert max(map(len, lines)) <= width, f"wider than {width}:\n" + "\n".join(lines)


def test_the_sources_of_verify_stack_whole_and_line_up() -> None:
    """Two sources, one of 112,345 lines: at every width, each figure whole; stacked,
    the values of each label end in one column."""
    columns = [Col("source", "text"), Col("compression", "word")]
    columns += [Col(name) for name in ("lines", "valid", "invalid", "repeats")]
    rows = [
        ["/data/big.jsonl", "none", "112,345", "112,345", "0", "3,000"],
        ["/data/other.jsonl", "gzip", "3,000", "3,000", "0", "0"],
    ]
    for width in WIDTHS:
        lines = render(FigureTable(columns, rows), width)
        for figure in ("112,345", "3,000"):
            assert figure_in(lines, figure), f"{figure} cut at {width}:\n" + "\n".join(lines)
        assert not any(line.strip() in ("5", "0", "repeats") for line in lines), lines
        ends: dict[str, set[int]] = {}
        for line in lines:
            for m in re.finditer(r"([a-z]+) +([\d,]+)(?= |$)", line):
                ends.setdefault(m.group(1), set()).add(m.end())
        assert all(len(e) == 1 for e in ends.values()), f"ragged at {width}:\n" + "\n".join(lines)


def test_text_folds_between_words_and_a_path_folds_at_a_slash() -> None:
    """Quarantine's table at 60 columns: the reason and raw text fold between words."""
    columns = [Col("source", "key"), Col("line"), Col("byte offset")]
    columns += [Col("reason", "text"), Col("raw", "text")]
    reason = "malformed: not valid JSON: invalid character"
    raw = '{"id": "evt-1", "category": "food", "value": 12.5'
    rows = [["/tmp/data/sources/feed-2026.jsonl", "1,201", "120,345", reason, raw]]
    for width in (50, 60, 70, 80):
        text = "\n".join(render(FigureTable(columns, rows), width))
        tokens = set(re.findall(r"[\w\":]+", text))
        for word in (*reason.split(), '"category":', '"value":'):
            assert word in tokens, f"{word!r} divided at {width}:\n{text}"
        for figure in ("1,201", "120,345"):
            assert figure in text


def test_a_date_or_time_in_a_name_is_not_folded() -> None:
    from eventfold.reports.fold import fold

    name = Text("/data/big-source-with-a-long-name-2026-11-30T10:30:00.jsonl")
    for width in range(8, 40):
        pieces = [piece.plain for piece in fold(name, width)]
        assert any("2026-11-30T10:30:00" in piece for piece in pieces), (width, pieces)
