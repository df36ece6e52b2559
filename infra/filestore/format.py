"""The on-disk commit format of the file event store, shared by reader and writer.

docs/FORMAT.md is the specification; this module is its only implementation.
All integers are little-endian. A commit is one frame::

    commit  := header body
    header  := "EFC1" flags:u16 reserved:u16 body_len:u32 n_events:u32
               first_id:u64 body_crc:u32 header_crc:u32          (32 bytes)
    body    := [tracking] event{n_events}
    tracking:= name_len:u16 name:utf8 notification_id:u64        (if flags & 1)
    event   := event_len:u32 event_crc:u32 rest                  (rest is event_len bytes)
    rest    := id:u64 version:i64 id_kind:u8 oid_len:u16 topic_len:u16
               state_len:u32 oid topic state

``header_crc`` is CRC-32 of the 28 header bytes before it, ``body_crc`` CRC-32
of the body, ``event_crc`` CRC-32 of ``rest``.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import count
from typing import TYPE_CHECKING, NamedTuple
from uuid import UUID

if TYPE_CHECKING:
    from eventsourcing.persistence import StoredEvent

MAGIC = b"EFC1"
HEADER = struct.Struct("<4sHHIIQI")  # everything but header_crc
HEADER_SIZE = HEADER.size + 4
EVENT_PREFIX = struct.Struct("<II")
EVENT_FIXED = struct.Struct("<QqBHHI")
TRACKING_PREFIX = struct.Struct("<H")
TRACKING_ID = struct.Struct("<Q")
FLAG_TRACKING = 1

ID_KIND_STR = 0
ID_KIND_UUID = 1

MAX_SHORT = 0xFFFF
MAX_STATE = 0xFFFFFFFF - EVENT_FIXED.size - 2 * MAX_SHORT

# A location in the log is packed into one u64: segment number and byte offset.
OFFSET_BITS = 40
OFFSET_MASK = (1 << OFFSET_BITS) - 1

crc32 = zlib.crc32
_originators: dict[tuple[int, bytes], UUID | str] = {}  # decoded originator ids, recent


def pack_location(segment: int, offset: int) -> int:
    return (segment << OFFSET_BITS) | offset


def unpack_location(location: int) -> tuple[int, int]:
    return location >> OFFSET_BITS, location & OFFSET_MASK


@dataclass(frozen=True)
class Header:
    """A decoded commit header."""

    flags: int
    body_len: int
    n_events: int
    first_id: int
    body_crc: int

    @property
    def frame_len(self) -> int:
        return HEADER_SIZE + self.body_len


class FormatError(ValueError):
    """Bytes that are not a well-formed commit; ``offset`` is relative to the frame."""

    def __init__(self, reason: str, offset: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.offset = offset


class EventColumns(NamedTuple):
    """Events to append, as four parallel columns (what ``encode_events`` reads).

    The write path takes columns rather than ``StoredEvent`` objects, so that a
    bulk writer (ingest) need not build an object per event.
    """

    originator_ids: list[UUID | str]
    versions: list[int]
    topics: list[str]
    states: list[bytes]

    @classmethod
    def of(cls, events: Sequence[StoredEvent]) -> EventColumns:
        """The columns of the library's stored events."""
        return cls(
            [e.originator_id for e in events],
            [e.originator_version for e in events],
            [e.topic for e in events],
            [e.state for e in events],
        )


@dataclass(frozen=True)
class RecordedEvent:
    """One event as the log holds it."""

    id: int
    originator_id: UUID | str
    originator_version: int
    topic: str
    state: bytes


def encode_event(
    notification_id: int,
    originator_id: UUID | str,
    version: int,
    topic: str,
    state: bytes,
) -> bytes:
    """One event record (``encode_events`` of a single event)."""
    one = EventColumns([originator_id], [version], [topic], [state])
    return encode_events(notification_id, one)[0]


def encode_events(first_id: int, events: EventColumns) -> list[bytes]:
    """``encode_event`` for a batch, numbered from ``first_id`` (same bytes, less work).

    Each originator id and topic is encoded once per batch (cached by the id's
    object identity: the columns keep the ids alive for the call); this is the
    write path.
    """
    parts: dict[int, tuple[int, int, int, bytes, str]] = {}  # kind, lengths, bytes, topic
    fixed, prefix, join = EVENT_FIXED.pack, EVENT_PREFIX.pack, b"".join
    if len({len(column) for column in events}) > 1:
        msg = "event columns of different lengths"
        raise ValueError(msg)
    largest = max(map(len, events.states), default=0)
    if largest > MAX_STATE:
        msg = f"event state of {largest} bytes is too large"
        raise ValueError(msg)
    encoded: list[bytes] = []
    append = encoded.append
    for nid, originator_id, version, topic, state in zip(count(first_id), *events):
        known = parts.get(id(originator_id))
        if known is None or known[4] is not topic:
            known = parts[id(originator_id)] = _encode_parts(originator_id, topic)
        kind, oid_len, topic_len, oid_topic, _ = known
        rest = join((fixed(nid, version, kind, oid_len, topic_len, len(state)), oid_topic, state))
        append(prefix(len(rest), crc32(rest)) + rest)
    return encoded


def _encode_parts(originator_id: UUID | str, topic: str) -> tuple[int, int, int, bytes, str]:
    """An event's originator kind, id and topic lengths, id and topic bytes, and topic."""
    kind, oid = _encode_originator(originator_id)
    topic_bytes = topic.encode("utf-8")
    if len(topic_bytes) > MAX_SHORT:
        msg = "originator id and topic must each encode to at most 65535 bytes"
        raise ValueError(msg)
    return kind, len(oid), len(topic_bytes), oid + topic_bytes, topic


def _encode_originator(originator_id: UUID | str) -> tuple[int, bytes]:
    if isinstance(originator_id, UUID):
        return ID_KIND_UUID, originator_id.bytes
    oid = str(originator_id).encode("utf-8")
    if len(oid) > MAX_SHORT:
        msg = "originator id and topic must each encode to at most 65535 bytes"
        raise ValueError(msg)
    return ID_KIND_STR, oid


def encode_commit(
    first_id: int,
    events: list[bytes],
    tracking: tuple[str, int] | None,
) -> bytes:
    """Frame already encoded events (and an optional tracking record) as one commit."""
    parts: list[bytes] = []
    flags = 0
    if tracking is not None:
        name = tracking[0].encode("utf-8")
        if len(name) > MAX_SHORT:
            msg = "tracking application name must encode to at most 65535 bytes"
            raise ValueError(msg)
        flags |= FLAG_TRACKING
        parts += [TRACKING_PREFIX.pack(len(name)), name, TRACKING_ID.pack(tracking[1])]
    parts += events
    body = b"".join(parts)
    head = HEADER.pack(MAGIC, flags, 0, len(body), len(events), first_id, crc32(body))
    return head + struct.pack("<I", crc32(head)) + body


def decode_header(data: bytes | memoryview) -> Header:
    """Decode and check a 32-byte header; raise FormatError if it is not one."""
    raw = bytes(data[:HEADER_SIZE])
    if len(raw) < HEADER_SIZE:
        raise FormatError("incomplete commit header")
    magic, flags, _reserved, body_len, n_events, first_id, body_crc = HEADER.unpack_from(raw)
    (header_crc,) = struct.unpack_from("<I", raw, HEADER.size)
    if magic != MAGIC or crc32(raw[: HEADER.size]) != header_crc:
        raise FormatError("bad commit header (magic or header checksum)")
    return Header(flags, body_len, n_events, first_id, body_crc)


def decode_body(
    header: Header, body: bytes | memoryview
) -> tuple[tuple[str, int] | None, list[tuple[int, RecordedEvent]]]:
    """Check and decode a commit body.

    Returns the tracking record and ``(offset_in_body, event)`` pairs. Raises
    FormatError naming the offset (relative to the body) of what is wrong.
    """
    if crc32(body) != header.body_crc:
        raise FormatError("commit checksum mismatch", 0)
    view = memoryview(body)
    pos = 0
    tracking = None
    if header.flags & FLAG_TRACKING:
        (name_len,) = TRACKING_PREFIX.unpack_from(view, pos)
        pos += TRACKING_PREFIX.size
        name = bytes(view[pos : pos + name_len]).decode("utf-8")
        pos += name_len
        (tracked_id,) = TRACKING_ID.unpack_from(view, pos)
        pos += TRACKING_ID.size
        tracking = (name, tracked_id)
    events = []
    for i in range(header.n_events):
        start = pos
        event, pos = decode_event(view, pos)
        if event.id != header.first_id + i:
            raise FormatError("event id does not follow the commit's first id", start)
        events.append((start, event))
    if pos != len(view):
        raise FormatError("commit body has trailing bytes", pos)
    return tracking, events


def decode_event(view: memoryview | bytes, pos: int = 0) -> tuple[RecordedEvent, int]:
    """Decode one event record at ``pos``; return it and the offset after it."""
    view = memoryview(view)
    if pos + EVENT_PREFIX.size > len(view):
        raise FormatError("incomplete event record", pos)
    length, event_crc = EVENT_PREFIX.unpack_from(view, pos)
    start = pos + EVENT_PREFIX.size
    end = start + length
    if end > len(view) or length < EVENT_FIXED.size:
        raise FormatError("event record length out of range", pos)
    rest = view[start:end]
    if crc32(rest) != event_crc:
        raise FormatError("event checksum mismatch", pos)
    try:
        return decode_rest(rest), end
    except FormatError as e:
        raise FormatError(e.reason, pos) from None


def decode_rest(rest: memoryview | bytes) -> RecordedEvent:
    """Decode an event record's ``rest`` (its checksum already verified)."""
    nid, version, kind, oid_len, topic_len, state_len = EVENT_FIXED.unpack_from(rest)
    p = EVENT_FIXED.size
    if p + oid_len + topic_len + state_len != len(rest):
        raise FormatError("event field lengths do not add up")
    oid_raw = bytes(rest[p : p + oid_len])
    originator_id = _originators.get((kind, oid_raw))
    if originator_id is None:  # one object per originator: a stream's events share it
        if len(_originators) >= 4096:
            _originators.clear()
        originator_id = _originators[kind, oid_raw] = (
            UUID(bytes=oid_raw) if kind == ID_KIND_UUID else oid_raw.decode("utf-8")
        )
    p += oid_len
    topic = bytes(rest[p : p + topic_len]).decode("utf-8")
    p += topic_len
    state = bytes(rest[p : p + state_len])
    return RecordedEvent(nid, originator_id, version, topic, state)
