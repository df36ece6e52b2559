"""The diff report of ``verify`` (and of ``reconcile``'s before and after).

Readable without colour: every status is a word (MATCH, MISSING, EXTRA,
CHANGED) and every delta carries its sign; colour only repeats it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from eventfold.application.proving.keyed import jsonable
from eventfold.application.proving.verify import VerifyReport
from eventfold.application.sources import SourceList
from eventfold.projections.base import canonical_decimal
from eventfold.reports.fold import glued
from eventfold.reports.layout import Col, FigureTable, Summary
from eventfold.reports.suggestions import next_steps
from eventfold.reports.text import grouped, look_alikes, plain, plural, signed, told_apart
from eventfold.reports.timeline import render_timeline

STYLES = {"match": "green", "missing": "red", "extra": "magenta", "changed": "yellow"}


def render_verify(
    report: VerifyReport,
    *,
    show_all: bool = False,
    store_options: Sequence[str] = (),
    asked: SourceList | None = None,
) -> Group:
    """The diff report; ``store_options`` (``--store DIR`` ...) and the sources as given
    (``asked``; None: each file read) go into the commands it suggests."""
    parts: list[RenderableType] = []
    rows = report.compared if show_all else report.differences
    if rows:
        noun = row_noun(report, 2)
        title = noun if show_all else f"differing {noun}"
        parts.append(
            difference_table(
                rows, title, report.key_names, report.time_key, marks=report.resting_rows
            )
        )
    if report.resting:
        parts.extend(resting_table(report))
    if report.timeline is not None:
        parts.append(render_timeline(report.timeline))
    if report.events is not None and not report.matches:
        parts.extend(_event_tables(report))
    if len(report.files) > 1:
        parts.append(files_table(report))
    parts.append(_summary(report, store_options, asked))
    return Group(*parts)


def row_noun(report: VerifyReport, count: int) -> str:
    """What a compared row is called: a category, or a row (category, hour) of another
    projection's keys."""
    if report.key_names == ("category",):
        return "category" if count == 1 else "categories"
    return f"{'row' if count == 1 else 'rows'} ({', '.join(report.key_names)})"


def verdict(report: VerifyReport) -> Text:
    """The one-line result (``--quiet``)."""
    unread = report.unread_measures
    if report.matches and unread:
        lacking = ", ".join(unread)
        return Text(
            f"MATCH of what the expected file gives (no {lacking} in "
            f"{plural(max(unread.values()), 'row')}): {report.actual_checksum}",
            style="bold green",
        )
    resting = len(report.resting_rows)
    if report.matches and resting:
        ids = ", ".join(r.ident for r in report.resting.standing)
        return Text(
            f"MATCH, {plural(resting, 'total')} resting in part on reconstructions ({ids}): "
            f"proven from raw events except the summaries' part: {report.actual_checksum}",
            style="bold yellow",
        )
    if report.matches:
        return Text(f"MATCH {report.actual_checksum}", style="bold green")
    if report.checksum_only:
        return Text(
            f"MISMATCH: the checksum differs (expected {report.expected_checksum}, "
            f"actual {report.actual_checksum})",
            style="bold red",
        )
    differing = len(report.differences)
    expected = report.expected_checksum or "none, the expected file lacks counts"
    return Text(
        f"MISMATCH: {differing:,} {row_noun(report, differing)} "
        f"{'differs' if differing == 1 else 'differ'} "
        f"(expected {expected}, actual {report.actual_checksum})",
        style="bold red",
    )


def difference_table(
    rows: list[Any],
    title: str,
    key_names: Sequence[str],
    time_key: str | None = None,
    sides: tuple[str, str] = ("expected", "actual"),
    marks: Mapping[tuple[str, ...], list[str]] | None = None,
) -> FigureTable:
    """Rows of ``Difference``: the key parts, the status, then each measure on both
    ``sides`` and its Δ (or, without measures, each side's value whole). With ``marks``
    (rows whose actual value rests in part on reconstructions), a ``rests on`` column
    names them."""
    marks = marks or {}
    marked = any(d.key in marks for d in rows)
    measures = list(rows[0].measures or {}) if rows else []
    columns = [
        Col(name, "key" if i == 0 else "word" if name == time_key else "text")
        for i, name in enumerate(key_names)
    ]
    columns.append(Col("status", "word"))
    if marked:
        columns.append(Col("rests on", "word"))
    for side in (*sides, "Δ"):
        if not measures and side != "Δ":
            columns.append(Col(side, "text"))
        for m in measures:
            columns.append(Col(f"{side} {m}", group=side, measure=m))
    cells: list[list[str | Text]] = []
    alike = look_alikes(part for d in rows for part in d.key)
    for d in rows:
        exp, act, delta = d.expected, d.actual, d.delta
        row: list[str | Text] = [plain(told_apart(p) if p in alike else p) for p in d.key]
        row.append(Text(d.status.upper(), style=STYLES[d.status]))
        if marked:
            row.append(", ".join(marks.get(d.key, [])) or "-")
        if not measures:
            row += [_whole(exp), _whole(act)]
        for side in (exp, act):
            row += [_measure(side, m) for m in measures]
        if delta is not None:
            row += ["-" if delta[m] is None else signed(delta[m]) for m in measures]
        cells.append(row)
    return FigureTable(columns, cells, title=title)


def resting_table(report: VerifyReport) -> list[RenderableType]:
    """The standing reconstructions' parts in the rows compared: each summary beside what
    the sources hold in its period (with sources)."""
    parts = report.resting.parts
    compared = {k[report.key_names.index("category")] for k in report.resting_rows}
    parts = [p for p in parts if p.category in compared]
    if not parts:
        return []
    with_sources = any(p.source_count is not None for p in parts)
    columns = [Col("reconstruction", "word"), Col("category", "key")]
    columns += [Col("summary count"), Col("summary total")]
    if with_sources:
        columns += [Col("sources count"), Col("sources total"), Col("Δ total")]
    cells: list[list[str | Text]] = []
    for p in parts:
        row: list[str | Text] = [p.reconstruction, plain(p.category)]
        row += [grouped(p.count), grouped(canonical_decimal(p.total))]
        if with_sources:
            row += [
                "-" if p.source_count is None else grouped(p.source_count),
                "-" if p.source_total is None else grouped(canonical_decimal(p.source_total)),
                "-" if (d := p.difference) is None else signed(canonical_decimal(d)),
            ]
        cells.append(row)
    caption = (
        "the summaries are counted instead of the raw events of their periods; the sources' "
        "events there are shown beside them, not counted"
        if with_sources
        else "the summaries are counted instead of the raw events of their periods"
    )
    title = f"totals resting on reconstructions: {plural(len(parts), 'part')}"
    return [FigureTable(columns, cells, title=title, caption=caption)]


def _measure(row: Any, name: str) -> str:
    if row is None or row.get(name) is None:
        return "-"
    return grouped(row[name])


def _whole(value: Any) -> Text:
    shown = json.dumps(jsonable(value), sort_keys=True, ensure_ascii=False)
    return plain("-" if value is None else shown)


def shown(rows: int, count: int) -> str | None:
    """The caption of a list capped by ``--limit``: None when every row is shown."""
    if count <= rows:
        return None
    return f"first {rows:,} of {count:,} shown (--limit 0 for all)"


def _event_tables(report: VerifyReport) -> list[RenderableType]:
    e = report.events
    assert e is not None
    many = len(report.sources) > 1  # then a missing event names its file
    parts: list[RenderableType] = []
    for title, count, rows, keys in (
        (
            "in the source, not in the store (missing)",
            e.missing_count,
            e.missing,
            ("id", "category", "value", *("source",) * many, "line"),
        ),
        (
            "in the store, not in the source (extra)",
            e.extra_count,
            e.extra,
            ("id", "category", "value", "source", "line"),
        ),
        (
            "recorded again in the store (duplicated: counted twice)",
            e.duplicated_count,
            e.duplicated,
            ("id", "category", "value", "notification_id", "line"),
        ),
    ):
        if not count:
            continue
        kinds = {"id": "key", "category": "text", "source": "text"}
        columns = [Col(key, kinds.get(key, "figure")) for key in keys]
        parts.append(
            FigureTable(
                columns,
                [[_cell(key, row[key]) for key in keys] for row in rows],
                title=f"{title}: {grouped(count)}",
                caption=shown(len(rows), count),
            )
        )
    if e.conflicting_count:
        columns = [Col("id", "key"), Col("source says", "text"), Col("store says", "text")]
        cells: list[list[str | Text]] = []
        for row in e.conflicting:
            s, t = row["source"], row["store"]
            cells.append([str(row["id"]), _side(s, many), _side(t, True)])  # any file stored
        parts.append(
            FigureTable(
                columns,
                cells,
                title=f"same id, different content (conflicting): {grouped(e.conflicting_count)}",
                caption=shown(len(e.conflicting), e.conflicting_count),
            )
        )
    return parts


def _side(said: dict[str, Any], named: bool = False) -> Text:
    """What one side says of a conflicting event; ``line N`` is never folded apart; with
    ``named``, its file beside it (folded as a path is, never cut)."""
    line = glued("line", grouped(said["line"]))
    where = Text.assemble("  ", plain(said["source"])) if named else Text()
    return Text.assemble(plain(said["category"]), f"  {grouped(said['value'])}", where, f"  {line}")


def files_table(report: VerifyReport) -> FigureTable:
    """What each source held, in reading order (with several sources)."""
    columns = [
        Col("source", "text"),
        Col("compression", "word"),
        Col("lines"),
        Col("valid"),
        Col("invalid"),
        Col("repeats"),
    ]
    cells: list[list[str | Text]] = [
        [plain(f.source), f.compression or "-", *_figures(f.lines, f.valid, f.invalid, f.repeats)]
        for f in report.files
    ]
    return FigureTable(columns, cells, title=f"sources, in reading order: {grouped(len(cells))}")


def _figures(*counts: int) -> list[str | Text]:
    return [grouped(n) for n in counts]


def _cell(key: str, value: Any) -> str:
    if key in ("value", "line", "notification_id"):
        return "-" if value is None else grouped(value)
    return str(value)


def about_expectation(report: VerifyReport) -> list[str]:
    """What the comparison rests on, in lines: the narrowing, the expected file and
    what it lacks, whose code made the expected state, where the export went."""
    lines = []
    if report.narrowing:
        lines.append(f"narrowed to {report.narrowing.describe()}: the checksums are of those rows")
    expected = report.expected_file
    if expected is not None:
        lines.append(
            f"expected file: {expected.path} ({expected.format.upper()}, "
            f"{plural(expected.read, 'row')} read)"
        )
        for measure, rows in report.unread_measures.items():
            lines.append(
                f"no {measure} in {plural(rows, 'row')} of the expected file: "
                f"{measure}s of those rows are not compared, and the expected state has no "
                "checksum of its own"
            )
    if report.same_code:
        lines.append(
            f"the expected state is {report.projection.projection}'s own fold of the "
            "sources' accepted events: the same handler code is on both sides, so this "
            "proves the store's events, not the handlers"
        )
    resting = len(report.resting_rows)
    if resting:
        ids = ", ".join(r.ident for r in report.resting.standing)
        lines.append(
            f"{plural(resting, 'total')} rest in part on reconstructions ({ids}): their "
            "summaries stand for the raw events of their periods and are not proven by them "
            "(eventfold reconstruct --list)"
        )
        disagreeing = report.resting.disagreeing
        if disagreeing:
            lines.append(
                f"the sources hold raw events in reconstructed periods that differ from the "
                f"summaries ({plural(len(disagreeing), 'part')}): if the sources are complete "
                "for those periods, retiring the reconstruction (eventfold reconstruct "
                "--retire ID) counts their raw events instead"
            )
    beside = report.resting.beside
    if beside:
        ids = ", ".join(r.ident for r in beside)
        lines.append(
            f"the window compares raw events on both sides; reconstructions {ids} stand for "
            "events in it, and are counted in the projection's totals but not here"
        )
    if report.exported is not None:
        e = report.exported
        lines.append(
            f"every difference written to {e.path}: {plural(e.keys, 'key')}, "
            f"{plural(e.events, 'event')}"
        )
    return lines


def _summary(
    report: VerifyReport, store_options: Sequence[str], asked: SourceList | None
) -> Summary:
    differing = len(report.differences)
    noun = row_noun(report, 2)
    compared = (
        plain(
            f"only a checksum was given: {noun} cannot be compared "
            "(--expected FILE or --source can)"
        )
        if report.checksum_only
        else plain(
            f"{noun} compared: {grouped(len(report.compared))}; matching "
            f"{len(report.compared) - differing:,}; differing {differing:,}"
        )
    )
    lines = [
        verdict(report),
        compared,
        plain(f"expected checksum: {report.expected_checksum or 'none (see below)'}"),
        plain(f"actual checksum:   {report.actual_checksum}"),
        plain(
            f"projection {report.projection.projection} at position "
            f"{report.projection.position:,} (caught up "
            f"{plural(report.projection.events_applied, 'event')})"
        ),
    ]
    lines += [plain(line) for line in about_expectation(report)]
    if not report.narrowing and not any(d.actual for d in report.compared):
        lines.append(plain("the store holds no events", style="bold"))
    if report.sources and report.events is not None:
        e = report.events
        read = (
            f"source {report.source}"
            if report.source is not None
            else f"{grouped(len(report.sources))} sources"
        )
        lines.append(
            plain(
                f"{read}: {plural(e.missing_count, 'event')} missing from "
                f"the store, {e.extra_count:,} extra, {e.conflicting_count:,} "
                "conflicting"
                + (f", {e.duplicated_count:,} recorded twice" if e.duplicated_count else "")
            )
        )
        for suggested, what in next_steps(report, store_options, asked=asked):
            lines.append(plain(f"{suggested} {what}"))
    return Summary(lines, title="verify", border_style="green" if report.matches else "red")
