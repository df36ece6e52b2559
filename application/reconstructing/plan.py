"""What the reconstructions of a store mean to a fold: adjustments and held events.

Every reconstruction is read from the one stream of ``Reconstructions``, each of
its events placed by its notification id (``Backend.positions``). The rule, for
a projection that folds reconstructions (``folds_reconstructions``):

- where a reconstruction is made (its ``Made`` event's position), its summary's
  count and total are added to each of its categories, and the raw events of its
  period that were in the store then (``replaced``) are taken out;
- while it stands, a raw event of one of its categories that occurred in its
  period and was recorded after it was made is held out of the fold;
- where it is retired, its summary is taken out again and the raw events of its
  period put back: those it replaced and those held meanwhile (``held``).

Each of these is local to a position, so a rebuild, a catch-up from any
snapshot, a parallel rebuild and a fold as of a position all agree; and a
category's total never counts both a summary and the raw events it stands for.
The store's current stream of reconstructions is right for any prefix of the
store: a reconstruction made after the prefix's end holds nothing in it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, KeysView
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from eventsourcing.utils import get_topic

from eventfold.application.app import Eventfold
from eventfold.application.recorded import FactsPage
from eventfold.domain.model import Reconstructions, exact_add, exact_sum
from eventfold.projections.base import Adjustment, RecordedFact, RecordedPage

_MADE: Any = Reconstructions.Made  # type: ignore[attr-defined]  # made by ``@event("Made")``
_RETIRED: Any = Reconstructions.Retired  # type: ignore[attr-defined]
MADE_TOPIC = get_topic(_MADE)
RETIRED_TOPIC = get_topic(_RETIRED)
TOPICS = frozenset({MADE_TOPIC, RETIRED_TOPIC})
NEVER = 1 << 62  # the position of a retirement that has not happened


@dataclass(frozen=True)
class Part:
    """One category's part in one reconstruction."""

    category: str
    count: int
    total: Decimal
    replaced_count: int  # raw events of the period in the store when it was made
    replaced_total: Decimal
    held_count: int = 0  # raw events of the period recorded while it stood (once retired)
    held_total: Decimal = Decimal(0)
    held_low: Decimal | None = None  # their smallest and largest value, earliest and
    held_high: Decimal | None = None  # latest time (None: none held)
    held_first: datetime | None = None
    held_last: datetime | None = None


@dataclass(frozen=True)
class Reconstruction:
    """One summary of one period: where it was made (and retired), and its parts."""

    ident: str
    start: datetime
    end: datetime
    digest: str
    path: str
    note: str
    by: str
    made_on: datetime  # when it was recorded
    made_at: int  # the position of its ``Made`` event
    parts: dict[str, Part]
    retired_at: int = NEVER
    retired_on: datetime | None = None
    retired_by: str = ""
    retire_note: str = ""

    def covers(self, when: datetime | None) -> bool:
        """Whether an event that occurred at ``when`` lies in the period."""
        return when is not None and self.start <= when < self.end

    def stands_at(self, position: int) -> bool:
        """Whether it is made, and not retired, as of notification ``position``."""
        return self.made_at <= position < self.retired_at

    @property
    def count(self) -> int:
        return sum(p.count for p in self.parts.values())

    @property
    def total(self) -> Decimal:
        return exact_sum([p.total for p in self.parts.values()])

    def summaries(self) -> Iterator[Adjustment]:
        """Its summary per category and nothing else (no raw part: for a fold that leaves
        the raw events of its period out itself)."""
        for p in self.parts.values():
            yield self._adjustment(self.made_at, p, p.count, p.total, 0, Decimal(0))

    def adjustments(self) -> Iterator[Adjustment]:
        """The adjustments of its ``Made`` and, if retired, its ``Retired`` event."""
        for p in self.parts.values():
            yield self._adjustment(
                self.made_at,
                p,
                p.count,
                p.total,
                -p.replaced_count,
                p.replaced_total.copy_negate(),
            )
        if self.retired_at == NEVER:
            return
        for p in self.parts.values():
            yield self._adjustment(
                self.retired_at,
                p,
                -p.count,
                p.total.copy_negate(),
                p.replaced_count + p.held_count,
                exact_add(p.replaced_total, p.held_total),
                made=False,
                raw_low=p.held_low,
                raw_high=p.held_high,
                raw_first=p.held_first,
                raw_last=p.held_last,
            )

    def _adjustment(
        self,
        position: int,
        part: Part,
        count: int,
        total: Decimal,
        raw_count: int,
        raw_total: Decimal,
        **figures: Any,
    ) -> Adjustment:
        return Adjustment(
            position,
            self.ident,
            part.category,
            self.start,
            self.end,
            count,
            total,
            raw_count,
            raw_total,
            **figures,
        )


class Covering:
    """Reconstructions by category: which of them has a part for an event's category and
    a period that covers when it occurred."""

    def __init__(self, reconstructions: Iterable[Reconstruction]) -> None:
        self._by_category: dict[str, list[Reconstruction]] = {}
        for r in reconstructions:
            for name in r.parts:
                self._by_category.setdefault(name, []).append(r)

    def categories(self) -> KeysView[str]:
        """The categories that one of them has a part for."""
        return self._by_category.keys()

    def covering(self, category: str, when: datetime | None) -> Iterator[Reconstruction]:
        """Those with a part for ``category`` whose period covers ``when``, in order."""
        for r in self._by_category.get(category, ()):
            if r.covers(when):
                yield r


@dataclass
class Plan:
    """The reconstructions of a store, as a fold uses them."""

    reconstructions: list[Reconstruction]
    _covering: Covering = field(init=False)

    def __post_init__(self) -> None:
        self._covering = Covering(self.reconstructions)

    def __bool__(self) -> bool:
        return bool(self.reconstructions)

    def adjustments(self, after: int, last: int) -> list[Adjustment]:
        """The adjustments at positions ``after+1..last``, in order of position."""
        found = [
            a
            for r in self.reconstructions
            for a in r.adjustments()
            if after < a.notification_id <= last
        ]
        found.sort(key=lambda a: a.notification_id)
        return found

    def held(self, fact: RecordedFact) -> bool:
        """Whether a fold holds ``fact`` out: a reconstruction of its category stood when
        it was recorded and its period covers when it occurred."""
        return any(
            r.made_at < fact.notification_id < r.retired_at
            for r in self._covering.covering(fact.category, fact.occurred_at)
        )

    def keep(self, page: RecordedPage) -> RecordedPage | None:
        """``page`` without its held facts (the page itself when it has none; None when
        every fact is held)."""
        if self._covering.categories().isdisjoint(page.columns().categories):
            return page
        kept = [f for f in page.facts() if not self.held(f)]
        if len(kept) == len(page):
            return page
        return FactsPage(kept) if kept else None

    def applying(self, event: Any, position: int) -> Plan | None:
        """The plan with one more ``Made`` or ``Retired`` event, at ``position``, taken from
        the event itself (``follow``, which must not read the store meanwhile: a read
        there could take the news of another process's commit from its subscription).
        The plan itself when it holds the event already; None when it cannot tell (a
        ``Retired`` of a reconstruction it does not hold: load the plan again)."""
        known = {r.ident: r for r in self.reconstructions}
        if isinstance(event, _MADE):
            if event.reconstruction in known:
                return self
            return Plan([*self.reconstructions, _reconstruction(event, position)])
        made = known.get(event.reconstruction) if isinstance(event, _RETIRED) else None
        if made is None:
            return None
        if made.retired_at != NEVER:
            return self
        retired = _retired(made, event, position)
        return Plan([retired if r is made else r for r in self.reconstructions])

    def standing(self, position: int) -> list[Reconstruction]:
        """The reconstructions that stand as of notification ``position``."""
        return [r for r in self.reconstructions if r.stands_at(position)]


def load_plan(app: Eventfold) -> Plan:
    """The store's reconstructions (none, for most stores: one index lookup)."""
    ident = Reconstructions.create_id()
    stored = app.recorder.select_events(ident)
    if not stored:
        return Plan([])
    at = dict(app.backend.positions(app.process_recorder, ident))  # read after: every event has one
    made: dict[str, Reconstruction] = {}
    order: list[str] = []
    for s in stored:
        event: Any = app.mapper.to_domain_event(s)
        position = at[s.originator_version]
        if isinstance(event, _MADE):
            made[event.reconstruction] = _reconstruction(event, position)
            order.append(event.reconstruction)
        elif isinstance(event, _RETIRED):
            made[event.reconstruction] = _retired(made[event.reconstruction], event, position)
    return Plan([made[ident] for ident in order])


def _reconstruction(event: Any, position: int) -> Reconstruction:
    parts = {
        name: Part(name, int(n), Decimal(t), int(rn), Decimal(rt))
        for name, (n, t, rn, rt) in event.rows.items()
    }
    return Reconstruction(
        event.reconstruction,
        event.start,
        event.end,
        event.digest,
        event.path,
        event.note,
        event.by,
        event.timestamp,
        position,
        parts,
    )


def _retired(made: Reconstruction, event: Any, position: int) -> Reconstruction:
    parts = dict(made.parts)
    for name, row in event.held.items():
        n, t, *figures = row
        low, high, first, last = figures or (None, None, None, None)
        parts[name] = dataclasses.replace(
            parts[name],
            held_count=int(n),
            held_total=Decimal(t),
            held_low=None if low is None else Decimal(low),
            held_high=None if high is None else Decimal(high),
            held_first=None if first is None else datetime.fromisoformat(first),
            held_last=None if last is None else datetime.fromisoformat(last),
        )
    return Reconstruction(
        made.ident,
        made.start,
        made.end,
        made.digest,
        made.path,
        made.note,
        made.by,
        made.made_on,
        made.made_at,
        parts,
        position,
        event.timestamp,
        event.by,
        event.note,
    )
