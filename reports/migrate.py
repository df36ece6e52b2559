"""The report of ``migrate``: what was copied, and the proof that the copy is whole."""

from __future__ import annotations

from rich.console import Group
from rich.text import Text

from eventfold.application.admin.migrate import MigrateReport
from eventfold.reports.layout import Col, FigureTable
from eventfold.reports.text import grouped, plain, plural


def verdict(report: MigrateReport) -> Text:
    """The one-line result (``--quiet``)."""
    if report.matches:
        return Text(
            f"MATCH {plural(report.events, 'event')}, digest {report.target_digest}",
            style="bold green",
        )
    return Text("MISMATCH: the copy differs from the source", style="bold red")


def render_migrate(report: MigrateReport) -> Group:
    rows: list[list[str | Text]] = [
        ["events in the source", grouped(report.events)],
        ["copied by this run", grouped(report.copied)],
        ["resumed after source notification", grouped(report.resumed_from)],
        ["tracking records copied", grouped(report.tracking_records)],
        ["aggregate snapshots copied", grouped(report.aggregate_snapshots)],
        ["event stream SHA-256, source", report.source_digest],
        ["event stream SHA-256, target", report.target_digest],
        ["elapsed", f"{report.elapsed:.2f} s"],
    ]
    table = FigureTable(
        [Col("measure", "key"), Col("")],
        rows,
        title=plain(f"migrate {report.source} -> {report.target}"),
        show_header=False,
    )
    checks: list[list[str | Text]] = []
    for p in report.projections:
        status = Text("MATCH", style="green") if p.matches else Text("DIFFERS", style="red")
        checks.append([p.name, p.source_checksum, p.target_checksum, status])
    for name in report.not_checked:
        checks.append([name, "-", "-", Text("NOT CHECKED (code not installed)")])
    columns = [Col("projection", "key"), Col("source checksum"), Col("target checksum")]
    checks_table = FigureTable(
        [*columns, Col("status", "word")],
        checks,
        title="projections: source (caught up) vs target (rebuilt)",
    )
    return Group(table, checks_table, verdict(report))
