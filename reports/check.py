"""The report of ``eventfold check``."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text


def render_check(report: Any) -> Group:
    """Rich renderables for a StoreReport: one row per log, then any damage."""
    table = Table(title=Text(f"store {report.path}"), title_justify="left")
    for column in ("log", "segments", "commits", "events", "torn tail", "index", "status"):
        numeric = column in ("segments", "commits", "events")
        table.add_column(column, justify="right" if numeric else "left")
    details: list[Text] = []
    for log in report.logs:
        tail = log.torn_tail
        tail_text = Text(f"{tail.length} bytes", style="yellow") if tail else Text("none")
        if tail:
            details.append(
                Text(
                    f"torn tail: {tail.file}: byte offset {tail.offset}: {tail.length} bytes "
                    "of an unacknowledged commit (dropped on the next write, or --repair)",
                    style="yellow",
                )
            )
        for p in log.problems:
            details.append(
                Text(f"DAMAGED: {p.file}: byte offset {p.offset}: {p.reason}", style="bold red")
            )
        for note in log.repairs:
            details.append(Text(f"repaired: {note}", style="green"))
        if log.problems:
            status = Text("DAMAGED", style="bold red")
        elif not log.sound:
            status = Text("INDEX DAMAGED", style="bold red")
        else:
            status = Text("ok" + (" (repaired)" if log.repairs else ""), style="green")
        table.add_row(
            Text(log.name),
            str(log.segments),
            str(log.commits),
            str(log.events),
            tail_text,
            Text(log.index),
            status,
        )
    if not report.logs:
        table.add_row(Text("(no logs)"), "", "", "", "", "", Text("ok"))
    parts: list[Any] = [table]
    if report.derived:
        derived = Table(title="derived from the log", title_justify="left")
        for column in ("kind", "path", "status"):
            derived.add_column(column)
        for d in report.derived:
            style = {"damaged": "bold red", "repaired": "green"}.get(d.status, "")
            derived.add_row(
                d.kind,
                Text(d.path),
                Text(d.status.upper() if d.status == "damaged" else d.status, style=style),
            )
            for p in d.problems:
                details.append(
                    Text(
                        f"DAMAGED {d.kind}: {p.file}: byte offset {p.offset}: {p.reason}",
                        style="bold red",
                    )
                )
        parts.append(derived)
    return Group(*parts, *details)
