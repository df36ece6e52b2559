"""The bodies of ``EFC2``, ``EFC3`` and ``EFC4`` commits: their events as columns
(docs/FORMAT.md)::

    raw2    := [tracking] head topics names topic_col name_col version_col end_col states
    head    := n_topics:u16 n_names:u32
    topics  := (topic_len:u16 topic){n_topics}
    names   := (id_kind:u8 oid_len:u16 oid){n_names}
    topic_col   := u8{n_events}       -- each event's topic, an index into topics
    name_col    := u32{n_events}      -- each event's originator, an index into names
    version_col := i64{n_events}
    end_col     := u32{n_events}      -- where each event's state ends in states
    states  := state ("," state)*     -- state i is states[end[i-1] + 1 : end[i]]

    raw3    := [tracking] n_topics:u16 topics topic_col name_planes version_planes
               length_planes states
    name_planes    := plane{4}        -- u32 indexes into the segment's originator dictionary
    version_planes := plane{8}        -- i64 versions
    length_planes  := plane{4}        -- u32 length of each state
    plane j := byte j of every value of the column (little-endian), in event order

``EFC3``'s originator ids are not in ``raw3``: its body holds the names the commit
adds to its segment's dictionary before the compressed ``raw3`` (``format.new_names``).
``EFC4``'s ``raw4`` is ``raw3`` with a group of states for each topic in place of the
lengths and states (``shapes.py``)::

    raw4    := [tracking] n_topics:u16 topics topic_col name_planes version_planes
               group{n_topics}

Event ``i`` has notification id ``first_id + i``. The states of consecutive
events are one slice of ``states``, already separated by commas: a fold of
JSON states decodes a commit's worth with one call (``Columns.part``).
"""

from __future__ import annotations

import re
import struct
import sys
from array import array
from collections.abc import Mapping
from functools import cache
from itertools import compress
from operator import ge
from uuid import UUID
from zlib import crc32

from eventfold.infra.filestore.format import (
    ID_KIND_UUID,
    MAX_SHORT,
    NAME,
    NAMES_HEAD,
    Dictionary,
    EventColumns,
    FormatError,
    Name,
    RecordedEvent,
    encode_originator,
)
from eventfold.infra.filestore.shapes import (
    ByFields,
    Fields,
    Group,
    comma_joined,
    encode_group,
    ends_of,
    items,
    planes,
    unplanes,
)

HEAD = struct.Struct("<HI")
SHORT = struct.Struct("<H")
MAX_TOPICS = 255  # a commit with more distinct topics is written as EFC1
_BIG = sys.byteorder == "big"


def encode_columns(events: EventColumns) -> list[bytes] | None:
    """The pieces of ``raw2`` after the tracking record, or None if the events have
    more than ``MAX_TOPICS`` distinct topics. ValueError if something is too long."""
    ids, versions, topics, states = _same_lengths(events)
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
    topic_bytes = _topic_bytes(topic_of)
    joined = comma_joined(states)
    ends = ends_of(map(len, states))
    version_col = array("q", versions)
    if _BIG:
        for column in (name_col, version_col, ends):
            column.byteswap()
    head = HEAD.pack(len(topic_of), len(names))
    columns = [bytes(topic_col), name_col.tobytes(), version_col.tobytes(), ends.tobytes()]
    return [head, *topic_bytes, *names, *columns, joined]


def encode_columns3(
    events: EventColumns,
    lookup: Mapping[Name, int],
    known: int,
    limit: int,
    *,
    grouped: bool = False,
    by_field: ByFields | None = None,
    names_of: Mapping[int, Name] | None = None,
) -> tuple[bytes, list[bytes], list[Name]] | None:
    """An ``EFC3`` commit's parts (``grouped``: an ``EFC4`` commit's): its names section,
    the pieces of ``raw3`` (``raw4``) after the tracking record, and the names it adds to
    its segment's dictionary (``lookup``: the ``known`` names the dictionary holds, to
    their numbers). ``by_field``: the states of some topics already split by field;
    ``names_of``: the originators' names (``encode_originator``) by ``id()`` of each.
    None if the events have more than ``MAX_TOPICS`` distinct topics, or if the
    dictionary would grow past ``limit`` names. ValueError if something is too long."""
    ids, versions, topics, states = _same_lengths(events)
    topic_of = {topic: t for t, topic in enumerate(dict.fromkeys(topics))}
    if len(topic_of) > MAX_TOPICS:
        return None
    # A step per distinct originator object (the columns keep them alive for the call),
    # in the order of their first events; then one lookup per event, in C.
    number_of: dict[int, int] = {}
    added: dict[Name, int] = {}
    for key, originator_id in dict(zip(map(id, ids), ids, strict=True)).items():
        name = encode_originator(originator_id) if names_of is None else names_of[key]
        n = lookup.get(name)
        if n is None:
            n = added.get(name)
            if n is None:
                n = added[name] = known + len(added)
        number_of[key] = n
    if known + len(added) > limit:
        return None
    topic_col = bytearray(map(topic_of.__getitem__, topics))
    name_col = array("I", map(number_of.__getitem__, map(id, ids)))
    section = b"".join(NAME.pack(kind, len(oid)) + oid for kind, oid in added)
    head = NAMES_HEAD.pack(len(section), known, len(added), 0)[:12]
    names = head + struct.pack("<I", crc32(section, crc32(head))) + section
    pieces = [SHORT.pack(len(topic_of)), *_topic_bytes(topic_of), bytes(topic_col)]
    pieces += [planes(name_col), planes(array("q", versions))]
    if grouped:
        by_topic = [list(states)]  # one topic: every state
        if len(topic_of) != 1:
            by_topic = [
                list(compress(states, map(t.__eq__, topic_col))) for t in range(len(topic_of))
            ]
        given = by_field or {}
        for topic, group in zip(topic_of, by_topic, strict=True):
            pieces += encode_group(group, given.get(topic))
    else:
        pieces += [planes(array("I", map(len, states))), comma_joined(states)]
    return names, pieces, list(added)


def _same_lengths(events: EventColumns) -> EventColumns:
    """``events``, whose four columns must be of one length (ValueError if not)."""
    ids, versions, topics, states = events
    if not len(ids) == len(versions) == len(topics) == len(states):
        msg = "event columns of different lengths"
        raise ValueError(msg)
    return events


def _topic_bytes(topic_of: dict[str, int]) -> list[bytes]:
    topic_bytes = []
    for topic in topic_of:
        encoded = topic.encode("utf-8")
        if len(encoded) > MAX_SHORT:
            msg = "originator id and topic must each encode to at most 65535 bytes"
            raise ValueError(msg)
        topic_bytes.append(SHORT.pack(len(encoded)) + encoded)
    return topic_bytes


class Columns:
    """A decoded ``raw2``, ``raw3`` or (``grouped``) ``raw4`` (from ``start``, after its
    tracking record): checked to add up. ``names`` (``raw3`` and ``raw4``): the
    dictionary's size before the commit (``known``), the names the commit adds, and the
    dictionary before it (asked for only when an event names an earlier commit's
    originator). A ``raw4``'s states are ``groups``, one a topic.

    FormatError names the offset in ``raw`` of what does not add up.
    """

    __slots__ = (
        "_counted",
        "_dictionary",
        "_ranks",
        "ends",
        "first_id",
        "groups",
        "known",
        "name_col",
        "names",
        "states",
        "topic_col",
        "topics",
        "versions",
    )

    def __init__(
        self,
        raw: bytes,
        start: int,
        n_events: int,
        first_id: int,
        names: tuple[int, list[Name], Dictionary] | None = None,
        grouped: bool = False,
    ) -> None:
        self.first_id = first_id
        size = len(raw)
        head = HEAD if names is None else SHORT
        if start + head.size > size:
            raise FormatError("incomplete column head", start)
        if names is None:
            n_topics, n_names = HEAD.unpack_from(raw, start)
        else:
            (n_topics,) = SHORT.unpack_from(raw, start)
        pos = start + head.size
        topics: list[bytes] = []
        for _ in range(n_topics):
            if pos + SHORT.size > size:
                raise FormatError("incomplete topic", pos)
            (length,) = SHORT.unpack_from(raw, pos)
            topics.append(raw[pos + SHORT.size : pos + SHORT.size + length])
            pos += SHORT.size + length
        if names is None:
            own: list[Name] = []
            for _ in range(n_names):
                if pos + NAME.size > size:
                    raise FormatError("incomplete originator id", pos)
                kind, length = NAME.unpack_from(raw, pos)
                own.append((kind, raw[pos + NAME.size : pos + NAME.size + length]))
                pos += NAME.size + length
            self.known, self.names, self._dictionary = 0, own, None
        else:
            self.known, self.names, self._dictionary = names
            n_names = self.known + len(self.names)
        n = n_events
        self.groups: list[Group] | None = None
        self._ranks: list[int] | None = None
        self._counted = 0
        self.topics = topics
        if grouped:
            self._grouped(raw, pos, n, n_topics, n_names)
            return
        if pos + 17 * n > size:
            raise FormatError("event columns run past the body", pos)
        self.topic_col = raw[pos : pos + n]
        self.states = raw[pos + 17 * n :]
        if names is None:
            self.name_col = _column("I", raw, pos + n, n)
            self.versions = _column("q", raw, pos + 5 * n, n)
            self.ends = _column("I", raw, pos + 13 * n, n)
            bad = n and any(map(ge, self.ends, self.ends[1:]))
        else:
            self.name_col = unplanes("I", raw, pos + n, n)
            self.versions = unplanes("q", raw, pos + 5 * n, n)
            lengths = unplanes("I", raw, pos + 13 * n, n)
            try:
                self.ends = ends_of(lengths)
            except OverflowError:
                raise FormatError("event columns do not add up", pos) from None
            bad = False
        if n and (
            bad
            or self.ends[-1] != len(self.states)
            or max(self.topic_col) >= n_topics
            or max(self.name_col) >= n_names
        ):
            raise FormatError("event columns do not add up", pos)
        if not n and self.states:
            raise FormatError("commit body has trailing bytes", pos)

    def _grouped(self, raw: bytes, pos: int, n: int, n_topics: int, n_names: int) -> None:
        """Decode a ``raw4``'s columns from ``pos``: topics, names, versions, then a group
        of states for each topic."""
        if pos + 13 * n > len(raw):
            raise FormatError("event columns run past the body", pos)
        self.topic_col = raw[pos : pos + n]
        self.name_col = unplanes("I", raw, pos + n, n)
        self.versions = unplanes("q", raw, pos + 5 * n, n)
        self.ends, self.states = array("I"), b""
        if n and (max(self.topic_col) >= n_topics or max(self.name_col) >= n_names):
            raise FormatError("event columns do not add up", pos)
        pos += 13 * n
        self.groups = []
        for t in range(n_topics):
            m = self.topic_col.count(t)
            if not m:
                raise FormatError(f"topic {t} names no event", pos)
            group = Group(raw, pos, m)
            self.groups.append(group)
            pos = group.end
        if pos != len(raw):
            raise FormatError("commit body has trailing bytes", pos)

    def rank(self, i: int) -> int:
        """How many events of event ``i``'s topic come before it in the commit (``raw4``):
        counted for the first few asked for, then read from a list made once."""
        if len(self.topics) == 1:
            return i
        if self._ranks is None:
            self._counted += 1
            if self._counted <= 16:
                return self.topic_col.count(self.topic_col[i : i + 1], 0, i)
            seen = [0] * len(self.topics)
            ranks = self._ranks = []
            for t in self.topic_col:
                ranks.append(seen[t])
                seen[t] += 1
        return self._ranks[i]

    def name(self, i: int) -> Name:
        """Event ``i``'s originator id (kind and bytes)."""
        n = self.name_col[i] - self.known
        if n >= 0:
            return self.names[n]
        assert self._dictionary is not None  # an EFC2 commit's indexes are its own
        dictionary = self._dictionary()
        if len(dictionary) < self.known:
            msg = f"the segment's originator dictionary holds {len(dictionary):,} names before"
            raise FormatError(f"{msg} the commit, not {self.known:,}", 0)
        return dictionary[n + self.known]

    def state(self, i: int) -> bytes:
        if self.groups is not None:
            return self.groups[self.topic_col[i]].state(self.rank(i))
        return items(self.states, self.ends, i, i + 1)

    def topic(self, i: int) -> bytes:
        return self.topics[self.topic_col[i]]

    def event(self, i: int) -> RecordedEvent:
        """Event ``i`` of the commit."""
        kind, oid = self.name(i)
        try:
            originator_id: UUID | str = UUID(bytes=oid) if kind == ID_KIND_UUID else oid.decode()
            topic = self.topic(i).decode("utf-8")
        except (ValueError, UnicodeDecodeError) as e:
            raise FormatError(f"event {i} does not decode: {e}", 0) from None
        nid = self.first_id + i
        return RecordedEvent(nid, originator_id, self.versions[i], topic, self.state(i))

    def part(self, lo: int, hi: int, topic: bytes) -> tuple[list[range], bytes | Fields] | None:
        """The events ``lo..hi`` (indexes) whose topic is ``topic``: their indexes as runs
        of consecutive ones, and their states, joined by commas or (a shaped group's)
        by field; None if there are none. Found without a step per event."""
        try:
            t = self.topics.index(topic)
        except ValueError:
            return None
        spans = [range(*m.span()) for m in _run_of(t).finditer(self.topic_col, lo, hi + 1)]
        if not spans:
            return None
        if self.groups is None:
            joined = b",".join(self._slice(span.start, span.stop) for span in spans)
            return spans, joined
        group = self.groups[t]
        first = self.topic_col.count(t, 0, spans[0].start)
        last = first + sum(map(len, spans))
        if group.shape is None:
            return spans, group.joined(first, last)
        return spans, Fields(group, first, last)

    def _slice(self, a: int, b: int) -> bytes:
        """The states of events ``a..b-1`` of a ``raw2`` or ``raw3``, joined by commas."""
        return items(self.states, self.ends, a, b)


@cache
def _run_of(topic: int) -> re.Pattern[bytes]:
    return re.compile(re.escape(bytes([topic])) + b"+")


def _column(code: str, raw: bytes, pos: int, n: int) -> array[int]:
    column = array(code)
    column.frombytes(raw[pos : pos + n * column.itemsize])
    if _BIG:
        column.byteswap()
    return column
