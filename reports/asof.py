"""Reports of a state as of a point (``rebuild --as-of``) and of ``eventfold diff``."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from eventfold.application.projecting.asof import AsOf
from eventfold.application.proving.between import StateDiff
from eventfold.reports.layout import Col, FigureTable, Summary
from eventfold.reports.projection import state_table
from eventfold.reports.text import plain, plural, visible
from eventfold.reports.verify import difference_table


def as_of_lines(at: AsOf) -> list[str]:
    """What a state as of a point reads: its point, the events counted and left out, the
    reconstructions whose summaries it counts."""
    lines = [f"as of {at.point.describe()}: {plural(at.events_applied, 'event')} counted"]
    if at.point.kind == "recorded":
        lines.append(f"the store up to position {at.position:,}, as it was recorded by the time")
    if at.left_out:
        lines.append(f"{plural(at.left_out, 'event')} after the point left out")
    if at.without_time:
        lines.append(f"{plural(at.without_time, 'event')} without a timestamp left out")
    if at.reconstructions:
        ids = ", ".join(r.ident for r in at.reconstructions)
        lines.append(f"summaries counted for the periods of {ids} (eventfold reconstruct --list)")
    if at.stood_for:
        lines.append(
            f"{plural(at.stood_for, 'raw event')} of those periods left out: "
            "the summaries stand for them"
        )
    if at.snapshot is not None:
        lines.append(f"from the snapshot at position {at.snapshot.position:,}")
    lines.append(f"checksum {at.checksum}")
    return lines


def render_as_of(at: AsOf, figures: dict[str, dict[str, Any]] | None) -> RenderableType:
    """The state as ``rebuild`` shows it, then what it is as of; nothing was written."""
    lines = [
        *as_of_lines(at),
        "nothing written: the live projection and its generations are unchanged",
    ]
    return Group(
        state_table(at.projection, at.canonical, figures),
        Summary(
            [plain(line) for line in lines], title=visible(f"{at.projection} as of {at.point.text}")
        ),
    )


def render_diff(diff: StateDiff) -> RenderableType:
    """The keys that changed from A to B (Δ = B minus A), each row a reconstruction
    changed named beside it, and both points."""
    parts: list[RenderableType] = []
    if diff.differences:
        title = f"{plural(len(diff.differences), 'row')} changed"
        table = difference_table(diff.differences, title, diff.key_names, sides=("from", "to"))
        marks = diff.marks()
        if marks:
            table = FigureTable(
                [*table.columns, Col("reconstruction", "word")],
                [
                    [*row, ", ".join(marks.get(d.key, []))]
                    for row, d in zip(table.rows, diff.differences, strict=True)
                ],
                title=table.title,
            )
        parts.append(table)
    lines = [
        Text(
            f"{'NO CHANGE' if not diff.differences else 'CHANGED'}: "
            f"{plural(len(diff.differences), 'row')} of {len(diff.compared):,} "
            f"from {diff.a.point.text} to {diff.b.point.text}",
            style="bold",
        ),
        *(plain(f"from: {line}") for line in as_of_lines(diff.a)),
        *(plain(f"to: {line}") for line in as_of_lines(diff.b)),
    ]
    at_a = {r.ident for r in diff.a.reconstructions}
    for r in diff.reconstructions:
        at, not_at = (diff.a, diff.b) if r.ident in at_a else (diff.b, diff.a)
        lines.append(
            plain(
                f"{r.ident} ({r.start.isoformat()}/{r.end.isoformat()}) counts at "
                f"{at.point.text}, not at {not_at.point.text}: the changed rows of its "
                "categories are marked"
            )
        )
    if diff.exported is not None:
        lines.append(
            plain(f"every change written to {diff.exported[0]}: {plural(diff.exported[1], 'row')}")
        )
    parts.append(Summary(lines, title=visible(f"diff {diff.projection}")))
    return Group(*parts)
