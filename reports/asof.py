"""Reports of a state as of a point (``rebuild --as-of``) and of ``eventfold diff``."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from eventfold.application.projecting.asof import AsOf
from eventfold.application.proving.between import StateDiff
from eventfold.reports.layout import Summary
from eventfold.reports.projection import state_table
from eventfold.reports.text import plain, plural, visible
from eventfold.reports.verify import difference_table


def as_of_lines(at: AsOf) -> list[str]:
    """What a state as of a point reads: its point, the events counted and left out."""
    lines = [f"as of {at.point.describe()}: {plural(at.events_applied, 'event')} counted"]
    if at.left_out:
        lines.append(f"{plural(at.left_out, 'event')} after the point left out")
    if at.without_time:
        lines.append(f"{plural(at.without_time, 'event')} without a timestamp left out")
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
    """The keys that changed from A to B (Δ = B minus A), and both points."""
    parts: list[RenderableType] = []
    if diff.differences:
        title = f"{plural(len(diff.differences), 'row')} changed"
        parts.append(
            difference_table(diff.differences, title, diff.key_names, sides=("from", "to"))
        )
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
    if diff.exported is not None:
        lines.append(
            plain(f"every change written to {diff.exported[0]}: {plural(diff.exported[1], 'row')}")
        )
    parts.append(Summary(lines, title=visible(f"diff {diff.projection}")))
    return Group(*parts)
