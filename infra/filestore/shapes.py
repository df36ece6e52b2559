"""The states of an ``EFC4`` commit, one group per topic, kept by field where they
share a shape (docs/FORMAT.md)::

    group  := plain | shaped                      -- the topic's m events, in event order
    plain  := 0:u8 length_planes states           -- as EFC3: state i is states' i-th item
    shaped := 1:u8 n_holes:u16 (piece_len:u32){n_holes + 1} piece{n_holes + 1}
              column{n_holes}
    column := kind:u8 data_len:u32 data           -- the values of one hole, event by event
      kind 0, text:    length_planes values       -- the values joined by ","
      kind 1, same:    value                      -- every event's value
      kind 2, integer: plane{8}                   -- i64: the first value, then differences
      kind 3, hex:     byte{m * width}            -- the value '"' hex(bytes) '"'

A state's *holes* are the JSON scalars that follow a ``:`` (``HOLE``); what lies
between them is its *shape*. Splitting is lossless whatever the bytes are (state
``i`` is ``piece_0 value_0(i) piece_1 ... piece_n``), so a group is shaped only
because its states share one shape; the columns then hold what varies, each in the
narrowest kind that gives its values back byte for byte.

A text column's values are one JSON array's items, and a fold decodes the field it
needs with one call (``Fields.text``), no state being put back together.
"""

from __future__ import annotations

import binascii
import operator
import re
import struct
import sys
from array import array
from collections.abc import Iterable, Mapping, Sequence
from itertools import accumulate, count
from typing import NamedTuple

from eventfold.infra.filestore.format import FormatError

PLAIN, SHAPED = 0, 1
TEXT, SAME, INTEGER, HEX = 0, 1, 2, 3
_STRING = rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"'
HOLE = re.compile(rb"(?<=:)(" + _STRING + rb"|-?[0-9][0-9.eE+-]*+|true|false|null)", re.DOTALL)
_INTEGER = rb"(?:0|-?[1-9][0-9]{0,17})"  # exactly what str(int(v)) writes, in an i64
_INTEGERS = re.compile(_INTEGER + rb"(?:," + _INTEGER + rb")*+")
_LIMIT = 10**18  # integers of at most 18 digits: their differences fit an i64
_SEPARATOR = b"\n"  # between states split together (states holding it are kept plain)
COLUMN = struct.Struct("<BI")
N_HOLES = struct.Struct("<BH")
PIECE_LEN = struct.Struct("<I")
MAX_HOLES = 0xFFFF
_BIG = sys.byteorder == "big"


class Values(NamedTuple):
    """One hole's values, event by event: joined by commas, and the length of each; with
    ``lengths`` None, the one value of every event; or ``numbers``, integers written as
    ``str`` writes them (``joined`` then unused)."""

    joined: bytes
    lengths: array[int] | None
    numbers: array[int] | None = None

    @classmethod
    def of(cls, values: Sequence[bytes]) -> Values:
        return cls(b",".join(values), array("I", map(len, values)))

    @classmethod
    def same(cls, value: bytes) -> Values:
        return cls(value, None)

    @classmethod
    def integers(cls, numbers: array[int]) -> Values:
        return cls(b"", None, numbers)

    def value(self, i: int) -> bytes:
        if self.numbers is not None:
            return b"%d" % self.numbers[i]
        if self.lengths is None:
            return self.joined
        start = sum(self.lengths[:i]) + i
        return self.joined[start : start + self.lengths[i]]

    def count(self, m: int) -> int:
        """How many values these are (``m``, for one value every event has)."""
        if self.numbers is not None:
            return len(self.numbers)
        return m if self.lengths is None else len(self.lengths)


class ByField(NamedTuple):
    """States of one shape by field, as their producer made them: state ``i`` is
    ``shape[0] + columns[0] value i + shape[1] + ... + shape[-1]``."""

    shape: tuple[bytes, ...]
    columns: list[Values]

    def holds(self, states: Sequence[bytes]) -> bool:
        """Whether these could be ``states``: as many, the first, middle and last exactly
        (a check of the producer, not a proof: it owes every state exactly)."""
        m = len(states)
        if len(self.shape) != len(self.columns) + 1 or any(c.count(m) != m for c in self.columns):
            return False
        return all(self.state(i) == states[i] for i in {0, m // 2, m - 1})

    def state(self, i: int) -> bytes:
        """State ``i``, put back together."""
        return _template(self.shape) % tuple(column.value(i) for column in self.columns)


ByFields = Mapping[str, ByField]  # a commit's states of some topics, by field


def encode_group(states: Sequence[bytes], by_field: ByField | None = None) -> list[bytes]:
    """The pieces of one topic's group: shaped if its states share a shape with at least
    one hole (and there are two or more), else plain. ``by_field``: the states already
    split (taken when ``holds`` them). ValueError if something is too long."""
    if len(states) > 1:
        if by_field is None or not by_field.holds(states):
            by_field = split(states)
        if by_field is not None and len(by_field.shape) <= MAX_HOLES + 1:
            out = [N_HOLES.pack(SHAPED, len(by_field.shape) - 1)]
            out += [PIECE_LEN.pack(len(piece)) for piece in by_field.shape]
            out += by_field.shape
            for values in by_field.columns:
                kind, data = _column(values, len(states))
                out += [COLUMN.pack(kind, len(data)), data]
            return out
    return [bytes([PLAIN]), planes(array("I", map(len, states))), comma_joined(states)]


def split(states: Sequence[bytes]) -> ByField | None:
    """``states`` by field, if they share one shape with at least one hole; else None.

    They are split together, joined by ``_SEPARATOR`` (which none of them may hold, so
    that each one in the whole is where one state ends): the pieces between holes must
    then be the first state's shape over and over, its last and first pieces meeting
    at each separator."""
    first = HOLE.split(states[0])
    shape, n = first[0::2], len(first) // 2
    joined = _SEPARATOR.join(states)
    if not n or joined.count(_SEPARATOR) != len(states) - 1:
        return None
    parts = HOLE.split(joined)
    middle = shape[1:-1]
    seam = shape[-1] + _SEPARATOR + shape[0]
    pieces = [shape[0], *[*middle, seam] * (len(states) - 1), *middle, shape[-1]]
    if parts[0::2] != pieces:
        return None
    values = parts[1::2]
    return ByField(tuple(shape), [Values.of(values[j::n]) for j in range(n)])


def _column(values: Values, m: int) -> tuple[int, bytes]:
    """The narrowest kind that gives the ``m`` values back byte for byte, and its data."""
    if values.numbers is not None:
        numbers = values.numbers.tolist()
        if min(numbers) > -_LIMIT and max(numbers) < _LIMIT:
            return INTEGER, _steps(numbers)
        values = Values.of(list(map(b"%d".__mod__, numbers)))
    joined, lengths, _ = values
    if lengths is None:
        return SAME, joined
    width = lengths[0]
    alike = lengths.count(width) == m  # all of one length
    if alike:
        first = joined[:width]
        if joined == b",".join([first] * m):
            return SAME, first
    if _INTEGERS.fullmatch(joined):
        return INTEGER, _steps(list(map(int, joined.split(b","))))
    if alike and _hexadecimal(joined, width, m):
        return HEX, binascii.unhexlify(joined.replace(b'"', b"").replace(b",", b""))
    return TEXT, planes(lengths) + joined


def _steps(numbers: list[int]) -> bytes:
    """An integer column's data: the first number, then the differences, as planes."""
    return planes(array("q", [numbers[0], *map(operator.sub, numbers[1:], numbers)]))


def _hexadecimal(joined: bytes, width: int, m: int) -> bool:
    """Whether ``m`` values of ``width`` bytes, joined by commas, are each '"' then an
    even number of digits ``0-9a-f`` then '"' (found by slicing: no step per value)."""
    step = width + 1
    return (
        width >= 4
        and width % 2 == 0
        and joined[0::step] == b'"' * m
        and joined[width - 1 :: step] == b'"' * m
        and joined[width::step] == b"," * (m - 1)
        and joined.count(b'"') == 2 * m
        and joined.count(b",") == m - 1
        and not joined.translate(None, b'0123456789abcdef",')
    )


def comma_joined(values: Sequence[bytes]) -> bytes:
    """States or values back to back, separated by commas; ValueError beyond what a u32
    end can say."""
    joined = b",".join(values)
    if len(joined) > 0xFFFFFFFF:
        msg = f"event states of {len(joined)} bytes in one commit are too large"
        raise ValueError(msg)
    return joined


def ends_of(lengths: Iterable[int]) -> array[int]:
    """Where each of comma-joined items of these lengths ends (OverflowError past a u32)."""
    return array("I", map(operator.add, accumulate(lengths), count()))


def items(joined: bytes, ends: Sequence[int], lo: int, hi: int) -> bytes:
    """Items ``lo..hi-1`` of comma-joined ``joined`` whose items end at ``ends``, still
    joined by commas."""
    return joined[ends[lo - 1] + 1 if lo else 0 : ends[hi - 1]]


def _template(pieces: Sequence[bytes]) -> bytes:
    """Pieces as a ``%`` template, a ``%s`` between each two."""
    return b"%s".join(piece.replace(b"%", b"%%") for piece in pieces)


def planes(column: array[int]) -> bytes:
    """A column's values (little-endian) as byte planes: byte j of every value, j = 0, 1, ..."""
    if _BIG:
        column.byteswap()
    data, width = column.tobytes(), column.itemsize
    return b"".join(data[j::width] for j in range(width))


def unplanes(code: str, raw: bytes, pos: int, n: int) -> array[int]:
    """The column of ``n`` values of type ``code`` whose planes start at ``pos``."""
    column = array(code)
    width = column.itemsize
    data = bytearray(n * width)
    for j in range(width):
        data[j::width] = raw[pos + j * n : pos + (j + 1) * n]
    column.frombytes(bytes(data))
    if _BIG:
        column.byteswap()
    return column


def _ends(raw: bytes, pos: int, m: int, where: int) -> array[int]:
    """Where each of ``m`` comma-joined items ends, from their length planes at ``pos``."""
    try:
        return ends_of(unplanes("I", raw, pos, m))
    except OverflowError:
        raise FormatError("event states do not add up", where) from None


class Column:
    """One hole's values, event by event (their kind's data checked to add up)."""

    __slots__ = ("_ends", "_numbers", "data", "kind", "lengths", "m", "step", "width")

    def __init__(self, kind: int, data: bytes, m: int, where: int) -> None:
        self.kind, self.data, self.m = kind, data, m
        self._ends: array[int] | None = None
        self._numbers: list[int] | None = None
        self.lengths = b""  # a text column's length planes
        self.width = 0
        self.step = 0  # a text column's values all of one length: that length plus one
        if kind == TEXT:
            if len(data) < 4 * m:
                raise FormatError("incomplete text column", where)
            self.lengths, self.data = data[: 4 * m], data[4 * m :]
            planes = [self.lengths[j * m : (j + 1) * m] for j in range(4)]
            total = sum(sum(plane) << (8 * j) for j, plane in enumerate(planes))
            if total + m - 1 != len(self.data):  # then no end overflows a u32
                raise FormatError("text column does not add up", where)
            if all(plane.count(plane[:1]) == m for plane in planes):
                self.step = (len(self.data) + 1) // m
        elif kind == INTEGER:
            if len(data) != 8 * m:
                raise FormatError("integer column does not add up", where)
        elif kind == HEX:
            self.width = len(data) // m
            if not self.width or len(data) != m * self.width:
                raise FormatError("hex column does not add up", where)
        elif kind != SAME:
            raise FormatError(f"unknown column kind {kind}", where)

    @property
    def ends(self) -> array[int]:
        """Where each value of a text column ends in ``data`` (read when first asked for)."""
        if self._ends is None:
            self._ends = ends_of(unplanes("I", self.lengths, 0, self.m))
        return self._ends

    def values(self, lo: int, hi: int) -> list[bytes]:
        """The values of events ``lo..hi-1`` (ranks in the group)."""
        if self.kind == TEXT:
            data, step = self.data, self.step
            if step:
                return [data[i : i + step - 1] for i in range(lo * step, hi * step, step)]
            ends = self.ends
            starts = [ends[lo - 1] + 1 if lo else 0, *(e + 1 for e in ends[lo : hi - 1])]
            return [data[s:e] for s, e in zip(starts, ends[lo:hi], strict=True)]
        if self.kind == SAME:
            return [self.data] * (hi - lo)
        if self.kind == INTEGER:
            return [b"%d" % n for n in self.numbers()[lo:hi]]
        w, data = self.width, self.data
        return [b'"%s"' % data[i * w : i * w + w].hex().encode() for i in range(lo, hi)]

    def value(self, r: int) -> bytes:
        """The value of event ``r``."""
        if self.kind == TEXT:
            if self.step:
                return self.data[r * self.step : (r + 1) * self.step - 1]
            return items(self.data, self.ends, r, r + 1)
        if self.kind == SAME:
            return self.data
        if self.kind == INTEGER:
            return b"%d" % self.numbers()[r]
        w = self.width
        return b'"%s"' % self.data[r * w : r * w + w].hex().encode()

    def text(self, lo: int, hi: int) -> bytes:
        """The values of events ``lo..hi-1`` joined by commas."""
        if self.kind == TEXT:
            if self.step:
                return self.data[lo * self.step : hi * self.step - 1]
            return items(self.data, self.ends, lo, hi)
        return b",".join(self.values(lo, hi))

    def numbers(self) -> list[int]:
        """An integer column's values."""
        if self._numbers is None:
            self._numbers = list(accumulate(unplanes("q", self.data, 0, self.m)))
        return self._numbers


class Group:
    """One topic's states in an ``EFC4`` commit: ``shape`` (None when plain) and its
    columns, or the states joined by commas with where each ends."""

    __slots__ = (
        "_each",
        "_reads",
        "_template",
        "_varying",
        "columns",
        "end",
        "ends",
        "m",
        "shape",
        "states",
    )

    def __init__(self, raw: bytes, pos: int, m: int) -> None:
        """Decode the group of ``m`` events at ``pos``; ``end`` is where it stops.
        FormatError (offset in ``raw``) if it does not add up."""
        size = len(raw)
        self.m = m
        self._each: list[bytes] | None = None
        self._template = b""
        self._varying: list[Column] = []  # the columns of more than one value
        self._reads = 0  # states put back one by one
        self.shape: tuple[bytes, ...] | None = None
        self.columns: list[Column] = []
        self.ends: array[int] | None = None
        self.states = b""
        if pos >= size:
            raise FormatError("incomplete event states", pos)
        if raw[pos] == PLAIN:
            pos += 1
            if pos + 4 * m > size:
                raise FormatError("incomplete event states", pos)
            self.ends = _ends(raw, pos, m, pos)
            pos += 4 * m
            end = pos + (self.ends[-1] if m else 0)
            if end > size:
                raise FormatError("event states run past the body", pos)
            self.states = raw[pos:end]
            self.end = end
            return
        if raw[pos] != SHAPED or pos + N_HOLES.size > size:
            raise FormatError("unknown or incomplete event states", pos)
        n_holes = N_HOLES.unpack_from(raw, pos)[1]
        pos += N_HOLES.size
        if not m or not n_holes or pos + 4 * (n_holes + 1) > size:
            raise FormatError("incomplete event shape", pos)
        lengths = struct.unpack_from(f"<{n_holes + 1}I", raw, pos)
        pos += 4 * (n_holes + 1)
        shape = []
        for length in lengths:
            if pos + length > size:
                raise FormatError("event shape runs past the body", pos)
            shape.append(raw[pos : pos + length])
            pos += length
        self.shape = tuple(shape)
        for _ in range(n_holes):
            if pos + COLUMN.size > size:
                raise FormatError("incomplete column", pos)
            kind, length = COLUMN.unpack_from(raw, pos)
            start = pos + COLUMN.size
            if start + length > size:
                raise FormatError("column runs past the body", pos)
            self.columns.append(Column(kind, raw[start : start + length], m, pos))
            pos = start + length
        self.end = pos

    def state(self, r: int) -> bytes:
        """The state of the group's event ``r``."""
        if self.shape is None:
            assert self.ends is not None
            return items(self.states, self.ends, r, r + 1)
        if self._each is not None:
            return self._each[r]
        self._reads += 1
        if not r or self._reads > self.m // 8:  # read through: put them all back, once
            return self._states()[r]
        template = self.template()
        return template % tuple(column.value(r) for column in self._varying)

    def joined(self, lo: int, hi: int) -> bytes:
        """The states of events ``lo..hi-1`` joined by commas."""
        if self.shape is None:
            assert self.ends is not None
            return items(self.states, self.ends, lo, hi)
        return b",".join(self._states()[lo:hi])

    def template(self) -> bytes:
        """A shaped group's shape as a ``%`` template: the value of each hole whose values
        are all one in place, a ``%s`` for each other (``varying``)."""
        if not self._template:
            assert self.shape is not None
            pieces = [self.shape[0]]
            for column, piece in zip(self.columns, self.shape[1:], strict=True):
                if column.kind == SAME:
                    pieces[-1] += column.data + piece
                else:
                    pieces.append(piece)
            self._template = _template(pieces)
            self._varying = [column for column in self.columns if column.kind != SAME]
        return self._template

    def _states(self) -> list[bytes]:
        """A shaped group's states, put back together once: for a run of them, for its
        first state, or once an eighth of them were asked for one by one (a stream's
        events are a few of each of many commits: each is put back by itself)."""
        if self._each is None:
            template, m = self.template(), self.m
            rows = zip(*(column.values(0, m) for column in self._varying), strict=True)
            self._each = [template % row for row in rows] if self._varying else [template % ()] * m
        return self._each


class Fields:
    """The states of events ``lo..hi-1`` of a shaped group, by field: the shape they
    share, and each hole's values as a JSON array's items (``text``)."""

    __slots__ = ("group", "hi", "lo")

    def __init__(self, group: Group, lo: int, hi: int) -> None:
        self.group, self.lo, self.hi = group, lo, hi

    @property
    def shape(self) -> tuple[bytes, ...]:
        assert self.group.shape is not None
        return self.group.shape

    def __len__(self) -> int:
        return self.hi - self.lo

    def text(self, hole: int) -> bytes:
        """Hole ``hole``'s values, joined by commas."""
        return self.group.columns[hole].text(self.lo, self.hi)

    def joined(self) -> bytes:
        """The states themselves, joined by commas."""
        return self.group.joined(self.lo, self.hi)
