"""``category_totals`` writes its state without a document in between, to the same bytes.

A snapshot's ``state`` member (``state_json``), the state a rebuild worker hands over
(``dump_state``/``load_state``) and the report's ``figures`` are each made column by
column, in one ``msgspec`` call where they can; these tests hold each to the plain
form it stands for, over states of any names, decimals, timestamps and
reconstructed parts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from eventfold.projections.base import Projection, canonical_decimal
from eventfold.projections.builtin import CategoryTotals, _texts

NO_LOW, NO_HIGH = Decimal("Infinity"), Decimal("-Infinity")

names = st.text(min_size=0, max_size=12) | st.sampled_from(["Z", 'q"Z', "caf\u00e9Z", "\u2028"])
decimals = st.decimals(allow_nan=False, allow_infinity=False, places=None) | st.sampled_from(
    [Decimal("-0"), Decimal("0E-9"), Decimal("1E+3"), Decimal("1.50")]
)
offsets = st.sampled_from(
    [
        UTC,
        timezone(timedelta(hours=2)),
        timezone(timedelta(hours=-5, minutes=-30)),
        timezone(timedelta(minutes=7, seconds=30)),
    ]
)
moments = st.none() | st.builds(
    lambda at, zone: at.replace(tzinfo=zone),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    offsets,
)


@st.composite
def entries(draw: st.DrawFn) -> list[Any]:
    """One category's entry: raw figures, or none (a reconstruction stands for all of
    it: min and max infinite), and maybe the part reconstructions stand for."""
    raw = draw(st.booleans())
    entry: list[Any] = [
        draw(st.integers(0, 10**12)),
        draw(decimals),
        draw(decimals) if raw else NO_LOW,
        draw(decimals) if raw else NO_HIGH,
        draw(moments) if raw else None,
        draw(moments) if raw else None,
    ]
    if draw(st.booleans()):
        entry.extend((draw(st.integers(0, 10**9)), draw(decimals), draw(st.integers(-3, 3))))
    return entry


states = st.dictionaries(names, entries(), max_size=25)


@settings(max_examples=300, deadline=None)
@given(state=states)
def test_the_snapshot_state_is_the_canonical_json_of_its_document(
    state: dict[str, list[Any]],
) -> None:
    projection = CategoryTotals()
    expected = projection.canonical_json(projection.to_json(state))
    assert projection.state_json(state) == expected == Projection.state_json(projection, state)


@settings(max_examples=300, deadline=None)
@given(state=states)
def test_a_worker_s_state_comes_back_exactly(state: dict[str, list[Any]]) -> None:
    """Every figure as written, timestamps in their offsets (whole minutes, as ingest
    records them), categories in their order."""
    state = {n: [*e[:4], _minutes(e[4]), _minutes(e[5]), *e[6:]] for n, e in state.items()}
    projection = CategoryTotals()
    back = projection.load_state(projection.dump_state(state))
    assert list(back) == list(state)
    assert {n: [str(x) for x in e] for n, e in back.items()} == {
        n: [str(x) for x in e] for n, e in state.items()
    }
    assert all(type(x) is type(y) for n in state for x, y in zip(back[n], state[n], strict=True))


@settings(max_examples=300, deadline=None)
@given(state=states)
def test_figures_are_each_entry_s_written_as_text(state: dict[str, list[Any]]) -> None:
    figures = CategoryTotals().figures(state)
    expected = {}
    for name, e in state.items():
        if not e[0]:
            continue
        row = expected[name] = {
            "min": None if e[2] == NO_LOW else str(e[2]),
            "max": None if e[3] == NO_HIGH else str(e[3]),
            "first": None if e[4] is None else e[4].isoformat(),
            "last": None if e[5] is None else e[5].isoformat(),
        }
        if len(e) == 9 and e[8]:
            row["reconstructed_count"] = e[6]
            row["reconstructed_total"] = canonical_decimal(e[7])
    assert figures == expected


@settings(max_examples=500, deadline=None)
@given(values=st.lists(st.decimals(allow_nan=True, allow_infinity=True) | decimals, max_size=40))
def test_decimals_are_written_as_str_writes_them(values: list[Decimal]) -> None:
    assert _texts(values) == [str(v) for v in values]


def _minutes(moment: datetime | None) -> datetime | None:
    """``moment`` with its offset cut to whole minutes (the offsets ingest records)."""
    if moment is None or moment.tzinfo is UTC:
        return moment
    offset = moment.utcoffset()
    assert offset is not None
    return moment.replace(tzinfo=timezone(timedelta(minutes=offset // timedelta(minutes=1))))


def test_a_part_written_by_an_earlier_release_is_read() -> None:
    """A part of a shared rebuild left in the database by the release before (the
    entries by name, then the reconstructed parts beside them) merges as it was."""
    books = [
        2,
        Decimal("3.50"),
        Decimal("1.5"),
        Decimal("2.00"),
        datetime(2026, 1, 1, 10, tzinfo=UTC),
        datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=2))),
    ]
    cafe = [1, Decimal("-0"), Decimal("-0"), Decimal("-0"), None, None]
    toys = [3, Decimal("7"), NO_LOW, NO_HIGH, None, None, 3, Decimal("7"), 1]
    plain = (
        b'{"books":[2,"3.50","1.5","2.00","2026-01-01T10:00:00Z","2026-01-01T12:00:00+02:00"],'
        b'"caf\xc3\xa9":[1,"-0","-0","-0",null,null]}'
    )
    with_parts = (
        b'[{"books":[2,"3.50","1.5","2.00","2026-01-01T10:00:00Z","2026-01-01T12:00:00+02:00"],'
        b'"caf\xc3\xa9":[1,"-0","-0","-0",null,null],'
        b'"toys":[3,"7","Infinity","-Infinity",null,null]},{"toys":[3,"7",1]}]'
    )
    projection = CategoryTotals()
    for data, expected in [
        (plain, {"books": books, "caf\u00e9": cafe}),
        (with_parts, {"books": books, "caf\u00e9": cafe, "toys": toys}),
    ]:
        state = projection.load_state(data)
        assert list(state) == list(expected)
        assert {n: [str(x) for x in e] for n, e in state.items()} == {
            n: [str(x) for x in e] for n, e in expected.items()
        }
