"""The outputs of ``eventfold events``, each written as the events are read.

Every output takes the events one at a time from an ``EventStream`` and writes
them at once, so memory holds a page of the store and, for the terminal, one
section of the table (``SECTION`` rows: each section is a table of its own,
laid out for its rows). ``--json`` writes one document,
``{"events": [...], "count": N, "total": "DECIMAL", "untimed": N, "held": {...}}``,
its events as they come and the figures last; ``--jsonl`` an event a line;
``--csv`` a header and a row per event (``CSV_COLUMNS``; a missing timestamp or
``held_by`` is an empty field). The table has a ``held by`` column when a
reconstruction stands as of the store's end. Untrusted text (ids, categories,
source names) is shown with ``plain`` on the terminal; the other outputs carry
it as data.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import IO, Any

import msgspec
from rich.console import Console
from rich.text import Text

from eventfold.application.admin.events import CSV_COLUMNS, EventStream, event_json
from eventfold.projections.base import RecordedFact
from eventfold.reports.layout import Col, FigureTable
from eventfold.reports.text import grouped, plain, plural

SECTION = 1000  # rows of one terminal table
_encoder = msgspec.json.Encoder()  # compact JSON, UTF-8 as itself: several times json.dumps's speed


def _json(doc: Any) -> str:
    return _encoder.encode(doc).decode()


COLUMNS = (
    Col("notification"),
    Col("event id", "key"),
    Col("category", "text"),
    Col("value"),
    Col("occurred at (UTC)", "word"),
    Col("source", "text"),
    Col("line"),
    Col("byte offset"),
)
HELD_BY = Col("held by", "word")


def write_table(stream: EventStream, limit: int | None, out: Console) -> None:
    """Tables of the first ``limit`` events (None: all), a section at a time, then the
    count line (every event selected is counted)."""
    first = True
    held = bool(stream.standing)
    columns = (*COLUMNS, HELD_BY) if held else COLUMNS
    for section in _sections(stream.listed(limit), SECTION):
        title = "recorded events" if first else None
        rows = [_row(f, stream.held_by(f) or "-") if held else _row(f) for f in section]
        out.print(FigureTable(columns, rows, title=title), crop=False)
        first = False
    out.print(count_line(stream, limit), soft_wrap=True)


def _sections(facts: Iterable[RecordedFact], size: int) -> Iterator[list[RecordedFact]]:
    section: list[RecordedFact] = []
    for fact in facts:
        section.append(fact)
        if len(section) == size:
            yield section
            section = []
    if section:
        yield section


def _row(fact: RecordedFact, *held_by: str) -> list[str | Text]:
    when = fact.occurred_at
    return [
        grouped(fact.notification_id),
        plain(fact.event_id),
        plain(fact.category),
        grouped(str(fact.value)),
        "-" if when is None else when.isoformat(),
        plain(fact.source),
        grouped(fact.line),
        grouped(fact.offset),
        *held_by,
    ]


def count_line(stream: EventStream, limit: int | None) -> Text:
    """How many events were selected and their exact total; how many of them reconstructions
    hold out of ``category_totals``' total, and theirs; how many are shown; how many a
    time bound left out for having no timestamp."""
    summary = stream.summary()
    text = f"{plural(stream.count, 'event')}, total {grouped(str(summary['total']))}"
    if stream.held_count:
        held = summary["held"]
        text += (
            f"; {plural(stream.held_count, 'event')}, total {grouped(str(held['total']))}, "
            f"held out of category_totals by {', '.join(held['reconstructions'])} (raw, "
            "not in its total: a reconstruction stands for them)"
        )
    shown = stream.count if limit is None else min(limit, stream.count)
    if shown < stream.count:
        text += f"; the first {shown:,} shown (--limit 0 shows all)"
    if stream.untimed:
        text += (
            f"; {plural(stream.untimed, 'event')} without a timestamp left out "
            "(--since and --until select by timestamp)"
        )
    return plain(text, style="" if stream.count else "yellow")


def write_jsonl(stream: EventStream, limit: int | None, out: IO[str]) -> None:
    """A JSON object a line per event (``event_json``); stops after ``limit``."""
    for fact in stream.listed(limit, count_rest=False):
        out.write(_json(event_json(fact, stream.held_by(fact))) + "\n")


def write_csv(stream: EventStream, limit: int | None, out: IO[str]) -> None:
    """A header, then a row per event (``CSV_COLUMNS``); stops after ``limit``."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for fact in stream.listed(limit, count_rest=False):
        row = event_json(fact, stream.held_by(fact))
        writer.writerow("" if row[key] is None else row[key] for key in CSV_COLUMNS)


def write_json(stream: EventStream, limit: int | None, out: IO[str]) -> None:
    """One document, its events written as they are read and its figures (of every event
    selected, listed or not) last."""
    out.write('{"events":[')
    separator = ""
    for fact in stream.listed(limit):
        out.write(separator + _json(event_json(fact, stream.held_by(fact))))
        separator = ","
    out.write("]," + _json(stream.summary())[1:] + "\n")
