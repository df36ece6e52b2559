"""The report of ``eventfold explain CATEGORY``: where one total comes from.

A summary first (the events' count and sum beside the projection's, and the
line ``sum of events = projection total: yes`` or ``NO``; the snapshot the
projection was caught up from; the checksums), then a table per part: the
reconstructions of the category (``reports/split.py``), the sources, the hours
(the first ``HOURS_SHOWN``; ``--json`` has them all), the conflicts with both
versions, the quarantined lines that named the category, and the duplicates the
sources counted. Where a reconstruction stands, the summary tells the raw
events counted from those held out and from the summaries, the verdict says
the sum in words (``sum of raw events counted ... + reconstructed ... =
projection total ...: yes``), and the source and hour tables have the events
held out in columns of their own. Names, ids and raw lines are untrusted: shown
with ``plain``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from eventfold.application.proving.lineage import Lineage
from eventfold.application.proving.setaside import LISTED
from eventfold.application.proving.split import Figures
from eventfold.projections.base import canonical_decimal
from eventfold.reports.layout import Col, FigureTable, Summary
from eventfold.reports.quarantine import quarantined_table
from eventfold.reports.split import held_cells, held_columns, reconstructions, split_lines
from eventfold.reports.text import grouped, plain, plural, visible

HOURS_SHOWN = 48


def render_lineage(lineage: Lineage) -> Group:
    parts: list[RenderableType] = [_summary(lineage)]
    if lineage.split.shares:
        parts.append(reconstructions(lineage))
    if lineage.sources:
        parts.append(_sources(lineage))
    if lineage.hours:
        parts.append(_hours(lineage))
    aside = lineage.set_aside
    parts.append(_conflicts(lineage) if aside.conflicts_count else plain("conflicts: none"))
    parts.append(_quarantined(lineage) if aside.quarantined_count else plain("quarantined: none"))
    parts.append(duplicates_line(lineage))
    return Group(*parts)


def _total(figures: Figures) -> str:
    return grouped(canonical_decimal(figures.total))


def verdict_line(lineage: Lineage) -> Text:
    """``sum of events = projection total: yes``, ``NO``, or why it cannot be told; where
    a reconstruction stands for part of the total, the sum in words: ``sum of raw events
    counted 67 (4 events) + reconstructed 290 (3 events, R1) = projection total 357 (7
    events): yes``."""
    matches = lineage.matches
    if matches is None:
        return plain(
            f"sum of events = projection total: not known ({lineage.caught_up.projection} "
            "keeps no count and total per category)",
            style="yellow",
        )
    answer = "yes" if matches else "NO"
    style = "green" if matches else "bold red"
    split = lineage.split
    if not (split.counting or split.held.count):
        return Text(f"sum of events = projection total: {answer}", style=style)
    counted, reconstructed = lineage.counted, split.reconstructed
    projected = lineage.projected or Figures(0, Decimal(0))
    ids = ", ".join(s.reconstruction.ident for s in split.counting) or "none standing"
    return plain(
        f"sum of raw events counted {_figures(counted)} + reconstructed "
        f"{_total(reconstructed)} ({plural(reconstructed.count, 'event')}, {ids}) = "
        f"projection total {_figures(projected)}: {answer}",
        style=style,
    )


def _figures(figures: Figures) -> str:
    return f"{_total(figures)} ({plural(figures.count, 'event')})"


def _summary(lineage: Lineage) -> Summary:
    report = lineage.caught_up
    events = lineage.events
    lines = [
        plain(f"category {lineage.category}"),
        plain(f"events: {plural(events.count, 'event')}, total {_total(events)}"),
        *split_lines(lineage),
        plain("projection: " + _projected(lineage)),
        verdict_line(lineage),
        plain(f"position: {report.position:,} (events read up to the projection's position)"),
        plain("caught up from: " + _caught_up(lineage)),
        plain(f"projection checksum: {report.checksum}"),
    ]
    if lineage.category_checksum is not None:
        lines.append(plain(f"category checksum: {lineage.category_checksum}"))
    return Summary(lines, title=f"explain: {visible(report.projection)}")


def _projected(lineage: Lineage) -> str:
    if not lineage.kept:
        return f"{lineage.caught_up.projection} keeps no total per category"
    if lineage.projected is None:
        return "no such category in the projection's state (count 0, total 0)"
    figures = lineage.projected
    return f"{plural(figures.count, 'event')}, total {_total(figures)}"


def _caught_up(lineage: Lineage) -> str:
    report = lineage.caught_up
    applied = plural(report.events_applied, "event")
    used = report.snapshot_used
    if used is None:
        why = f": {report.reason}" if report.reason else ""
        return f"no snapshot{why}; {applied} folded from the start"
    return (
        f"snapshot {used.path} (position {used.position:,}, created {used.created}, "
        f"checksum {used.checksum}), then {applied} applied"
    )


def _sources(lineage: Lineage) -> FigureTable:
    columns = [
        Col("source", "key"),
        Col("events"),
        Col("total"),
        Col("first line"),
        Col("last line"),
        *held_columns(lineage),
    ]
    rows: list[list[str | Text]] = [
        [
            plain(name),
            grouped(s.count),
            grouped(canonical_decimal(s.total)),
            grouped(s.first_line),
            grouped(s.last_line),
            *held_cells(lineage, s),
        ]
        for name, s in lineage.sources.items()
    ]
    return FigureTable(columns, rows, title="by source")


def _hours(lineage: Lineage) -> FigureTable:
    columns = [Col("hour (UTC)", "key"), Col("events"), Col("total"), *held_columns(lineage)]
    shown = list(lineage.hours.items())[:HOURS_SHOWN]
    rows: list[list[str | Text]] = [
        [hour, grouped(s.count), grouped(canonical_decimal(s.total)), *held_cells(lineage, s)]
        for hour, s in shown
    ]
    caption = None
    if len(lineage.hours) > HOURS_SHOWN:
        caption = f"the first {HOURS_SHOWN} of {len(lineage.hours):,} hours: --json lists all"
    return FigureTable(columns, rows, title="by hour (none: no timestamp)", caption=caption)


def _version(version: dict[str, Any], source: str) -> str:
    """A version of a conflicting event: category, value, time and where it was (its file
    named when it is not the conflict's ``source``)."""
    when = version.get("occurred_at") or "no timestamp"
    where = f"line {version.get('line', 0):,}"
    if version.get("source") != source:
        where = f"{version.get('source')}, {where}"
    return f"{version.get('category')} {version.get('value')} at {when} ({where})"


def _listed(count: int, shown: int) -> str | None:
    if count <= shown:
        return None
    return f"the first {shown:,} of {count:,} (at most {LISTED:,} are listed)"


def _conflicts(lineage: Lineage) -> FigureTable:
    aside = lineage.set_aside
    columns = [
        Col("event id", "key"),
        Col("source", "text"),
        Col("line"),
        Col("recorded (first)", "text"),
        Col("not applied (later)", "text"),
    ]
    rows: list[list[str | Text]] = [
        [
            plain(c.event_id),
            plain(c.source),
            grouped(c.line),
            plain(_version(c.first, c.source)),
            plain(_version(c.later, c.source)),
        ]
        for c in aside.conflicts
    ]
    ids = len({c.event_id for c in aside.conflicts})
    title = f"conflicts: {plural(aside.conflicts_count, 'line')} came again with other content" + (
        f" ({plural(ids, 'id')} among those listed)" if ids != aside.conflicts_count else ""
    )
    return FigureTable(
        columns, rows, title=title, caption=_listed(aside.conflicts_count, len(rows))
    )


def _quarantined(lineage: Lineage) -> FigureTable:
    aside = lineage.set_aside
    title = f"quarantined: {plural(aside.quarantined_count, 'line')} that named the category"
    caption = _listed(aside.quarantined_count, len(aside.quarantined))
    return quarantined_table(aside.quarantined, title, caption)


def duplicates_line(lineage: Lineage) -> Text:
    """Duplicates are counted per source only: what the category's sources counted."""
    counts = lineage.set_aside.duplicates
    total = sum(counts.values())
    text = (
        "duplicates: not kept per category (a duplicate repeats a recorded event's content: "
        f"it changes no total); the category's sources counted {plural(total, 'duplicate')} "
        "(of any category)"
    )
    if total:
        text += ": " + "; ".join(f"{name}: {count:,}" for name, count in counts.items() if count)
    return plain(text)
