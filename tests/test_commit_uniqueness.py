"""A commit's (originator, version) pairs are checked the same way, a step per event or
(a large commit) by column: the same answers, the same refusals."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent
from hypothesis import given
from hypothesis import strategies as st

from eventfold.infra.filestore import writer
from storehelpers import factory_for, recorder_of

KEYS = [bytes([k]) * 16 for k in range(5)]
VERSION = st.integers(-3, 6) | st.sampled_from([2**63 - 1, -(2**63), 2**63, 2**70])


@given(st.lists(st.tuples(st.sampled_from(KEYS), VERSION), max_size=200))
def test_versions_by_column_agree_with_versions_event_by_event(
    events: list[tuple[bytes, int]],
) -> None:
    """Few keys and small versions: repeats, falls and rises; beyond 64 bits too."""
    keys = [key for key, _ in events]
    versions = [version for _, version in events]
    expected = writer._rising_by_event(keys, versions)
    assert writer._rising(keys, versions) == expected
    rising = sorted(events, key=lambda e: (KEYS.index(e[0]), e[1]))
    distinct = list(dict.fromkeys(rising))  # every key's versions go up
    by_column = writer._rising([k for k, _ in distinct], [v for _, v in distinct])
    assert by_column == writer._rising_by_event([k for k, _ in distinct], [v for _, v in distinct])
    assert by_column is not None


def _commit(oids: list[UUID], versions: list[int]) -> list[StoredEvent]:
    return [StoredEvent(o, v, "topic", b"{}") for o, v in zip(oids, versions, strict=True)]


def test_a_large_commit_that_repeats_or_retakes_a_version_is_refused(tmp_path: Path) -> None:
    factory = factory_for(tmp_path / "store")
    recorder = recorder_of(factory)
    a, b = uuid4(), uuid4()
    count = writer.RISING_COLUMNS + 10
    first = _commit([a, b] * count, [v for v in range(1, count + 1) for _ in (a, b)])
    recorder.insert_events(first)
    again = _commit([a] * count, list(range(count + 1, 2 * count + 1)))
    again[-1] = StoredEvent(a, count + 1, "topic", b"{}")  # the commit's own first version
    with pytest.raises(IntegrityError, match="not unique"):
        recorder.insert_events(again)
    taken = _commit([b] * count, list(range(count + 1, 2 * count + 1)))
    taken[5] = StoredEvent(b, 3, "topic", b"{}")  # recorded by the first commit
    with pytest.raises(IntegrityError, match="already recorded"):
        recorder.insert_events(taken)
    overlapping = _commit([b] * count, list(range(count, 2 * count)))  # rising, from a taken one
    with pytest.raises(IntegrityError, match="already recorded"):
        recorder.insert_events(overlapping)
    falling = _commit([a] * count, list(range(2 * count, count, -1)))  # down, yet unique
    assert len(recorder.insert_events(falling) or ()) == count
    assert [e.originator_version for e in recorder.select_events(a, gt=count)] == list(
        range(count + 1, 2 * count + 1)
    )
    factory.close()
