"""The before/after report of ``reconcile``."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from eventfold.application.proving.reconcile import ReconcileReport
from eventfold.reports.text import plain
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
    parts.append(_summary(report))
    return Group(*parts)


def _summary(report: ReconcileReport) -> Panel:
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
    final = report.after
    if final is not None and not final.matches and final.events is not None:
        e = final.events
        lines.append(
            plain(
                f"still differing because the store has {e.extra_count:,} events "
                f"not in this source and {e.conflicting_count:,} conflicting "
                "(reconcile only adds what is missing)"
            )
        )
    return Panel(
        Text("\n").join(lines),
        title="reconcile",
        expand=False,
        border_style="green" if report.matches else "red",
    )
