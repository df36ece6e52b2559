"""The diff report of ``verify`` (and of ``reconcile``'s before and after).

Readable without colour: every status is a word (MATCH, MISSING, EXTRA,
CHANGED) and every delta carries its sign; colour only repeats it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from eventfold.application.proving.verify import VerifyReport
from eventfold.reports.text import command_line, plain

STYLES = {"match": "green", "missing": "red", "extra": "magenta", "changed": "yellow"}


def render_verify(
    report: VerifyReport, *, show_all: bool = False, store_options: Sequence[str] = ()
) -> Group:
    """The diff report; ``store_options`` (``--store DIR`` ...) go into the commands it suggests."""
    parts: list[RenderableType] = []
    rows = report.compared if show_all else report.differences
    if rows:
        parts.append(_table(rows, "categories" if show_all else "differing categories"))
    if report.events is not None and not report.matches:
        parts.extend(_event_tables(report))
    parts.append(_summary(report, store_options))
    return Group(*parts)


def verdict(report: VerifyReport) -> Text:
    """The one-line result (``--quiet``)."""
    if report.matches:
        return Text(f"MATCH {report.actual_checksum}", style="bold green")
    if report.checksum_only:
        return Text(
            f"MISMATCH: the checksum differs (expected {report.expected_checksum}, "
            f"actual {report.actual_checksum})",
            style="bold red",
        )
    return Text(
        f"MISMATCH: {len(report.differences)} categories differ "
        f"(expected {report.expected_checksum}, actual {report.actual_checksum})",
        style="bold red",
    )


def _table(rows: list[Any], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("category")
    table.add_column("status")
    for column in (
        "expected count",
        "expected total",
        "actual count",
        "actual total",
        "Δ count",
        "Δ total",
    ):
        table.add_column(column, justify="right")
    for d in rows:
        exp, act, delta = d.expected, d.actual, d.delta
        table.add_row(
            plain(d.category),
            Text(d.status.upper(), style=STYLES[d.status]),
            "-" if exp is None else f"{exp['count']:,}",
            "-" if exp is None else exp["total"],
            "-" if act is None else f"{act['count']:,}",
            "-" if act is None else act["total"],
            _signed(str(delta["count"])),
            _signed(delta["total"]),
        )
    return table


def _signed(value: str) -> str:
    return value if value.startswith("-") or value == "0" else "+" + value


def _event_tables(report: VerifyReport) -> list[RenderableType]:
    e = report.events
    assert e is not None
    parts: list[RenderableType] = []
    for title, count, rows, keys in (
        (
            "in the source, not in the store (missing)",
            e.missing_count,
            e.missing,
            ("id", "category", "value", "line"),
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
        caption = f"first {len(rows)} shown" if count > len(rows) else None
        table = Table(title=f"{title}: {count:,}", title_justify="left", caption=caption)
        for key in keys:
            table.add_column(key, justify="right" if key == "line" else "left")
        for row in rows:
            table.add_row(*(plain(str(row[k])) for k in keys))
        parts.append(table)
    if e.conflicting_count:
        table = Table(
            title=f"same id, different content (conflicting): {e.conflicting_count:,}",
            title_justify="left",
        )
        for key in ("id", "source says", "store says"):
            table.add_column(key)
        for row in e.conflicting:
            s, t = row["source"], row["store"]
            table.add_row(
                plain(str(row["id"])),
                plain(f"{s['category']}  {s['value']}  line {s['line']}"),
                plain(f"{t['category']}  {t['value']}  line {t['line']}"),
            )
        parts.append(table)
    return parts


def _summary(report: VerifyReport, store_options: Sequence[str]) -> Panel:
    differing = len(report.differences)
    compared = (
        plain(
            "only a checksum was given: categories cannot be compared "
            "(--expected FILE or --source can)"
        )
        if report.checksum_only
        else plain(
            f"categories compared: {len(report.compared):,}; matching "
            f"{len(report.compared) - differing:,}; differing {differing:,}"
        )
    )
    lines = [
        verdict(report),
        compared,
        plain(f"expected checksum: {report.expected_checksum}"),
        plain(f"actual checksum:   {report.actual_checksum}"),
        plain(
            f"projection {report.projection.projection} at position "
            f"{report.projection.position:,} (caught up {report.projection.events_applied:,} "
            "events)"
        ),
    ]
    if not any(d.actual for d in report.compared):
        lines.append(plain("the store holds no events", style="bold"))
    if report.source is not None and report.events is not None:
        e = report.events
        lines.append(
            plain(
                f"source {report.source}: {e.missing_count:,} events missing from "
                f"the store, {e.extra_count:,} extra, {e.conflicting_count:,} "
                "conflicting"
                + (f", {e.duplicated_count:,} recorded twice" if e.duplicated_count else "")
            )
        )
        if e.missing_count:
            suggested = command_line("reconcile", report.source, *store_options)
            lines.append(plain(f"{suggested} replays what is missing"))
    return Panel(
        Text("\n").join(lines),
        title="verify",
        expand=False,
        border_style="green" if report.matches else "red",
    )
