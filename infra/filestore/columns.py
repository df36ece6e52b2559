"""The body of an ``EFC2`` commit: its events as columns (docs/FORMAT.md)::

    raw2    := [tracking] head topics names topic_col name_col version_col end_col states
    head    := n_topics:u16 n_names:u32
    topics  := (topic_len:u16 topic){n_topics}
    names   := (id_kind:u8 oid_len:u16 oid){n_names}
    topic_col   := u8{n_events}       -- each event's topic, an index into topics
    name_col    := u32{n_events}      -- each event's originator, an index into names
    version_col := i64{n_events}
    end_col     := u32{n_events}      -- where each event's state ends in states
    states  := state ("," state)*     -- state i is states[end[i-1] + 1 : end[i]]

Event ``i`` has notification id ``first_id + i``. The states of consecutive
events are one slice of ``states``, already separated by commas: a fold of
JSON states decodes a commit's worth with one call (``Columns.runs``).
"""

from __future__ import annotations

import re
import struct
import sys
from array import array
from collections.abc import Iterator
from functools import cache
from itertools import accumulate, count
from operator import add, ge
from uuid import UUID

from eventfold.infra.filestore.format import (
    ID_KIND_UUID,
    MAX_SHORT,
    EventColumns,
    FormatError,
    RecordedEvent,
    encode_originator,
)

HEAD = struct.Struct("<HI")
SHORT = struct.Struct("<H")
NAME = struct.Struct("<BH")
MAX_TOPICS = 255  # a commit with more distinct topics is written as EFC1
SEPARATOR = b","
_BIG = sys.byteorder == "big"


def encode_columns(events: EventColumns) -> list[bytes] | None:
    """The pieces of ``raw2`` after the tracking record, or None if the events have
    more than ``MAX_TOPICS`` distinct topics. ValueError if something is too long."""
    ids, versions, topics, states = events
    if not len(ids) == len(versions) == len(topics) == len(states):
        msg = "event columns of different lengths"
        raise ValueError(msg)
    topic_of: dict[str, int] = {}
    by_object: dict[int, int] = {}  # the columns keep the ids alive for the call
    name_of: dict[tuple[int, bytes], int] = {}
    names: list[bytes] = []
    topic_col = bytearray()
    name_col = array("I")
    for originator_id, topic in zip(ids, topics, strict=True):
        t = topic_of.get(topic)
        if t is None:
            t = topic_of[topic] = len(topic_of)
            if t >= MAX_TOPICS:
                return None
        n = by_object.get(id(originator_id))
        if n is None:
            kind, oid = encode_originator(originator_id)
            n = name_of.get((kind, oid))
            if n is None:
                n = name_of[kind, oid] = len(names)
                names.append(NAME.pack(kind, len(oid)) + oid)
            by_object[id(originator_id)] = n
        topic_col.append(t)
        name_col.append(n)
    topic_bytes = []
    for topic in topic_of:
        encoded = topic.encode("utf-8")
        if len(encoded) > MAX_SHORT:
            msg = "originator id and topic must each encode to at most 65535 bytes"
            raise ValueError(msg)
        topic_bytes.append(SHORT.pack(len(encoded)) + encoded)
    joined = SEPARATOR.join(states)
    if len(joined) > 0xFFFFFFFF:
        msg = f"event states of {len(joined)} bytes in one commit are too large"
        raise ValueError(msg)
    ends = array("I", map(add, accumulate(map(len, states)), count()))  # separators before
    version_col = array("q", versions)
    if _BIG:
        for column in (name_col, version_col, ends):
            column.byteswap()
    head = HEAD.pack(len(topic_of), len(names))
    columns = [bytes(topic_col), name_col.tobytes(), version_col.tobytes(), ends.tobytes()]
    return [head, *topic_bytes, *names, *columns, joined]


class Columns:
    """A decoded ``raw2`` (from ``start``, after its tracking record): checked to add up.

    FormatError names the offset in ``raw`` of what does not.
    """

    __slots__ = (
        "ends",
        "first_id",
        "name_col",
        "names",
        "states",
        "topic_col",
        "topics",
        "versions",
    )

    def __init__(self, raw: bytes, start: int, n_events: int, first_id: int) -> None:
        self.first_id = first_id
        size = len(raw)
        if start + HEAD.size > size:
            raise FormatError("incomplete column head", start)
        n_topics, n_names = HEAD.unpack_from(raw, start)
        pos = start + HEAD.size
        topics: list[bytes] = []
        for _ in range(n_topics):
            if pos + SHORT.size > size:
                raise FormatError("incomplete topic", pos)
            (length,) = SHORT.unpack_from(raw, pos)
            topics.append(raw[pos + SHORT.size : pos + SHORT.size + length])
            pos += SHORT.size + length
        names: list[tuple[int, bytes]] = []
        for _ in range(n_names):
            if pos + NAME.size > size:
                raise FormatError("incomplete originator id", pos)
            kind, length = NAME.unpack_from(raw, pos)
            names.append((kind, raw[pos + NAME.size : pos + NAME.size + length]))
            pos += NAME.size + length
        n = n_events
        if pos + 17 * n > size:
            raise FormatError("event columns run past the body", pos)
        self.topic_col = raw[pos : pos + n]
        self.name_col = _column("I", raw, pos + n, n)
        self.versions = _column("q", raw, pos + 5 * n, n)
        self.ends = _column("I", raw, pos + 13 * n, n)
        self.states = raw[pos + 17 * n :]
        self.topics = topics
        self.names = names
        if n and (
            self.ends[-1] != len(self.states)
            or max(self.topic_col) >= n_topics
            or max(self.name_col) >= n_names
            or any(map(ge, self.ends, self.ends[1:]))
        ):
            raise FormatError("event columns do not add up", pos)
        if not n and self.states:
            raise FormatError("commit body has trailing bytes", pos)

    def state(self, i: int) -> bytes:
        start = self.ends[i - 1] + 1 if i else 0
        return self.states[start : self.ends[i]]

    def topic(self, i: int) -> bytes:
        return self.topics[self.topic_col[i]]

    def event(self, i: int) -> RecordedEvent:
        """Event ``i`` of the commit."""
        kind, oid = self.names[self.name_col[i]]
        try:
            originator_id: UUID | str = UUID(bytes=oid) if kind == ID_KIND_UUID else oid.decode()
            topic = self.topic(i).decode("utf-8")
        except (ValueError, UnicodeDecodeError) as e:
            raise FormatError(f"event {i} does not decode: {e}", 0) from None
        nid = self.first_id + i
        return RecordedEvent(nid, originator_id, self.versions[i], topic, self.state(i))

    def runs(self, lo: int, hi: int, topic: bytes) -> Iterator[tuple[int, int, bytes]]:
        """For the events ``lo..hi`` (indexes) whose topic is ``topic``: each run of
        consecutive ones as (first index, index after the last, their states joined by
        commas), found without a step per event."""
        try:
            t = self.topics.index(topic)
        except ValueError:
            return
        for match in _run_of(t).finditer(self.topic_col, lo, hi + 1):
            a, b = match.span()
            start = self.ends[a - 1] + 1 if a else 0
            yield a, b, self.states[start : self.ends[b - 1]]


@cache
def _run_of(topic: int) -> re.Pattern[bytes]:
    return re.compile(re.escape(bytes([topic])) + b"+")


def _column(code: str, raw: bytes, pos: int, n: int) -> array[int]:
    column = array(code)
    column.frombytes(raw[pos : pos + n * column.itemsize])
    if _BIG:
        column.byteswap()
    return column
