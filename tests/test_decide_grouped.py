"""A batch of few categories is decided a category at a time: the same as event by event."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal
from uuid import NAMESPACE_URL, uuid5

from hypothesis import given, settings
from hypothesis import strategies as st

from eventfold.application.ingest.deciding import Stream, record_grouped
from eventfold.domain.model import Category

NAMES = ["a", "b", "c", "caf\u00e9", "b2"]
WHEN = datetime(2026, 1, 1, tzinfo=UTC)
values = st.sampled_from([Decimal("1.5"), Decimal("1.50"), Decimal("-0"), Decimal("7E+2")])


@st.composite
def streams(draw: st.DrawFn) -> dict[str, Stream]:
    """The batch's categories as a run may know them: versions, snapshots due at any
    version (some inside the batch), some with their aggregate loaded."""
    known: dict[str, Stream] = {}
    for name in NAMES:
        version = draw(st.integers(1, 30))
        stream = Stream(uuid5(NAMESPACE_URL, name), version, version + draw(st.integers(1, 40)))
        stream.count, stream.total = draw(st.integers(0, 5)), draw(values)
        if draw(st.booleans()):
            stream.category = Category(name)
        known[name] = stream
    return known


def snapshot(streams: dict[str, Stream]) -> dict[str, tuple[object, ...]]:
    return {
        n: (s.id, s.version, s.due, s.base, s.count, str(s.total), s.modified, s.category)
        for n, s in streams.items()
    }


@settings(max_examples=300, deadline=None)
@given(
    known=streams(),
    batch=st.lists(st.tuples(st.sampled_from(NAMES), values), min_size=1, max_size=80),
)
def test_a_step_per_category_decides_as_a_step_per_event(
    known: dict[str, Stream], batch: list[tuple[str, Decimal]]
) -> None:
    names, amounts = [n for n, _ in batch], [v for _, v in batch]
    grouped, evented = copy.deepcopy(known), copy.deepcopy(known)
    loaded_grouped: dict[Stream, list[Decimal]] = {}
    ids, versions, due = record_grouped(grouped, names, amounts, WHEN, loaded_grouped)

    loaded: dict[Stream, list[Decimal]] = {}
    expected_ids, expected_versions, expected_due = [], [], []
    for name, value in batch:
        stream = evented[name]
        version = stream.record(value, WHEN, loaded)
        expected_ids.append(stream.id)
        expected_versions.append(version)
        if version == stream.due:
            expected_due.append(name)

    assert (ids, versions, due) == (expected_ids, expected_versions, expected_due)
    assert snapshot(grouped) == snapshot(evented)
    assert {s.id: [str(v) for v in t] for s, t in loaded_grouped.items()} == {
        s.id: [str(v) for v in t] for s, t in loaded.items()
    }
