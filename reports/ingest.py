"""The report of ``eventfold ingest``: a summary table, then what was set aside."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Group, RenderableType
from rich.text import Text

from eventfold.application.ingest.many import IngestSetReport
from eventfold.application.ingest.report import IngestReport
from eventfold.reports.fold import glued
from eventfold.reports.layout import Col, FigureTable
from eventfold.reports.text import grouped, plain, plural

if TYPE_CHECKING:  # a partition's report: only on postgres
    from eventfold.application.ingest.partitioned import PartitionedReport


def render_ingest(report: IngestReport) -> Group:
    parts: list[RenderableType] = [_summary(report)]
    if report.rescanned:
        parts.append(
            Text(
                "the source had changed: it was ingested anew from byte 0 "
                "(--rescan); ids already recorded counted as duplicates",
                style="yellow",
            )
        )
    if report.pending_tail is not None:
        tail = report.pending_tail
        parts.append(
            Text(
                f"pending: line {grouped(tail.line)} (byte offset {grouped(tail.offset)}, "
                f"{grouped(tail.size)} bytes) is "
                "unterminated and not yet a complete JSON object; the next run picks it up",
                style="yellow",
            )
        )
    if report.renamed_from is not None:
        parts.append(
            plain(
                f"this file continues {report.renamed_from} (renamed): its first "
                f"{grouped(report.resumed_from)} bytes were ingested under that name and "
                "were not read again",
            )
        )
    if report.damage is not None:
        parts.append(plain(f"not read whole: {report.damage.describe()}", style="red"))
    if report.invalid_samples:
        parts.append(_invalid(report))
    if report.conflict_samples:
        parts.append(_conflicts(report))
    return Group(*parts)


def _summary(report: IngestReport) -> FigureTable:
    tail = report.pending_tail
    rows = [
        ("read", f"{report.read:,}", ""),
        ("ingested", f"{report.ingested:,}", "green" if report.ingested else ""),
        ("duplicates", f"{report.duplicates:,}", ""),
        ("conflicts", f"{report.conflicts:,}", "yellow" if report.conflicts else ""),
        ("invalid (quarantined)", f"{report.invalid:,}", "yellow" if report.invalid else ""),
        ("pending tail", "none" if tail is None else f"line {grouped(tail.line)}", ""),
        ("resumed from byte", f"{report.resumed_from:,}", ""),
        ("now at byte", f"{report.position:,} (line {report.line:,})", ""),
        ("elapsed", f"{report.elapsed:.2f} s", ""),
        ("events/s", f"{report.events_per_second:,.0f}", ""),
    ]
    if report.partition is not None:
        rows.insert(
            5,
            (
                f"left to other partitions (this is {report.partition})",
                f"{report.other_partitions:,}",
                "",
            ),
        )
    return FigureTable(
        [Col("measure", "key"), Col("")],
        [[label, Text(value, style=style)] for label, value, style in rows],
        title=plain(
            f"ingest {report.source}"
            + ("" if report.compression is None else f" ({report.compression})")
        ),
        show_header=False,
    )


def _invalid(report: IngestReport) -> RenderableType:
    more = report.invalid - len(report.invalid_samples)
    caption = (
        f"all {grouped(report.invalid)} in {report.quarantine_file}"
        if more
        else (f"kept in {report.quarantine_file}")
    )
    columns = [Col("line"), Col("byte offset"), Col("reason", "key"), Col("raw", "text")]
    return FigureTable(
        columns,
        [
            [grouped(s.line), grouped(s.offset), s.reason, _clip(s.raw)]
            for s in report.invalid_samples
        ],
        title="invalid lines (quarantined)",
        caption=plain(caption),
    )


def _conflicts(report: IngestReport) -> RenderableType:
    more = report.conflicts - len(report.conflict_samples)
    columns = [Col("id", "key")]
    columns += [Col(f"{when}: category, value, line", "text") for when in ("first", "later")]
    return FigureTable(
        columns,
        [
            [c.event_id, _conflict_side(c.first), _conflict_side(c.later)]
            for c in report.conflict_samples
        ],
        title="conflicts (the first occurrence stands)",
        caption=f"and {grouped(more)} more" if more else None,
    )


def _conflict_side(side: dict[str, Any]) -> Text:
    line = glued("line", grouped(side["line"]))  # never folded apart
    return Text.assemble(plain(side["category"]), f"  {grouped(side['value'])}  {line}")


def _clip(raw: str, width: int = 80) -> str:
    return raw if len(raw) <= width else raw[: width - 1] + "…"


def ingest_verdict(report: IngestReport) -> Text:
    """The one-line result (``--quiet``): the counts and where the source now stands."""
    tail = report.pending_tail
    text = (
        f"ingest {report.source}: read {report.read:,}, ingested {report.ingested:,}, "
        f"duplicates {report.duplicates:,}, conflicts {report.conflicts:,}, "
        f"invalid {report.invalid:,}; now at byte {report.position:,} (line {report.line:,})"
        + ("" if tail is None else f"; pending tail: line {tail.line:,}")
    )
    return plain(text, style="yellow" if report.conflicts or report.invalid else "green")


def render_ingest_set(report: IngestSetReport, limit: int = 20) -> Group:
    """The report of an ingest of several files: a row per file (the first ``limit``, files
    with something to say first; 0: all), the totals, then what could not be read."""
    parts: list[RenderableType] = [_files(report, limit), _totals(report)]
    for line in report.unread:
        parts.append(plain(f"not read whole: {line}", style="red"))
    return Group(*parts)


def _notable(file: IngestReport) -> bool:
    return bool(
        file.damage
        or file.invalid
        or file.conflicts
        or file.pending_tail
        or file.renamed_from
        or file.rescanned
        or file.rotated_to
    )


def _files(report: IngestSetReport, limit: int) -> FigureTable:
    files = report.files
    shown = files
    if limit and len(files) > limit:  # something to say first, then what was read
        ranked = sorted(
            range(len(files)), key=lambda i: (not _notable(files[i]), not files[i].read, i)
        )
        shown = [files[i] for i in sorted(ranked[:limit])]
    columns = [Col("file", "key")]
    columns += [Col(name) for name in ("read", "ingested", "duplicates", "conflicts", "invalid")]
    columns.append(Col("note", "text"))
    rows: list[list[str | Text]] = [
        [
            plain(f.source),
            grouped(f.read),
            grouped(f.ingested),
            grouped(f.duplicates),
            grouped(f.conflicts),
            grouped(f.invalid),
            _note(f),
        ]
        for f in shown
    ]
    more = len(files) - len(shown)
    caption = f"and {plural(more, 'more file')} (all in --json)" if more else None
    return FigureTable(columns, rows, title="ingest: files", caption=caption)


def _note(file: IngestReport) -> Text:
    notes = []
    if file.compression:
        notes.append(file.compression)
    if file.renamed_from:
        notes.append(
            f"continues {file.renamed_from} (renamed): its first "
            f"{grouped(file.resumed_from)} bytes were ingested under that name"
        )
    elif file.resumed_from and not file.read and not file.pending_tail:
        notes.append("nothing new")
    elif file.resumed_from:
        notes.append(f"resumed from byte {grouped(file.resumed_from)}")
    if file.rotated_to:
        notes.append(f"a new file: its earlier content continues as {file.rotated_to}")
    elif file.rescanned:
        notes.append("changed: ingested anew (--rescan)")
    if file.pending_tail:
        notes.append(f"pending tail at line {grouped(file.pending_tail.line)}")
    if file.damage:
        notes.append(f"damaged after byte {grouped(file.damage.position)}")
    style = "red" if file.damage else "yellow" if file.invalid or file.conflicts else ""
    return plain("; ".join(notes), style=style)


def _totals(report: IngestSetReport) -> FigureTable:
    files = len(report.files) + len(report.refused)
    rows = [
        ("files", grouped(files), ""),
        ("read to their end", grouped(len(report.files) - len(report.damaged)), ""),
        ("refused", grouped(len(report.refused)), "red" if report.refused else ""),
        (
            "damaged (read up to the damage)",
            grouped(len(report.damaged)),
            "red" if report.damaged else "",
        ),
        ("renamed (continued, not read again)", grouped(len(report.renamed)), ""),
        ("read", grouped(report.total("read")), ""),
        (
            "ingested",
            grouped(report.total("ingested")),
            "green" if report.total("ingested") else "",
        ),
        ("duplicates", grouped(report.total("duplicates")), ""),
        (
            "conflicts",
            grouped(report.total("conflicts")),
            "yellow" if report.total("conflicts") else "",
        ),
        (
            "invalid (quarantined)",
            grouped(report.total("invalid")),
            "yellow" if report.total("invalid") else "",
        ),
        ("elapsed", f"{report.elapsed:.2f} s", ""),
        ("events/s", f"{report.events_per_second:,.0f}", ""),
    ]
    return FigureTable(
        [Col("measure", "key"), Col("")],
        [[label, Text(value, style=style)] for label, value, style in rows],
        title=f"ingest: {plural(files, 'file')} in total",
        show_header=False,
    )


def ingest_set_verdict(report: IngestSetReport) -> Text:
    """The one-line result (``--quiet``) of an ingest of several files."""
    files = len(report.files) + len(report.refused)
    text = (
        f"ingest {plural(files, 'file')}: read {grouped(report.total('read'))}, "
        f"ingested {grouped(report.total('ingested'))}, "
        f"duplicates {grouped(report.total('duplicates'))}, "
        f"conflicts {grouped(report.total('conflicts'))}, "
        f"invalid {grouped(report.total('invalid'))}"
        + (f"; {grouped(len(report.unread))} not read whole" if report.unread else "")
    )
    bad = report.unread or report.total("conflicts") or report.total("invalid")
    return plain(text, style="yellow" if bad else "green")


def render_partitioned(report: PartitionedReport) -> Text:
    """What a partition did beside its files: its share, and what joined the store's log."""
    join = report.join
    text = (
        f"partition {report.partition}: {grouped(report.files_of_this_partition)} of "
        f"{plural(report.files_planned, 'file')} in the plan are this partition's"
        + (
            f" ({grouped(report.files_done_before)} done before)"
            if report.files_done_before
            else ""
        )
        + f"; joined the store's log: {plural(join.events, 'event')} from "
        f"{plural(join.files, 'file')}"
    )
    if join.duplicates or join.conflicts:
        text += (
            f"; ids an earlier file holds: duplicates {grouped(join.duplicates)}, "
            f"conflicts {grouped(join.conflicts)}"
        )
    if join.waiting is not None:
        text += (
            f"; waiting on partition {join.waiting_on} for {join.waiting.identity} "
            "(its events, and the files after it, join when that partition has read it)"
        )
    elif join.busy:
        text += "; another process is joining"
    return plain(text, style="yellow" if join.waiting is not None or join.conflicts else "green")


def partitioned_verdict(report: IngestSetReport, partitioned: PartitionedReport) -> Text:
    """The one-line result (``--quiet``) of a partition: its files', then the join's."""
    join = partitioned.join
    line = ingest_set_verdict(report)
    line.append(
        f"; joined {plural(join.events, 'event')} (duplicates {grouped(join.duplicates)}, "
        f"conflicts {grouped(join.conflicts)})"
        + ("" if join.waiting is None else f"; waiting on partition {join.waiting_on}")
    )
    if join.waiting is not None:
        line.stylize("yellow")
    return line
