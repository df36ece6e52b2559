"""The reconstructions of a store as of one position, and the raw events they hold out.

A report that reads the raw events up to a position (``events``, ``explain``)
tells which of them are not in ``category_totals``' total as of that position:
a raw event is out of it when a reconstruction standing as of the position has
a part for its category and a period that covers when it occurred, whether the
event was in the store when the reconstruction was made (it replaced it) or
was recorded later (held out since). At most one standing reconstruction
covers a category at a time (an overlapping one is refused), so each such
event has one reconstruction to name. This is the fold's own rule
(``plan.py``) seen from the raw events.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from eventfold.application.reconstructing.plan import NEVER, Covering, Plan, Reconstruction
from eventfold.projections.base import RecordedFact


class Standing:
    """The reconstructions made at or before ``position``, in the order they were made;
    a retirement after ``position`` is not seen (the reconstruction stands as of it)."""

    def __init__(self, position: int, reconstructions: list[Reconstruction]) -> None:
        self.position = position
        self.reconstructions = reconstructions
        self._standing = Covering(r for r in reconstructions if r.stands_at(position))

    def __bool__(self) -> bool:
        """Whether any reconstruction stands as of the position."""
        return bool(self._standing.categories())

    def of(self, category: str) -> list[Reconstruction]:
        """Every reconstruction (standing or retired) with a part for ``category``."""
        return [r for r in self.reconstructions if category in r.parts]

    def holding(self, fact: RecordedFact) -> Reconstruction | None:
        """The standing reconstruction that ``fact`` (a raw event recorded at or before the
        position) is held out of the total by, or None when the total counts it."""
        return next(self._standing.covering(fact.category, fact.occurred_at), None)


def standing_as_of(plan: Plan, position: int) -> Standing:
    """``plan``'s reconstructions as ``Standing`` sees them at ``position``."""
    return Standing(
        position, [_as_of(r, position) for r in plan.reconstructions if r.made_at <= position]
    )


def _as_of(r: Reconstruction, position: int) -> Reconstruction:
    if r.retired_at <= position:
        return r
    parts = {
        name: dataclasses.replace(p, held_count=0, held_total=Decimal(0))
        for name, p in r.parts.items()
    }
    return dataclasses.replace(
        r, parts=parts, retired_at=NEVER, retired_on=None, retired_by="", retire_note=""
    )
