"""``eventfold diff A B``: how a projection's state changed between two points.

Each point is read as ``asof.py`` reads it (a position, a time, a generation,
``now``); the two states are compared row by row by the projection's keys, Δ
being B minus A. With two positions, the deltas are exactly the events between
them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eventfold.application.app import Eventfold
from eventfold.application.progress import Progress
from eventfold.application.projecting.asof import AsOf, Point, state_as_of
from eventfold.application.proving.export import Export
from eventfold.application.proving.keyed import Difference, compare
from eventfold.projections.base import Projection


@dataclass
class StateDiff:
    """The states at ``a`` and ``b`` and every key whose row differs."""

    projection: str
    a: AsOf
    b: AsOf
    key_names: tuple[str, ...]
    compared: list[Difference] = field(default_factory=list)
    exported: tuple[str, int] | None = None  # (path, rows) with --export

    @property
    def differences(self) -> list[Difference]:
        return [d for d in self.compared if d.status != "match"]

    def to_json(self) -> dict[str, Any]:
        return {
            "projection": self.projection,
            "from": self.a.to_json(),
            "to": self.b.to_json(),
            "keys": list(self.key_names),
            "rows_compared": len(self.compared),
            "changed": len(self.differences),
            "differences": [d.to_json() for d in self.differences],
            "export": None
            if self.exported is None
            else {"path": self.exported[0], "rows": self.exported[1]},
        }


def diff_points(
    app: Eventfold,
    store_dir: str,
    projection: Projection[Any],
    a: Point,
    b: Point,
    *,
    export: str | None = None,
    progress: Progress | None = None,
) -> StateDiff:
    """The change of ``projection``'s state from ``a`` to ``b`` (``export``: a file that
    gets every changed key)."""
    sink = None if export is None else Export(export, projection.keys, projection.measures)
    try:
        first = state_as_of(app, store_dir, projection, a, progress)
        second = state_as_of(app, store_dir, projection, b, progress)
        diff = StateDiff(projection.name, first, second, projection.keys)
        diff.compared = compare(
            projection, projection.rows(first.canonical), projection.rows(second.canonical)
        )
        if sink is not None:
            for difference in diff.differences:
                sink.key(difference)
            sink.finish()
            diff.exported = (sink.path, sink.rows)
    except BaseException:
        if sink is not None:
            sink.abandon()
        raise
    return diff
