"""Reconstructions against an independent model, over random histories.

A history of events (some without a timestamp) is ingested in random parts,
in between random operations: a summary made to stand for a random period,
more events ingested (the lost ones found later, duplicates too), a
reconstruction retired, another made. The model knows nothing of positions,
replaced or held events: per category, the raw events ingested, but those in
the period of a standing reconstruction of that category, plus the standing
summaries; the reconstructed figures, the standing summaries. After each
step, category_totals folded from scratch (as a rebuild folds) and caught up
from its snapshots (one after every page and adjustment) equal the model; at
the end, the state as of each step's position, and the two ranges of the store
split around each position where a reconstruction was made or retired, folded
apart and merged (as parallel workers do), equal it too. What still stands
at the end is retired: then every raw event counts.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from eventfold.application.app import Eventfold, open_store
from eventfold.application.ingest import Ingestor
from eventfold.application.projecting import Projector
from eventfold.application.projecting.asof import Point, state_as_of
from eventfold.application.reconstructing import making
from eventfold.application.reconstructing.plan import load_plan
from eventfold.domain.model import EXACT
from eventfold.projections.base import canonical_decimal
from eventfold.projections.builtin import CategoryTotals
from summaryhelpers import Event, write, write_summary

START = datetime(2026, 11, 30, 8, tzinfo=UTC)
STEP = timedelta(minutes=30)  # events and periods on one grid: boundaries meet often
RAW = ["rent", "food", "fun"]
SUMMARISED = [*RAW, "travel"]  # travel: never a raw event's category


events_ = st.lists(
    st.tuples(
        st.sampled_from(RAW),
        st.integers(-500, 5000),  # cents
        # half-hours after START, or (one in nine) no timestamp
        st.integers(-2, 15).map(lambda t: None if t < 0 else t),
    ),
    min_size=4,
    max_size=24,
)


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[tuple[str, int, int | None]], list[bool]]:
    """Events, and for each whether it was ingested before the first reconstruction."""
    drawn = draw(events_)
    early = st.integers(0, 3).map(bool)  # three in four: ingested before
    before = draw(st.lists(early, min_size=len(drawn), max_size=len(drawn)))
    return drawn, before


periods = st.tuples(st.integers(0, 13), st.integers(1, 6))  # first half-hour, length
summaries = st.dictionaries(
    st.sampled_from(SUMMARISED),
    st.tuples(st.integers(0, 4), st.integers(-1000, 10000)),  # count, cents
    min_size=1,
    max_size=3,
)
ingesting = st.tuples(st.just("ingest"), st.lists(st.integers(0, 23), min_size=1, max_size=12))
making_ = st.tuples(st.just("make"), periods, summaries)
operations = st.lists(
    st.one_of(making_, ingesting, st.tuples(st.just("retire"), st.integers(0, 3))),
    min_size=1,
    max_size=6,
)


@dataclass
class Standing:
    start: datetime
    end: datetime
    summary: dict[str, tuple[int, Decimal]]
    retired: bool = False


@dataclass
class Model:
    """What category_totals must show: no position, no replaced or held event in it."""

    raw: dict[str, tuple[str, Decimal, datetime | None]] = field(default_factory=dict)
    made: list[Standing] = field(default_factory=list)

    def ingest(self, events: list[Event]) -> None:
        for event_id, category, value, when in events:
            at = None if when is None else datetime.fromisoformat(when)
            self.raw.setdefault(event_id, (category, Decimal(value), at))

    def refuses(self, start: datetime, end: datetime, names: set[str]) -> bool:
        return any(
            not r.retired and r.start < end and start < r.end and names & set(r.summary)
            for r in self.made
        )

    def raw_in(self, r: Standing) -> dict[str, tuple[int, Decimal]]:
        """Per category of ``r``'s summary, the raw events ingested that occurred in its
        period: those it replaces (when made) or that count again (when retired)."""
        found = {}
        for name in r.summary:
            values = [
                value
                for category, value, at in self.raw.values()
                if category == name and at is not None and r.start <= at < r.end
            ]
            found[name] = (len(values), sum(values, Decimal(0)))
        return found

    def reconstructed(self) -> dict[str, tuple[int, str]]:
        """Per category with events, what the standing summaries with a row for it count
        (a row of no events too: the category's total rests on it)."""
        found: dict[str, tuple[int, Decimal]] = {}
        for r in self.made:
            for name, (count, total) in r.summary.items():
                if not r.retired:
                    n, t = found.get(name, (0, Decimal(0)))
                    found[name] = (n + count, EXACT.add(t, total))
        shown = self.categories()
        return {name: (n, canonical_decimal(t)) for name, (n, t) in found.items() if name in shown}

    def categories(self) -> dict[str, Any]:
        standing = [r for r in self.made if not r.retired]
        sums: dict[str, tuple[int, Decimal]] = {}

        def add(name: str, count: int, total: Decimal) -> None:
            n, t = sums.get(name, (0, Decimal(0)))
            sums[name] = (n + count, EXACT.add(t, total))

        for category, value, at in self.raw.values():
            stood_for = any(
                category in r.summary and at is not None and r.start <= at < r.end for r in standing
            )
            if not stood_for:
                add(category, 1, value)
        for r in standing:
            for name, (count, total) in r.summary.items():
                add(name, count, total)
        return {
            name: {"count": n, "total": canonical_decimal(t)} for name, (n, t) in sums.items() if n
        }


def history(drawn: list[tuple[str, int, int | None]]) -> list[Event]:
    return [
        (
            f"e{i}",
            category,
            canonical_decimal(Decimal(cents) / 100),
            None if at is None else (START + at * STEP).isoformat(),
        )
        for i, (category, cents, at) in enumerate(drawn)
    ]


def categories(state: Any) -> Any:
    return CategoryTotals().canonical(state)["categories"]


def reconstructed(figures: dict[str, dict[str, Any]] | None) -> dict[str, tuple[int, str]]:
    """The ``reconstructed_count`` and ``reconstructed_total`` figures, by category."""
    return {
        name: (f["reconstructed_count"], f["reconstructed_total"])
        for name, f in (figures or {}).items()
        if "reconstructed_count" in f
    }


def from_scratch(app: Eventfold, store: str, last: int) -> Any:
    state = CategoryTotals().initial()
    Projector(app, store, CategoryTotals()).fold_range(state, 0, last, 0)
    return categories(state)


def split_and_merged(app: Eventfold, store: str, cut: int, last: int) -> Any:
    """``0..cut`` and ``cut..last`` folded apart, each through its stored form, merged:
    its categories and reconstructed figures."""
    projection = CategoryTotals()
    projector = Projector(app, store, projection)
    parts = []
    for after, upto in ((0, cut), (cut, last)):
        part = projection.initial()
        projector.fold_range(part, after, upto, 0)
        parts.append(projection.load_state(projection.dump_state(part)))
    before = [projection.dump_state(part) for part in parts]
    merged = projection.merge(*parts)
    assert [projection.dump_state(part) for part in parts] == before  # merge copies
    assert projection.dump_state(projection.merge_into(*parts)) == projection.dump_state(merged)
    return categories(merged), reconstructed(projection.figures(merged))


def raw_of(outcome: making.Outcome) -> dict[str, tuple[int, Decimal]]:
    return {row.category: (row.raw_count, row.raw_total) for row in outcome.rows}


def cuts(app: Eventfold, last: int) -> list[int]:
    """Where to split the store in two: at, and on either side of, each position where a
    reconstruction was made or retired; and a few others."""
    near = {0, last // 3, last // 2, last}
    for r in load_plan(app).reconstructions:
        for position in (r.made_at, r.retired_at):
            near.update((position - 1, position, position + 1))
    return sorted(p for p in near if 0 <= p <= last)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=histories(), first=making_, steps=operations)
def test_totals_equal_the_model_after_every_step(
    drawn: tuple[list[tuple[str, int, int | None]], list[bool]], first: Any, steps: list[Any]
) -> None:
    events, before = history(drawn[0]), drawn[1]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = str(root / "store")
        app = open_store(store)
        model = Model()
        seen: dict[int, Any] = {}  # position -> the model's categories there

        def ingest(part: list[Event], batch: int) -> None:
            source = write(root / f"part{len(list(root.glob('part*')))}.jsonl", part)
            with Ingestor(app, store, batch=batch, reader_process=False) as ingestor:
                ingestor.run(str(source))
            model.ingest(part)

        def check() -> None:
            last = app.recorder.max_notification_id() or 0
            expected = model.categories()
            assert from_scratch(app, store, last) == expected
            caught = Projector(app, store, CategoryTotals(), snapshot_every=1).catchup()
            assert caught.canonical["categories"] == expected
            assert reconstructed(caught.figures) == model.reconstructed()
            seen[last] = expected

        try:
            ingested_before = [e for e, b in zip(events, before, strict=True) if b]
            if ingested_before:
                ingest(ingested_before, 3)
                check()
            everything = ("ingest", list(range(len(events))))
            for step in [first, *steps, everything, ("retire all",)]:
                if step[0] == "ingest":
                    part = [events[i % len(events)] for i in step[1]]
                    if part:
                        ingest(part, 1 + len(part) % 4)
                elif step[0] == "retire all":  # those still standing: every raw event counts
                    for k, r in enumerate(model.made):
                        if not r.retired:
                            retired = making.retire(app, f"R{k + 1}")
                            assert raw_of(retired) == model.raw_in(r)
                            r.retired = True
                            check()
                    continue
                elif step[0] == "make":
                    (first_step, length), drawn_summary = step[1], step[2]
                    start, end = START + first_step * STEP, START + (first_step + length) * STEP
                    summary = {
                        name: (n, Decimal(cents if n else 0) / 100)
                        for name, (n, cents) in drawn_summary.items()
                    }
                    path = write_summary(root / f"summary{len(model.made)}.csv", summary)
                    period = making.Period(start, end)
                    if model.refuses(start, end, set(summary)):
                        with pytest.raises(making.ReconstructUsageError, match="overlapping"):
                            making.make(app, str(path), period)
                    else:
                        made = making.make(app, str(path), period)
                        model.made.append(Standing(start, end, summary))
                        assert made.reconstruction.ident == f"R{len(model.made)}"
                        assert raw_of(made) == model.raw_in(model.made[-1])
                else:
                    if not model.made:
                        continue
                    k = step[1] % len(model.made)
                    if model.made[k].retired:
                        with pytest.raises(making.ReconstructUsageError, match="retired already"):
                            making.retire(app, f"R{k + 1}")
                    else:
                        retired = making.retire(app, f"R{k + 1}")
                        assert raw_of(retired) == model.raw_in(model.made[k])
                        model.made[k].retired = True
                check()
            last = app.recorder.max_notification_id() or 0
            for position, expected in seen.items():
                point = Point.parse(f"@{position}")
                assert state_as_of(app, store, CategoryTotals(), point).canonical == {
                    "categories": expected
                }
            for cut in cuts(app, last):
                merged = split_and_merged(app, store, cut, last)
                assert merged == (seen[last], model.reconstructed()), cut
        finally:
            app.close()
