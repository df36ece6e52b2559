"""The report of ``migrate``: what was copied, and the proof that the copy is whole."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from eventfold.application.admin.migrate import MigrateReport
from eventfold.reports.text import plain


def verdict(report: MigrateReport) -> Text:
    """The one-line result (``--quiet``)."""
    if report.matches:
        return Text(
            f"MATCH {report.events:,} events, digest {report.target_digest[:16]}",
            style="bold green",
        )
    return Text("MISMATCH: the copy differs from the source", style="bold red")


def render_migrate(report: MigrateReport) -> Group:
    table = Table(
        title=plain(f"migrate {report.source} -> {report.target}"),
        title_justify="left",
        show_header=False,
    )
    table.add_column("measure")
    table.add_column("value", justify="right")
    rows = [
        ("events in the source", f"{report.events:,}"),
        ("copied by this run", f"{report.copied:,}"),
        ("resumed after source notification", f"{report.resumed_from:,}"),
        ("tracking records copied", f"{report.tracking_records:,}"),
        ("aggregate snapshots copied", f"{report.aggregate_snapshots:,}"),
        ("event stream SHA-256, source", report.source_digest[:16]),
        ("event stream SHA-256, target", report.target_digest[:16]),
        ("elapsed", f"{report.elapsed:.2f} s"),
    ]
    for label, value in rows:
        table.add_row(label, value)
    checks = Table(
        title="projections: source (caught up) vs target (rebuilt)", title_justify="left"
    )
    for column in ("projection", "source checksum", "target checksum", "status"):
        checks.add_column(column)
    for p in report.projections:
        status = Text("MATCH", style="green") if p.matches else Text("DIFFERS", style="red")
        checks.add_row(plain(p.name), p.source_checksum[:16], p.target_checksum[:16], status)
    for name in report.not_checked:
        checks.add_row(plain(name), "-", "-", Text("NOT CHECKED (code not installed)"))
    return Group(table, checks, verdict(report))
