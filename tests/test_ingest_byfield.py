"""Ingest hands the file store a batch's ``Recorded`` states by field, made from the
batch's columns: they must be exactly the states, split as the store would split them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from eventfold.application.ingest.byfield import recorded_by_field
from eventfold.application.ingest.reading import ParsedBatch
from eventfold.application.ingest.rules import SourceEvent
from eventfold.application.recorded import RecordedCodec
from eventfold.infra.filestore.shapes import HOLE, split

TEXTS = st.one_of(
    st.text(min_size=1, max_size=12),
    st.sampled_from(['q"uote', "back\\slash", "tab\there", "\x7f", "café", "\u2028", "a,b"]),
)
VALUES = st.sampled_from(["1.5", "1.50", "-0", "0.00", "1E+1", "-3.25", "123456789.123"])
WHENS = st.one_of(
    st.none(),
    st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2001, 1, 1)).map(
        lambda d: d.replace(tzinfo=UTC).astimezone(timezone(timedelta(hours=5, minutes=30)))
    ),
)
ROWS = st.lists(st.tuples(TEXTS, TEXTS, VALUES, WHENS), min_size=1, max_size=30)


def _batch(rows: list[tuple[str, str, str, datetime | None]], source: str) -> ParsedBatch:
    codec = RecordedCodec.plain()
    timestamp = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)
    codec.prepare(timestamp, source)
    parsed = ParsedBatch(timestamp)
    offset = 0
    for number, (event_id, category, value, when) in enumerate(rows, 1):
        iso = None if when is None else when.isoformat()
        event = SourceEvent(event_id, category, Decimal(value), when, iso)
        parsed.add(event, number, offset, codec.encoded(event, number, offset))
        offset += 10 + number * 7
    return parsed


@settings(max_examples=300, deadline=None)
@given(rows=ROWS, drop=st.sets(st.integers(0, 29)), source=TEXTS)
def test_a_batch_by_field_is_its_states_exactly(
    rows: list[tuple[str, str, str, datetime | None]], drop: set[int], source: str
) -> None:
    """For any ids, categories, values, timestamps and source, and any events left out
    (duplicates, other partitions): the states put back together, and the store's own
    split of them, agree with what ingest hands over."""
    for parsed in (_batch(rows, source), ParsedBatch.from_bytes(_batch(rows, source).to_bytes())):
        kept = [i for i in range(len(rows)) if i not in drop]
        by_field = recorded_by_field(parsed, kept)
        states = [parsed.states[i] for i in kept]
        whens = {rows[i][3] is None for i in kept}
        if not kept or len(whens) > 1:  # two shapes, with a timestamp and without
            assert by_field is None
            continue
        assert by_field is not None
        assert [by_field.state(i) for i in range(len(kept))] == states
        assert by_field.holds(states)
        assert by_field.shape == tuple(HOLE.split(states[0])[0::2])
        if len(kept) > 1:
            found = split(states)
            assert found is not None and found.shape == by_field.shape
            for given_values, found_values in zip(by_field.columns, found.columns, strict=True):
                assert [given_values.value(i) for i in range(len(kept))] == [
                    found_values.value(i) for i in range(len(kept))
                ]
