"""The report of ``eventfold check``."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.text import Text

from eventfold.infra.filestore.check import LogReport, StoreReport
from eventfold.reports.layout import Col, FigureTable
from eventfold.reports.text import grouped, plain


def render_check(report: StoreReport) -> Group:
    """One row per log, one per structure derived from the logs, then what is wrong."""
    details: list[Text] = []
    parts: list[RenderableType] = [_logs(report, details)]
    if report.derived:
        parts.append(_derived(report, details))
    return Group(*parts, *details)


def _logs(report: StoreReport, details: list[Text]) -> FigureTable:
    columns = [Col("log", "key"), Col("segments"), Col("commits"), Col("events")]
    columns += [Col("torn tail"), Col("index", "text"), Col("status", "word")]
    rows: list[list[str | Text]] = []
    for log in report.logs:
        tail = log.torn_tail
        if tail:
            details.append(
                Text(
                    f"torn tail: {tail.file}: byte offset {grouped(tail.offset)}: "
                    f"{grouped(tail.length)} bytes "
                    "of an unacknowledged commit (dropped on the next write, or --repair)",
                    style="yellow",
                )
            )
        for p in log.problems:
            details.append(
                Text(
                    f"DAMAGED: {p.file}: byte offset {grouped(p.offset)}: {p.reason}",
                    style="bold red",
                )
            )
        details.extend(Text(f"repaired: {note}", style="green") for note in log.repairs)
        rows.append(
            [
                Text(log.name),
                grouped(log.segments),
                grouped(log.commits),
                grouped(log.events),
                Text(f"{grouped(tail.length)} bytes", style="yellow") if tail else Text("none"),
                Text(log.index),
                _status(log),
            ]
        )
    return FigureTable(columns, rows, title=Text(f"store {report.path}"))


def _status(log: LogReport) -> Text:
    if log.problems:
        return Text("DAMAGED", style="bold red")
    if not log.sound:
        return Text("INDEX DAMAGED", style="bold red")
    return Text("ok" + (" (repaired)" if log.repairs else ""), style="green")


def _derived(report: StoreReport, details: list[Text]) -> FigureTable:
    rows: list[list[str | Text]] = []
    for d in report.derived:
        style = {"damaged": "bold red", "repaired": "green"}.get(d.status, "")
        status = d.status.upper() if d.status == "damaged" else d.status
        rows.append([d.kind, Text(d.path), Text(status, style=style)])
        for p in d.problems:
            details.append(
                Text(
                    f"DAMAGED {d.kind}: {p.file}: byte offset {grouped(p.offset)}: {p.reason}",
                    style="bold red",
                )
            )
    columns = [Col("kind", "word"), Col("path", "key"), Col("status", "word")]
    return FigureTable(columns, rows, title="derived from the log")


def check_verdict(report: StoreReport) -> Text:
    """The one-line result (``--quiet``): sound or damaged, and what was read."""
    commits = sum(log.commits for log in report.logs)
    events = sum(log.events for log in report.logs)
    torn = sum(1 for log in report.logs if log.torn_tail)
    read = f"logs {len(report.logs):,}, commits {commits:,}, events {events:,}"
    if report.sound:
        note = f"; torn tails {torn:,} (not damage: dropped on the next write)" if torn else ""
        return plain(f"OK store {report.path}: {read}{note}", style="green")
    damaged = sum(not log.sound for log in report.logs) + sum(not d.sound for d in report.derived)
    return plain(
        f"DAMAGED store {report.path}: {read}; damaged structures {damaged:,} (named on stderr)",
        style="bold red",
    )
