"""Stored ``Category.Recorded`` states in the library's plain JSON, decoded in bulk.

The library's mapper builds a domain event object per event (about 15 µs). A
page of states is decoded here with ``msgspec`` instead, into typed structs, in
one call: states joined by commas are one JSON array's items. The file store
keeps the states of a commit that share one shape by field (``EFC4``,
``infra/filestore/shapes.py``); when that shape is the one the library's mapper
gives a ``Recorded`` event (``recorded_shapes``), each field a page needs is
decoded with one call of its own, and no state is put back together. Any other
shape is read as the states themselves. Both give equal facts (tested).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import NamedTuple
from uuid import UUID

import msgspec
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    UUIDAsHex,
)

from eventfold.domain.model import Category
from eventfold.infra.filestore.shapes import HOLE, Fields
from eventfold.projections.base import CategoryGroup, PageColumns, RecordedFact


class _DecimalBox(msgspec.Struct, rename={"data": "_data_"}, gc=False):
    data: Decimal


class _TimeBox(msgspec.Struct, rename={"data": "_data_"}, gc=False):
    data: datetime


# gc=False: these hold only strings, numbers, decimals, datetimes and each other, so
# they are never part of a reference cycle; the collector need not track millions of them.
class _RecordedState(msgspec.Struct, gc=False):
    event_id: str
    category: str
    value: _DecimalBox
    occurred_at: _TimeBox | None
    source: str
    line: int
    offset: int


class _CategoryRow(msgspec.Struct, gc=False):
    """The part of a state that ``by_category`` reads (the other keys are skipped unbuilt)."""

    category: str
    value: _DecimalBox
    occurred_at: _TimeBox | None


class _Tally(msgspec.Struct):
    value: _DecimalBox


class _Last(msgspec.Struct):
    timestamp: _TimeBox


decode_state = msgspec.json.Decoder(_RecordedState).decode
decode_tallies = msgspec.json.Decoder(list[_Tally]).decode
decode_last = msgspec.json.Decoder(_Last).decode
decode_lasts = msgspec.json.Decoder(list[_Last]).decode
_decode_page = msgspec.json.Decoder(list[_RecordedState]).decode
_decode_rows = msgspec.json.Decoder(list[_CategoryRow]).decode
_decode_strs = msgspec.json.Decoder(list[str]).decode
_decode_ints = msgspec.json.Decoder(list[int]).decode
_decode_decimals = msgspec.json.Decoder(list[Decimal]).decode
_decode_times = msgspec.json.Decoder(list[datetime | None]).decode


class Holes(NamedTuple):
    """Where each field of a ``Recorded`` state is among its shape's holes (None: the
    state has no ``occurred_at``)."""

    event_id: int
    category: int
    value: int
    occurred_at: int | None
    source: int
    line: int
    offset: int


@functools.cache
def recorded_shapes() -> dict[tuple[bytes, ...], Holes]:
    """The shapes of ``Recorded`` states as the library's default JSON mapper writes them,
    with and without ``occurred_at``, and where each field is in them."""
    transcoder = JSONTranscoder()  # as an Application's default (register_transcodings)
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    mapper: Mapper[UUID] = Mapper(transcoder)
    when = datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC)
    marks = {"event_id": b'"E"', "category": b'"C"', "value": b'"1.5"', "source": b'"S"'}
    shapes: dict[tuple[bytes, ...], Holes] = {}
    for occurred_at in (when, None):
        event = Category.Recorded(  # type: ignore[call-arg]
            originator_id=UUID(int=0),
            originator_version=1,
            timestamp=datetime(2000, 1, 1, tzinfo=UTC),
            event_id="E",
            category="C",
            value=Decimal("1.5"),
            occurred_at=occurred_at,
            source="S",
            line=111,
            offset=222,
        )
        parts = HOLE.split(mapper.to_stored_event(event).state)
        values = parts[1::2]
        at = {name: values.index(mark) for name, mark in marks.items()}
        stamp = f'"{when.isoformat()}"'.encode()
        occurred = values.index(stamp) if occurred_at is not None else None
        holes = Holes(
            at["event_id"],
            at["category"],
            at["value"],
            occurred,
            at["source"],
            values.index(b"111"),
            values.index(b"222"),
        )
        shapes[tuple(parts[0::2])] = holes
    return shapes


Part = bytes | Fields  # states joined by commas, or kept by field


def _joined(part: Part) -> bytes:
    return part if isinstance(part, bytes) else part.joined()


def _holes(part: Part) -> Holes | None:
    """Where a part kept by field has each field of ``Recorded`` (None: read its states)."""
    return None if isinstance(part, bytes) else recorded_shapes().get(part.shape)


def _items(fields: Fields, hole: int) -> bytes:
    return b"[" + fields.text(hole) + b"]"


class StatesPage:
    """A ``RecordedPage`` over stored states in the library's plain JSON, in parts: each
    part's states decoded with one ``msgspec`` call, or, kept by field in the shape of
    ``Recorded``, one call a field; into full facts or only what ``by_category`` needs."""

    __slots__ = ("_columns", "_facts", "_json", "_parts", "ids")

    def __init__(self, ids: list[int], parts: Sequence[Part]) -> None:
        self.ids = ids
        self._parts = parts
        self._facts: list[RecordedFact] | None = None
        self._columns: PageColumns | None = None
        self._json = b""

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def last_id(self) -> int:
        return self.ids[-1]

    def json(self) -> bytes:
        """The page's states as one JSON array (put together once)."""
        if not self._json:
            self._json = b"[" + b",".join(map(_joined, self._parts)) + b"]"
        return self._json

    def mentions(self, text: bytes) -> bool:
        """Whether ``text`` occurs in the page's stored states (False: no event of the
        page holds it in any field, as the JSON writes it)."""
        return text in self.json()

    def facts(self) -> list[RecordedFact]:
        if self._facts is None:
            facts: list[RecordedFact] = []
            ids = iter(self.ids)
            for part in self._parts:
                holes = _holes(part)
                if holes is None:
                    facts += _facts_of(_decode_page(b"[" + _joined(part) + b"]"), ids)
                else:
                    assert isinstance(part, Fields)
                    facts += _facts_by_field(ids, part, holes)
            self._facts = facts
        return self._facts

    def columns(self) -> PageColumns:
        if self._columns is None:
            categories: list[str] = []
            values: list[Decimal] = []
            whens: list[datetime | None] = []
            for part in self._parts:
                holes = _holes(part)
                if holes is None:
                    rows = _decode_rows(b"[" + _joined(part) + b"]")
                    categories += [r.category for r in rows]
                    values += [r.value.data for r in rows]
                    whens += [None if (w := r.occurred_at) is None else w.data for r in rows]
                    continue
                assert isinstance(part, Fields)
                categories += _decode_strs(_items(part, holes.category))
                values += _decode_decimals(_items(part, holes.value))
                if holes.occurred_at is None:
                    whens += [None] * len(part)
                else:
                    whens += _decode_times(_items(part, holes.occurred_at))
            self._columns = PageColumns(categories, values, whens)
        return self._columns

    def by_category(self) -> dict[str, CategoryGroup]:
        values: dict[str, list[Decimal]] = defaultdict(list)
        whens: dict[str, list[datetime]] = defaultdict(list)
        for name, value, when in zip(*self.columns(), strict=True):
            values[name].append(value)
            if when is not None:
                whens[name].append(when)
        return {name: CategoryGroup(group, whens[name]) for name, group in values.items()}


def _facts_of(states: list[_RecordedState], ids: Iterator[int]) -> list[RecordedFact]:
    """The facts of ``states``, numbered by the next ids (the states first: ``zip`` stops
    on them without taking an id too many)."""
    fact = RecordedFact
    return [
        fact(
            nid,
            s.event_id,
            s.category,
            s.value.data,
            None if s.occurred_at is None else s.occurred_at.data,
            s.source,
            s.line,
            s.offset,
        )
        for s, nid in zip(states, ids, strict=False)
    ]


def _facts_by_field(ids: Iterator[int], fields: Fields, holes: Holes) -> list[RecordedFact]:
    n = len(fields)
    whens: list[datetime | None] = (
        [None] * n
        if holes.occurred_at is None
        else _decode_times(_items(fields, holes.occurred_at))
    )
    columns = (
        [next(ids) for _ in range(n)],
        _decode_strs(_items(fields, holes.event_id)),
        _decode_strs(_items(fields, holes.category)),
        _decode_decimals(_items(fields, holes.value)),
        whens,
        _decode_strs(_items(fields, holes.source)),
        _decode_ints(_items(fields, holes.line)),
        _decode_ints(_items(fields, holes.offset)),
    )
    return list(map(RecordedFact._make, zip(*columns, strict=True)))
