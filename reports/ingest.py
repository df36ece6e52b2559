"""The report of ``eventfold ingest``: a summary table, then what was set aside."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from eventfold.application.ingest.report import IngestReport
from eventfold.reports.fold import glued
from eventfold.reports.layout import Col, FigureTable
from eventfold.reports.text import grouped, plain


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
        title=plain(f"ingest {report.source}"),
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
