"""The HTML report of ``reconcile`` (``--html FILE``), from the blocks of ``html.py``.

The verdict after the replay comes first (before it, on a dry run or when
nothing was missing), then what reconcile found and did, the runs of missing
events, on a dry run the replay plan, and when the store still differs, the
differing categories, event tables and what to run next.
"""

from __future__ import annotations

from eventfold.application.proving.reconcile import ReconcileReport
from eventfold.reports.html import (
    ReportContext,
    category_section,
    context_rows,
    escape,
    event_sections,
    event_table,
    facts_list,
    iso_utc,
    next_section,
    page,
    verdict_section,
    verify_rows,
)
from eventfold.reports.suggestions import unresolved_steps
from eventfold.reports.text import grouped

SHOWN = 20  # gaps listed; the plan holds the report's first replays


def render_reconcile_html(report: ReconcileReport, context: ReportContext) -> str:
    """The whole page of a reconcile report, as text to write to a file."""
    final = report.after or report.before
    word = "MATCH" if final.matches else "MISMATCH"
    title = f"eventfold reconcile: {word} ({final.projection.projection})"
    body = [
        "<header>",
        "<h1>eventfold reconcile</h1>",
        verdict_section(final),
        facts_list(
            context_rows(context, report.source) + _reconcile_rows(report) + verify_rows(final)
        ),
        "</header>",
        "<main>",
        *_gaps(report),
        *_plan(report),
    ]
    if not final.matches:
        body += [category_section(final, False), *event_sections(final.to_json())]
    body += [
        next_section(
            final,
            context,
            unresolved_steps(report, context.store_options, context.program, context.asked),
        ),
        "</main>",
        f"<footer>Made by eventfold at {escape(iso_utc(context.made_at))}.</footer>",
    ]
    return page(title, body)


def _reconcile_rows(report: ReconcileReport) -> list[tuple[str, str]]:
    before = "MATCH" if report.before.matches else "MISMATCH"
    gaps = len(report.gaps)
    rows = [
        (
            "before",
            f"{before} (actual checksum <code>{escape(report.before.actual_checksum)}</code>)",
        ),
        (
            "found",
            f"{grouped(report.missing)} missing events in {grouped(gaps)} "
            + ("gap" if gaps == 1 else "gaps"),
        ),
    ]
    r = report.replay
    if report.dry_run:
        done = f"dry run: would replay {grouped(report.missing)} events; nothing written"
    elif r is not None:
        done = (
            f"replayed {grouped(r.ingested)} (duplicates {grouped(r.duplicates)}, "
            f"conflicts {grouped(r.conflicts)}, invalid {grouped(r.invalid)})"
        )
    else:
        done = "nothing to replay"
    rows.append(("replay", escape(done)))
    if report.after is not None:
        rows.append(("after", "MATCH" if report.after.matches else "MISMATCH"))
    if report.caught_up:
        rows.append(("also caught up", escape(", ".join(report.caught_up))))
    return rows


def _gaps(report: ReconcileReport) -> list[str]:
    if not report.gaps:
        return []
    many = len(report.sources) > 1  # then each row names its file
    rows = [
        [(g.source, False)] * many
        + [(str(g.first_line), True), (str(g.last_line), True), (str(g.events), True)]
        for g in report.gaps[:SHOWN]
    ]
    keys = ("source",) * many + ("first line", "last line", "events")
    return [event_table("gaps", "Runs of missing events (gaps)", len(report.gaps), keys, rows)]


def _plan(report: ReconcileReport) -> list[str]:
    if not (report.dry_run and report.plan):
        return []
    many = len(report.sources) > 1  # then each row names its file
    keys = ("id", "category", "value", "timestamp") + ("source",) * many + ("line",)
    rows = [
        [
            (str(p["id"]), False),
            (str(p["category"]), False),
            (str(p["value"]), True),
            (p["timestamp"] or "-", False),
            *[(str(p["source"]), False)] * many,
            (str(p["line"]), True),
        ]
        for p in report.plan
    ]
    title = "Would replay, in this order"
    return [event_table("plan", title, report.missing, keys, rows)]
