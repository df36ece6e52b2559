"""The report of ``eventfold ingest``: a summary table, then what was set aside."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from eventfold.application.ingest.report import IngestReport
from eventfold.reports.text import plain


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
                f"pending: line {tail.line} (byte offset {tail.offset}, {tail.size} bytes) is "
                "unterminated and not yet a complete JSON object; the next run picks it up",
                style="yellow",
            )
        )
    if report.invalid_samples:
        parts.append(_invalid(report))
    if report.conflict_samples:
        parts.append(_conflicts(report))
    return Group(*parts)


def _summary(report: IngestReport) -> Table:
    table = Table(title=plain(f"ingest {report.source}"), title_justify="left", show_header=False)
    table.add_column("measure")
    table.add_column("value", justify="right")
    tail = report.pending_tail
    rows = [
        ("read", f"{report.read:,}", ""),
        ("ingested", f"{report.ingested:,}", "green" if report.ingested else ""),
        ("duplicates", f"{report.duplicates:,}", ""),
        ("conflicts", f"{report.conflicts:,}", "yellow" if report.conflicts else ""),
        ("invalid (quarantined)", f"{report.invalid:,}", "yellow" if report.invalid else ""),
        ("pending tail", "none" if tail is None else f"line {tail.line}", ""),
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
    for label, value, style in rows:
        table.add_row(label, Text(value, style=style))
    return table


def _invalid(report: IngestReport) -> RenderableType:
    more = report.invalid - len(report.invalid_samples)
    caption = (
        f"all {report.invalid} in {report.quarantine_file}"
        if more
        else (f"kept in {report.quarantine_file}")
    )
    table = Table(
        title="invalid lines (quarantined)",
        title_justify="left",
        caption=plain(caption),
        caption_justify="left",
    )
    for column in ("line", "byte offset", "reason", "raw"):
        table.add_column(column, justify="right" if column in ("line", "byte offset") else "left")
    for s in report.invalid_samples:
        table.add_row(str(s.line), str(s.offset), plain(s.reason), plain(_clip(s.raw)))
    return table


def _conflicts(report: IngestReport) -> RenderableType:
    more = report.conflicts - len(report.conflict_samples)
    table = Table(
        title="conflicts (the first occurrence stands)",
        title_justify="left",
        caption=f"and {more} more" if more else None,
        caption_justify="left",
    )
    for column in ("id", "first: category, value, line", "later: category, value, line"):
        table.add_column(column)
    for c in report.conflict_samples:
        table.add_row(
            plain(c.event_id),
            plain(f"{c.first['category']}  {c.first['value']}  line {c.first['line']}"),
            plain(f"{c.later['category']}  {c.later['value']}  line {c.later['line']}"),
        )
    return table


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
