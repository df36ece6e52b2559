"""What the reconstructions of a store mean to a state as of a time.

A position (``@N``) needs nothing here: the fold of the store up to N follows
the plan (``plan.py``). A time needs one of two rules:

- **recorded** by T: the store as it was recorded by T is a prefix of its
  positions (``recorded_limit`` bounds it where a reconstruction was made or
  retired after T), and that prefix is folded as ``@N`` is: a reconstruction
  made after T does not stand; one retired after T still stands, and the raw
  events of its period recorded by T after it was made are held out;
- **occurred** at or before T, read from the store now (``OccurredCut``): the
  reconstructions standing at the store's end apply. One whose period ends at
  or before T counts wholly: its summary is in and every raw event of its
  categories that occurred in its period is left out. One whose period starts
  after T does not count (the raw events of its period occurred after T and are
  left out anyway). One whose period holds T cannot be split: ``splitting``
  names it, and the caller refuses the time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from eventfold.application.reconstructing.plan import Covering, Plan, Reconstruction
from eventfold.projections.base import Adjustment, RecordedFact


def recorded_limit(plan: Plan, moment: datetime, end: int) -> int:
    """The last position before the first reconstruction event (made or retired)
    recorded after ``moment``; ``end`` when there is none."""
    limit = end
    for r in plan.reconstructions:
        if r.made_on > moment:
            limit = min(limit, r.made_at - 1)
        elif r.retired_on is not None and r.retired_on > moment:
            limit = min(limit, r.retired_at - 1)
    return limit


@dataclass
class OccurredCut:
    """The reconstructions standing at the store's end, as a fold of the events that
    occurred at or before ``moment`` counts them."""

    moment: datetime
    standing: list[Reconstruction]
    _covering: Covering = field(init=False)

    def __post_init__(self) -> None:
        self._covering = Covering(self.standing)

    @classmethod
    def of(cls, plan: Plan, end: int, moment: datetime) -> OccurredCut:
        """The cut of ``plan`` at ``moment``, for a store whose end is ``end``."""
        return cls(moment, plan.standing(end))

    @property
    def splitting(self) -> Reconstruction | None:
        """The first standing reconstruction whose period holds ``moment``:
        ``start <= moment < end`` (an event at ``moment`` would count, a later one of
        the period not)."""
        for r in self.standing:
            if r.start <= self.moment < r.end:
                return r
        return None

    @property
    def counted(self) -> list[Reconstruction]:
        """The standing reconstructions whose period ends at or before ``moment``."""
        return [r for r in self.standing if r.end <= self.moment]

    def stood_for(self, fact: RecordedFact) -> bool:
        """Whether a standing reconstruction stands for ``fact``: one of its categories,
        occurred in its period."""
        return any(self._covering.covering(fact.category, fact.occurred_at))

    def adjustments(self) -> Iterator[Adjustment]:
        """The summaries of the counted reconstructions, per category (no raw part: the
        raw events they stand for are left out of the fold, ``stood_for``)."""
        for r in self.counted:
            yield from r.summaries()
