"""``eventfold diff A B``: how a projection's state changed between two points.

Each point is read as ``asof.py`` reads it (a position, a time, a generation,
``now``); the two states are compared row by row by the projection's keys, Δ
being B minus A. With two positions, the deltas are exactly the events between
them, and the reconstructions made or retired between them (for a projection that
folds them). A reconstruction that counts at one point and not at the other is
named on each changed row of its categories: the row changed, in part, because of
it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eventfold.application.app import Eventfold
from eventfold.application.progress import Progress
from eventfold.application.projecting.asof import AsOf, Point, state_as_of
from eventfold.application.proving.export import Export
from eventfold.application.proving.keyed import Difference, compare
from eventfold.application.reconstructing.plan import Reconstruction
from eventfold.projections.base import Key, Projection


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

    @property
    def reconstructions(self) -> list[Reconstruction]:
        """The reconstructions that count at one point and not at the other, in the order
        they were made."""
        at_a = {r.ident for r in self.a.reconstructions}
        at_b = {r.ident for r in self.b.reconstructions}
        either = {r.ident: r for r in [*self.a.reconstructions, *self.b.reconstructions]}
        return sorted(
            (r for ident, r in either.items() if (ident in at_a) != (ident in at_b)),
            key=lambda r: r.made_at,
        )

    def marks(self) -> dict[Key, list[str]]:
        """The changed rows of a category that one of ``reconstructions`` has a part in,
        with the ids of those reconstructions (none for a projection without a
        ``category`` key)."""
        if "category" not in self.key_names:
            return {}
        at = self.key_names.index("category")
        changed = self.reconstructions
        found: dict[Key, list[str]] = {}
        for d in self.differences:
            ids = [r.ident for r in changed if d.key[at] in r.parts]
            if ids:
                found[d.key] = ids
        return found

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document of ``diff`` (keys only ever added)."""
        marks = self.marks()
        at_a = {r.ident for r in self.a.reconstructions}
        return {
            "projection": self.projection,
            "from": self.a.to_json(),
            "to": self.b.to_json(),
            "keys": list(self.key_names),
            "rows_compared": len(self.compared),
            "changed": len(self.differences),
            "differences": [
                d.to_json() | {"reconstructions": marks.get(d.key, [])} for d in self.differences
            ],
            "export": None
            if self.exported is None
            else {"path": self.exported[0], "rows": self.exported[1]},
            "reconstructions": [
                {
                    "id": r.ident,
                    "start": r.start.isoformat(),
                    "end": r.end.isoformat(),
                    "from": r.ident in at_a,
                    "to": r.ident not in at_a,
                }
                for r in self.reconstructions
            ],
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
