"""What a verify's totals rest on when reconstructions stand: summaries, not raw events.

A projection that folds reconstructions counts, for each one standing at the
position compared, the summary instead of the raw events of its period. The
sources' expected state is read the same way (``reconstructed``): their events
in a standing period are set beside the summary rather than counted, and what
they hold there is kept, so the report can show how far the summary is from the
raw events the sources still have. Event by event, the store is still compared
with the sources whole: a held event is a recorded event.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from eventfold.application.proving.reference import ExpectedState
from eventfold.application.reconstructing.plan import Covering, Reconstruction
from eventfold.domain.model import EXACT, exact_add
from eventfold.projections.base import canonical_decimal


@dataclass
class RestingPart:
    """One category's part of one reconstruction in a verify: the summary's figures, and
    what the sources hold in its period (None without sources)."""

    reconstruction: str
    category: str
    count: int
    total: Decimal
    source_count: int | None = None
    source_total: Decimal | None = None

    @property
    def difference(self) -> Decimal | None:
        """The sources' total minus the summary's (None without sources)."""
        if self.source_total is None:
            return None
        return EXACT.subtract(self.source_total, self.total)

    def to_json(self) -> dict[str, Any]:
        return {
            "reconstruction": self.reconstruction,
            "category": self.category,
            "count": self.count,
            "total": canonical_decimal(self.total),
            "source_count": self.source_count,
            "source_total": None
            if self.source_total is None
            else canonical_decimal(self.source_total),
            "difference": None if (d := self.difference) is None else canonical_decimal(d),
        }


@dataclass
class Resting:
    """The reconstructions standing where a verify compared, and each category's part."""

    standing: list[Reconstruction] = field(default_factory=list)
    parts: list[RestingPart] = field(default_factory=list)
    # a window (``--since``/``--until`` over sources) compares raw events only: the standing
    # reconstructions whose period meets it, not counted on either side
    beside: list[Reconstruction] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.parts)

    def categories(self) -> dict[str, tuple[int, Decimal, list[str]]]:
        """Per category: the count and total its reconstructions stand for, and their ids."""
        found: dict[str, tuple[int, Decimal, list[str]]] = {}
        for p in self.parts:
            n, t, ids = found.get(p.category, (0, Decimal(0), []))
            found[p.category] = (n + p.count, exact_add(t, p.total), [*ids, p.reconstruction])
        return found

    @property
    def disagreeing(self) -> list[RestingPart]:
        """The parts whose sources hold raw events in the period, and other ones than the
        summary says (sources with none there lost them too: nothing to weigh)."""
        return [
            p
            for p in self.parts
            if p.source_count and (p.source_count != p.count or p.source_total != p.total)
        ]

    def to_json(self) -> list[dict[str, Any]]:
        """``--json`` ``reconstructions``: each standing one, and its categories' parts."""
        docs = []
        for r in self.standing:
            docs.append(
                {
                    "id": r.ident,
                    "start": r.start.isoformat(),
                    "end": r.end.isoformat(),
                    "summary": {"path": r.path, "sha256": r.digest},
                    "count": r.count,
                    "total": canonical_decimal(r.total),
                    "rows": [p.to_json() for p in self.parts if p.reconstruction == r.ident],
                }
            )
        return docs


def resting(standing: list[Reconstruction], until: datetime | None = None) -> Resting:
    """The parts of ``standing`` reconstructions; with ``until`` (an occurred time), of
    those whose period ends by then."""
    kept = [r for r in standing if until is None or r.end <= until]
    parts = [
        RestingPart(r.ident, name, p.count, p.total)
        for r in kept
        for name, p in sorted(r.parts.items())
    ]
    return Resting(kept, parts)


def reconstructed(state: ExpectedState, rest: Resting) -> ExpectedState:
    """The sources' expected state read as the projection reads the store: in each
    category, the events of a standing period set beside its summary (``rest``'s parts
    get what the sources hold there) and the summary counted instead. The records stay
    whole, for the comparison event by event."""
    if not rest.standing:
        return state
    by_key = {(p.reconstruction, p.category): p for p in rest.parts}
    for part in rest.parts:
        part.source_count, part.source_total = 0, Decimal(0)
    covering = Covering(rest.standing)
    totals = {name: list(entry) for name, entry in state.totals.items()}
    for record in state.records.values():
        r = next(covering.covering(record.category, record.occurred_at), None)
        if r is None:
            continue
        part = by_key[(r.ident, record.category)]
        assert part.source_count is not None and part.source_total is not None
        part.source_count += 1
        part.source_total = exact_add(part.source_total, record.value)
        entry = totals[record.category]
        entry[0] -= 1
        entry[1] = EXACT.subtract(entry[1], record.value)
    for part in rest.parts:
        entry = totals.setdefault(part.category, [0, Decimal(0)])
        entry[0] += part.count
        entry[1] = exact_add(entry[1], part.total)
    return replace(state, totals=totals)
