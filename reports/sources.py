"""The report of ``eventfold sources`` (a table, then a totals line), and the sources
line of ``eventfold status``."""

from __future__ import annotations

from rich.console import Group
from rich.text import Text

from eventfold.application.admin.sources import (
    COMPLETE,
    GREW,
    NOT_A_FILE,
    REWRITTEN,
    STATES,
    UNCHECKED,
    UNREADABLE,
    VANISHED,
    SourcesReport,
    SourceState,
)
from eventfold.reports.layout import Col, FigureTable
from eventfold.reports.text import grouped, plain, plural

STYLES = {
    COMPLETE: "green",
    GREW: "yellow",
    REWRITTEN: "bold red",
    VANISHED: "red",
    UNREADABLE: "red",
    UNCHECKED: "",
    NOT_A_FILE: "dim",
}


def render_sources(report: SourcesReport) -> Group:
    columns = [
        Col("source", "key"),
        Col("kind", "word"),
        Col("state", "text"),
        Col("position"),
        Col("line"),
        Col("size on disk"),
        Col("ingested"),
        Col("duplicates"),
        Col("conflicts"),
        Col("quarantined"),
    ]
    rows = [_row(s, report.digests) for s in report.sources]
    if any(row[-1].plain for row in rows):  # compressed, renamed, rescanned, a problem
        columns.append(Col("notes", "text"))
    else:
        rows = [row[:-1] for row in rows]
    caption = None if rows else "none yet: eventfold ingest FILE records one"
    table = FigureTable(columns, rows, title="sources", caption=caption)
    return Group(table, totals_line(report))


def _row(source: SourceState, digests: bool) -> list[Text]:
    name = source.path + (f" (partition {source.partition})" if source.partition else "")
    size = "-" if source.size_on_disk is None else grouped(source.size_on_disk)
    counts = ("ingested", "duplicates", "conflicts", "quarantined")
    return [
        plain(name),
        Text(source.kind),
        _state(source, digests),
        *(Text(figure) for figure in (grouped(source.position), grouped(source.line), size)),
        *(Text(grouped(source.count(key))) for key in counts),
        plain("; ".join(_notes(source))),
    ]


def _state(source: SourceState, digests: bool) -> Text:
    """The state; without ``--quick``, a file that had no digest to compare says so."""
    text = source.state
    if source.state == GREW and source.new_bytes is not None:
        text += f" by {plural(source.new_bytes, 'byte')}"
        if source.pending_tail_bytes:
            text += f" (pending tail: {plural(source.pending_tail_bytes, 'byte')})"
    unchecked = source.state in (COMPLETE, GREW) and not source.digest_checked
    if digests and source.kind == "file" and unchecked:
        text += " (no digest recorded)"
    return Text(text, style=STYLES.get(source.state, ""))


def _notes(source: SourceState) -> list[str]:
    notes = []
    if source.compression:
        notes.append(source.compression)  # its position counts uncompressed bytes
    if source.renamed_from:
        notes.append(f"continues {source.renamed_from}")
    if source.generation:
        notes.append(f"rescanned {plural(source.generation, 'time')}")
    if source.problem:
        notes.append(source.problem)
    return notes


def totals_line(report: SourcesReport) -> Text:
    """The sources by state, and the sums of their counts."""
    totals = report.totals()
    states = report.states()
    parts = [f"{count:,} {state}" for state in STATES if (count := states[state])]
    text = (
        f"{plural(totals['sources'], 'source')} ({plural(totals['files'], 'file')})"
        + (": " + ", ".join(parts) if parts else "")
        + "; "
        + ", ".join(
            f"{key} {grouped(totals[key])}"
            for key in ("read", "ingested", "duplicates", "conflicts", "quarantined")
        )
    )
    if not report.digests:
        text += " (--quick: states by size only, no prefix hashed)"
    return plain(text)


def status_line(report: SourcesReport) -> Text:
    """``status``'s one line: the files and how many changed, by their sizes."""
    summary = report.summary()
    changed = [
        f"{summary[key]:,} {word}"
        for key, word in ((GREW, "grew"), (VANISHED, "vanished"), (REWRITTEN, "rewritten"))
        if summary[key]
    ]
    text = f"sources: {plural(summary['files'], 'file')}"
    if summary["files"]:
        text += f" ({', '.join(changed)}, by size)" if changed else " (none changed, by size)"
    others = summary["count"] - summary["files"]
    if others:
        text += f", {plural(others, 'other source')} (standard input, a stream or a replay)"
    return plain(text + "; eventfold sources shows each")
