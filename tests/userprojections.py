"""User-defined projections for the tests: named ``module:Class`` on the command line."""

from __future__ import annotations

from decimal import Decimal
from types import MappingProxyType
from typing import Any

from eventfold.domain.model import EXACT, Category
from eventfold.projections.base import Projection, RecordedFact, canonical_decimal, handles
from eventfold.projections.builtin import CategoryTotals, Totals

Largest = dict[str, Any]


class LargestValue(Projection[Largest]):
    """Per category, its largest value: rows compared whole (no measures declared)."""

    name = "largest_value"
    root = "largest"
    keys = ("category",)

    def initial(self) -> Largest:
        return {}

    @handles(Category.Recorded)
    def recorded(self, state: Largest, fact: RecordedFact) -> None:
        if fact.category not in state or fact.value > state[fact.category]:
            state[fact.category] = fact.value

    def to_json(self, state: Largest) -> dict[str, str]:
        return {k: str(v) for k, v in state.items()}

    def from_json(self, doc: dict[str, str]) -> Largest:
        return {k: Decimal(v) for k, v in doc.items()}

    def canonical(self, state: Largest) -> dict[str, Any]:
        return {"largest": {k: canonical_decimal(v) for k, v in state.items()}}


class WithoutRent(CategoryTotals):
    """``category_totals`` changed: it no longer counts ``rent`` (same name and version)."""

    def recorded(self, state: Totals, fact: RecordedFact) -> None:
        if fact.category != "rent":
            super().recorded(state, fact)


class Reshaped(CategoryTotals):
    """``category_totals`` at version 2, whose snapshots hold a list: it cannot read
    a version 1 state."""

    version = 2

    def to_json(self, state: Totals) -> list[Any]:  # type: ignore[override]
        return [[name, doc] for name, doc in super().to_json(state).items()]

    def from_json(self, doc: list[Any]) -> Totals:  # type: ignore[override]
        if not isinstance(doc, list):
            raise TypeError(f"a list of [name, totals], not {type(doc).__name__}")
        return super().from_json(dict(doc))


Sums = dict[str, list[Any]]


class CountAndSum(Projection[Sums]):
    """Per category, ``n`` events summing to ``sum``: measures of its own names."""

    name = "count_and_sum"
    root = "sums"
    keys = ("category",)
    measures = MappingProxyType({"n": "count", "sum": "decimal"})

    def initial(self) -> Sums:
        return {}

    @handles(Category.Recorded)
    def recorded(self, state: Sums, fact: RecordedFact) -> None:
        entry = state.setdefault(fact.category, [0, Decimal(0)])
        entry[0] += 1
        entry[1] = EXACT.add(entry[1], fact.value)

    def to_json(self, state: Sums) -> dict[str, list[Any]]:
        return {k: [n, str(t)] for k, (n, t) in state.items()}

    def from_json(self, doc: dict[str, list[Any]]) -> Sums:
        return {k: [int(n), Decimal(t)] for k, (n, t) in doc.items()}

    def canonical(self, state: Sums) -> dict[str, Any]:
        return {"sums": {k: {"n": n, "sum": canonical_decimal(t)} for k, (n, t) in state.items()}}
