"""Reports of ``rebuild``, ``catchup`` and ``snapshots``: the state, then a summary panel."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from eventfold.application.admin.status import StoreStatus
from eventfold.application.projecting import ProjectionReport
from eventfold.projections.snapshots import SnapshotInfo
from eventfold.reports.text import plain

MAX_ROWS = 200


def render_projection(report: ProjectionReport) -> Group:
    parts: list[RenderableType] = [state_table(report.projection, report.canonical)]
    for skipped in report.skipped:
        parts.append(plain(f"skipped snapshot {skipped.path}: {skipped.reason}", style="yellow"))
    parts.append(_summary(report))
    return Group(*parts)


def state_table(projection: str, canonical: dict[str, Any]) -> Table:
    """The canonical state as a table: categories (and hours) with count and total."""
    table = Table(title=plain(projection), title_justify="left")
    rows: list[tuple[tuple[str, ...], Any]]
    if "categories" in canonical:
        rows = [((name,), v) for name, v in sorted(canonical["categories"].items())]
        table.add_column("category")
    else:
        rows = [
            ((name, hour), v)
            for name, hours in sorted(canonical.get("hours", {}).items())
            for hour, v in sorted(hours.items())
        ]
        table.add_column("category")
        table.add_column("hour (UTC)")
    table.add_column("count", justify="right")
    table.add_column("total", justify="right")
    for key, value in rows[:MAX_ROWS]:
        table.add_row(*(plain(k) for k in key), f"{value['count']:,}", value["total"])
    if len(rows) > MAX_ROWS:
        table.caption = f"{len(rows) - MAX_ROWS:,} more rows: use --json for all"
    if not rows:
        table.caption = "no events applied"
    return table


def _summary(report: ProjectionReport) -> Panel:
    lines = [
        f"{report.mode}: generation {report.generation}, "
        f"{report.workers} worker{'s' if report.workers > 1 else ''}",
        f"position {report.position:,} (from {report.from_position:,}); "
        f"{events(report.events_applied)} applied in {report.elapsed:.2f} s",
        f"checksum {report.checksum}",
        "snapshot used: " + _snapshot(report.snapshot_used),
        "snapshot written: " + _snapshot(report.snapshot_written),
    ]
    if report.reason:
        lines.append(f"rebuilt from scratch: {report.reason}")
    body = Text("\n").join(plain(line) for line in lines)
    return Panel(body, title=plain(report.projection), expand=False)


def _snapshot(info: SnapshotInfo | None) -> str:
    if info is None:
        return "none"
    return f"{info.path} (position {info.position:,})"


def render_snapshots(
    projection: str, generation: str | None, rows: list[tuple[str, SnapshotInfo | None, str | None]]
) -> Table:
    table = Table(
        title=plain(f"{projection} snapshots ({generation or 'no rebuild yet'})"),
        title_justify="left",
    )
    for column in ("position", "created", "events applied", "checksum", "file", "status"):
        table.add_column(column, justify="right" if column == "position" else "left")
    for path, info, problem in rows:
        if info is None:
            table.add_row("", "", "", "", plain(path), Text(f"unusable: {problem}", style="red"))
        else:
            table.add_row(
                f"{info.position:,}",
                info.created,
                f"{info.events_applied:,}",
                info.checksum[:16] + "…",
                plain(path),
                Text("ok", style="green"),
            )
    return table


def follow_line(report: ProjectionReport) -> Text:
    """One line of a running ``follow``: where it stands, since when."""
    return plain(
        f"following {report.projection}: position {report.position:,}, "
        f"{events(report.events_applied)} applied in {report.elapsed:,.0f} s, "
        f"checksum {report.checksum[:16]}… (Ctrl-C stops)"
    )


def events(count: int) -> str:
    """``1 event``, ``50 events``."""
    return f"{count:,} event{'' if count == 1 else 's'}"


def render_status(status: StoreStatus) -> Group:
    title = f"store {status.path}"
    if not status.files_are_the_store:
        title += f" (the events are in {status.location}; files here are this machine's)"
    store = Table(title=plain(title), title_justify="left", show_header=False)
    store.add_column("measure")
    store.add_column("value", justify="right")
    store.add_row("events", f"{status.events:,}")
    store.add_row("last notification id", f"{status.last_notification_id:,}")
    store.add_row("files", f"{status.files:,}")
    store.add_row("bytes", f"{status.bytes:,}")
    projections = Table(title="projections", title_justify="left")
    for column in ("projection", "generation", "position", "lag", "snapshots", "note"):
        projections.add_column(column, justify="right" if column in ("position", "lag") else "left")
    for p in status.projections:
        valid = sum(1 for s in p.snapshots if s.get("valid"))
        projections.add_row(
            plain(p.name),
            p.generation or "-",
            "-" if p.position is None else f"{p.position:,}",
            "-" if p.lag is None else f"{p.lag:,}",
            f"{valid} valid of {len(p.snapshots)}",
            plain(p.note),
        )
    if not status.projections:
        projections.caption = "none yet: eventfold rebuild builds one"
    return Group(store, projections)
