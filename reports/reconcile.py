"""The before/after report of ``reconcile``."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from eventfold.application.proving.reconcile import ReconcileReport
from eventfold.reports.text import command_line, plain
from eventfold.reports.verify import render_verify, verdict


def render_reconcile(report: ReconcileReport, store_options: Sequence[str] = ()) -> Group:
    parts: list[RenderableType] = []
    if report.gaps:
        gaps = Table(
            title=f"gaps: {len(report.gaps):,} runs of missing events", title_justify="left"
        )
        for column in ("first line", "last line", "events"):
            gaps.add_column(column, justify="right")
        for gap in report.gaps[:20]:
            gaps.add_row(f"{gap.first_line:,}", f"{gap.last_line:,}", f"{gap.events:,}")
        if len(report.gaps) > 20:
            gaps.caption = f"{len(report.gaps) - 20:,} more: --json lists them all"
        parts.append(gaps)
    if report.dry_run and report.plan:
        plan = Table(title="would replay, in this order (first 20)", title_justify="left")
        for column in ("id", "category", "value", "timestamp", "line"):
            plan.add_column(column, justify="right" if column == "line" else "left")
        for p in report.plan:
            plan.add_row(
                plain(p["id"]),
                plain(p["category"]),
                p["value"],
                p["timestamp"] or "-",
                f"{p['line']:,}",
            )
        parts.append(plan)
    final = report.after or report.before
    if not final.matches:
        parts.append(render_verify(final, store_options=store_options))
    parts.append(_summary(report, store_options))
    return Group(*parts)


def _summary(report: ReconcileReport, store_options: Sequence[str]) -> Panel:
    r = report.replay
    lines = [
        plain(f"source {report.source}"),
        Text("before: ") + verdict(report.before),
        plain(
            f"found {report.missing:,} missing events in {len(report.gaps):,} "
            + ("gap" if len(report.gaps) == 1 else "gaps")
        ),
    ]
    if report.dry_run:
        lines.append(plain(f"dry run: would replay {report.missing:,} events; nothing written"))
    elif r is not None:
        lines.append(
            plain(
                f"replayed {r.ingested:,} (duplicates {r.duplicates:,}, "
                f"conflicts {r.conflicts:,}, invalid {r.invalid:,}) "
                f"in {report.elapsed:.2f} s"
            )
        )
    else:
        lines.append(plain("nothing to replay"))
    if report.after is not None:
        lines.append(Text("after:  ") + verdict(report.after))
    if report.caught_up:
        lines.append(plain(f"also caught up: {', '.join(report.caught_up)}"))
    lines += _unresolved(report, store_options)
    return Panel(
        Text("\n").join(lines),
        title="reconcile",
        expand=False,
        border_style="green" if report.matches else "red",
    )


def _unresolved(report: ReconcileReport, store_options: Sequence[str]) -> list[Text]:
    """What reconcile did not do (it only adds missing events), and the next step."""
    left = report.unresolved()
    if left is None:
        return []
    lines = [
        plain(
            f"not done: {left['conflicting_events']:,} conflicting events (the store and the "
            f"source disagree), {left['extra_events']:,} extra and "
            f"{left['duplicated_events']:,} recorded twice stay as they are: reconcile only "
            "adds what is missing and never changes a recorded event",
            style="yellow",
        )
    ]
    if left["conflicting_ids"]:
        more = left["conflicting_events"] - len(left["conflicting_ids"])
        ids = ", ".join(left["conflicting_ids"]) + (f" and {more:,} more" if more else "")
        lines.append(plain(f"conflicting ids: {ids}"))
    inspect = command_line("verify", "--source", report.source, *store_options)
    lines.append(
        plain(
            f"next: inspect them with {inspect} (both versions, with their lines) and decide "
            "which side is right: correct a wrong source; recorded events are never "
            "rewritten, so if the store is wrong, ingest the right source into a new store"
        )
    )
    return lines
