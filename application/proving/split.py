"""Which part of one category's total rests on reconstructions (``explain``).

As of the projection's position, each raw event of the category is either
counted in the total or held out of it by a reconstruction standing as of that
position (``reconstructing/standing.py``: it was in the store when the
reconstruction was made and is replaced by it, or was recorded since). For a
projection that folds reconstructions (``category_totals``) the category's total
is then exactly::

    raw events counted (every raw event - those held out) + the summaries standing

and for one that does not (``hourly_totals``), every raw event. Each
reconstruction with a part for the category, standing or retired, is given with
the raw events of its period as read from the store: those it replaced and those
recorded since it was made (held out while it stands; counted again since it
was retired). These are read from the raw events, not taken from what the
reconstruction recorded, so that the sum proves its figures too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from eventfold.application.reconstructing.making import reconstruction_json
from eventfold.application.reconstructing.plan import Part, Reconstruction
from eventfold.application.reconstructing.standing import Standing
from eventfold.domain.model import EXACT, exact_add
from eventfold.projections.base import RecordedFact, canonical_decimal


@dataclass
class Figures:
    """A count and an exact total."""

    count: int = 0
    total: Decimal = Decimal(0)

    def add(self, value: Decimal) -> None:
        self.count += 1
        self.total = exact_add(self.total, value)

    def plus(self, other: Figures) -> Figures:
        return Figures(self.count + other.count, exact_add(self.total, other.total))

    def minus(self, other: Figures) -> Figures:
        return Figures(self.count - other.count, EXACT.subtract(self.total, other.total))

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "total": canonical_decimal(self.total)}


@dataclass
class PartShare:
    """One reconstruction's part for the category, and the raw events of its period read
    up to the position: those it ``replaced`` and those recorded since it was made."""

    reconstruction: Reconstruction  # as of the position: retired only if retired by then
    part: Part
    replaced: Figures = field(default_factory=Figures)
    held_since: Figures = field(default_factory=Figures)

    @property
    def standing(self) -> bool:
        return self.reconstruction.retired_on is None

    @property
    def summary(self) -> Figures:
        return Figures(self.part.count, self.part.total)

    def to_json(self) -> dict[str, Any]:
        """``reconstruct --list --json``'s entry (as of the position), with ``part`` (the
        summary's figures for this category), ``replaced`` and ``held_since``."""
        return reconstruction_json(self.reconstruction) | {
            "part": self.summary.to_json(),
            "replaced": self.replaced.to_json(),
            "held_since": self.held_since.to_json(),
        }


@dataclass
class Split:
    """The category's reconstructions as of the position, and the raw events held out of
    its total (``held``: none when the projection does not fold reconstructions)."""

    folds: bool  # the projection folds reconstructions (``Projection.folds_reconstructions``)
    shares: list[PartShare]
    held: Figures = field(default_factory=Figures)

    @classmethod
    def of(cls, standing: Standing, category: str, folds: bool) -> Split:
        return cls(folds, [PartShare(r, r.parts[category]) for r in standing.of(category)])

    def see(self, fact: RecordedFact) -> bool:
        """Count ``fact`` (one raw event of the category, read up to the position) against
        the reconstructions whose period covers it; whether it is held out of the total."""
        out = False
        for share in self.shares:
            r = share.reconstruction
            if not r.covers(fact.occurred_at):
                continue
            if fact.notification_id < r.made_at:
                share.replaced.add(fact.value)
            elif fact.notification_id < r.retired_at:
                share.held_since.add(fact.value)
            else:  # recorded after it was retired: counted
                continue
            out = out or (self.folds and share.standing)
        if out:
            self.held.add(fact.value)
        return out

    @property
    def counting(self) -> list[PartShare]:
        """The standing parts the total counts (none when the projection does not fold)."""
        return [s for s in self.shares if s.standing] if self.folds else []

    @property
    def reconstructed(self) -> Figures:
        """The summaries' figures the total counts."""
        found = Figures()
        for share in self.counting:
            found = found.plus(share.summary)
        return found

    def to_json(self) -> dict[str, Any]:
        """The keys ``explain --json`` adds for reconstructions (beside ``counted``)."""
        return {
            "folds_reconstructions": self.folds,
            "held": self.held.to_json(),
            "reconstructed": self.reconstructed.to_json()
            | {"reconstructions": [s.reconstruction.ident for s in self.counting]},
            "reconstructions": [s.to_json() for s in self.shares],
        }
