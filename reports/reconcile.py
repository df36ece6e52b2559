"""The before/after report of ``reconcile``."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.text import Text

from eventfold.application.proving.reconcile import ReconcileReport
from eventfold.application.sources import SourceList
from eventfold.reports.fold import glued
from eventfold.reports.layout import Col, FigureTable, Summary
from eventfold.reports.suggestions import joined, unresolved_steps
from eventfold.reports.text import grouped, plain, plural
from eventfold.reports.verify import render_verify, shown, verdict


def render_reconcile(
    report: ReconcileReport,
    store_options: Sequence[str] = (),
    asked: SourceList | None = None,
) -> Group:
    """The before/after report; ``store_options`` and the sources as given (``asked``;
    None: each file read) go into the commands it suggests."""
    parts: list[RenderableType] = []
    limit = report.limit or len(report.gaps)
    many = len(report.sources) > 1  # then each row names its file
    if report.gaps:
        gaps = report.gaps[:limit]
        named = [Col("source", "text")] if many else []
        parts.append(
            FigureTable(
                [*named, Col("first line"), Col("last line"), Col("events")],
                [
                    [
                        *([g.source] if many else []),
                        *map(grouped, (g.first_line, g.last_line, g.events)),
                    ]
                    for g in gaps
                ],
                title=f"gaps: {plural(len(report.gaps), 'run')} of missing events",
                caption=shown(len(gaps), len(report.gaps)),
            )
        )
    if report.dry_run and report.plan:
        columns = [
            Col("id", "key"),
            Col("category", "text"),
            Col("value"),
            Col("timestamp", "word"),
            *([Col("source", "text")] if many else []),
            Col("line"),
        ]
        rows: list[list[str | Text]] = [
            [p["id"], p["category"], grouped(p["value"]), p["timestamp"] or "-"]
            + ([p["source"]] if many else [])
            + [grouped(p["line"])]
            for p in report.plan
        ]
        parts.append(
            FigureTable(
                columns,
                rows,
                title="would replay, in this order",
                caption=shown(len(report.plan), report.missing),
            )
        )
    final = report.after or report.before
    if not final.matches:
        parts.append(render_verify(final, store_options=store_options, asked=asked))
    parts.append(_summary(report, store_options, asked))
    return Group(*parts)


def _summary(
    report: ReconcileReport, store_options: Sequence[str], asked: SourceList | None
) -> Summary:
    r = report.replay
    lines = [
        plain(_sources(report.sources, asked)),
        Text("before: ") + verdict(report.before),
        plain(
            f"found {plural(report.missing, 'missing event')} in {plural(len(report.gaps), 'gap')}"
        ),
    ]
    if report.dry_run:
        lines.append(
            plain(f"dry run: would replay {plural(report.missing, 'event')}; nothing written")
        )
    elif r is not None:
        lines.append(
            plain(
                f"replayed {r.ingested:,} (duplicates {r.duplicates:,}, "
                f"conflicts {r.conflicts:,}, invalid {r.invalid:,}) "
                f"in {glued(f'{report.elapsed:.2f}', 's')}"
            )
        )
    else:
        lines.append(plain("nothing to replay"))
    if report.after is not None:
        lines.append(Text("after:  ") + verdict(report.after))
    if report.caught_up:
        lines.append(plain(f"also caught up: {', '.join(report.caught_up)}"))
    lines += _unresolved(report, store_options, asked)
    return Summary(lines, title="reconcile", border_style="green" if report.matches else "red")


def _unresolved(
    report: ReconcileReport, store_options: Sequence[str], asked: SourceList | None
) -> list[Text]:
    """What reconcile did not do (it only adds missing events), and the next step."""
    steps = unresolved_steps(report, store_options, asked=asked)
    return [plain(joined(s), style="yellow" if i == 0 else "") for i, s in enumerate(steps)]


def _sources(names: list[str], asked: SourceList | None) -> str:
    """What was read: ``source NAME``, or ``N sources, as given: SOURCE... OPTIONS``
    (without ``asked``: ``N sources: NAME, NAME, ...``)."""
    if len(names) == 1:
        return f"source {names[0]}"
    if asked is not None:
        return f"{len(names):,} sources, as given: {shlex.join(asked.arguments())}"
    return f"{len(names):,} sources: " + ", ".join(names)
