"""The on-disk commit format of the file event store, shared by reader and writer.

docs/FORMAT.md is the specification; this module is its only implementation.
All integers are little-endian. A commit is one frame; ``EFC1`` and ``EFC2`` are::

    commit   := commit1 | commit2
    commit1  := "EFC1" flags:u16 reserved:u16 body_len:u32 n_events:u32
                first_id:u64 body_crc:u32 header_crc:u32 body1   (header: 32 bytes)
    body1    := [tracking] event1{n_events}
    event1   := event_len:u32 event_crc:u32 rest                 (rest is event_len bytes)
    commit2  := "EFC2" flags:u16 codec:u8 reserved:u8 body_len:u32 n_events:u32
                first_id:u64 raw_len:u32 body_crc:u32 header_crc:u32 body2
                                                                 (header: 36 bytes)
    body2    := codec(raw2), body_len bytes; raw2 is raw_len bytes
    raw2     := [tracking] event2{n_events}
    event2   := event_len:u32 rest
    tracking := name_len:u16 name:utf8 notification_id:u64       (if flags & 1)
    rest     := id:u64 version:i64 id_kind:u8 oid_len:u16 topic_len:u16
                state_len:u32 oid topic state

``header_crc`` is CRC-32 of the header bytes before it, ``body_crc`` CRC-32 of
the body as stored (for a compressed commit: after compression), ``event_crc``
CRC-32 of ``rest``. ``codec`` 0 stores ``raw2`` as it is, 1 is one zstd frame.
``EFC3`` and ``EFC4`` share ``EFC2``'s header, their bodies starting with the names
they add to their segment's originator dictionary (``new_names``); their columns are
``columns.py``'s and ``shapes.py``'s.
"""

from __future__ import annotations

import functools
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import count
from typing import TYPE_CHECKING, Any, NamedTuple
from uuid import UUID

from eventfold.infra.compression import zstd_module

if TYPE_CHECKING:
    from eventsourcing.persistence import StoredEvent

MAGIC = b"EFC1"
HEADER = struct.Struct("<4sHHIIQI")  # everything but header_crc
HEADER_SIZE = HEADER.size + 4
MAGIC2 = b"EFC2"
HEADER2 = struct.Struct("<4sHBBIIQII")  # everything but header_crc
HEADER2_SIZE = HEADER2.size + 4
MAGIC3 = b"EFC3"  # the EFC2 header's layout; the body starts with new dictionary names
HEADER3_SIZE = HEADER2_SIZE
MAGIC4 = b"EFC4"  # EFC3 with each topic's states in a group (``shapes.py``)
MAX_HEADER_SIZE = max(HEADER_SIZE, HEADER2_SIZE)
NAMES_HEAD = struct.Struct("<IIII")  # an EFC3 body's names_len, known, n_new, names_crc
CODEC_NONE = 0
CODEC_ZSTD = 1
ZSTD_LEVEL = 1  # chosen by measurement: docs/FORMAT.md, "Compression"
EVENT_PREFIX = struct.Struct("<II")
NAME = struct.Struct("<BH")  # id_kind, oid_len: before an originator id in EFC2 and EFC3
# An event1 record's prefix and fixed fields in one unpack (its event checksum
# skipped: a fold reads commits whose body checksum holds).
RECORD1 = struct.Struct("<I4xQqBHHI")
LENGTH = struct.Struct("<I")
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
    """A decoded commit header (``version`` 1 to 4: ``EFC1`` to ``EFC4``)."""

    flags: int
    body_len: int
    n_events: int
    first_id: int
    body_crc: int
    version: int = 1
    codec: int = CODEC_NONE
    raw_len: int = -1  # the uncompressed columns' length (versions 2 to 4)

    @property
    def size(self) -> int:
        """The header's own length."""
        return HEADER_SIZE if self.version == 1 else HEADER2_SIZE

    @property
    def frame_len(self) -> int:
        return self.size + self.body_len


class FormatError(ValueError):
    """Bytes that are not a well-formed commit; ``offset`` is relative to the frame.

    ``incomplete``: the bytes end before the header does (a torn tail, at the end of a log).
    """

    def __init__(self, reason: str, offset: int = 0, *, incomplete: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.offset = offset
        self.incomplete = incomplete


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
    """``encode_event`` for a batch, numbered from ``first_id`` (same bytes, less work):
    ``event1`` records, for a commit of version 1.

    Each originator id and topic is encoded once per batch (cached by the id's
    object identity: the columns keep the ids alive for the call).
    """
    if len({len(column) for column in events}) > 1:
        msg = "event columns of different lengths"
        raise ValueError(msg)
    largest = max(map(len, events.states), default=0)
    if largest > MAX_STATE:
        msg = f"event state of {largest} bytes is too large"
        raise ValueError(msg)
    parts: dict[int, tuple[int, int, int, bytes, str]] = {}  # kind, lengths, bytes, topic
    fixed, prefix, join = EVENT_FIXED.pack, EVENT_PREFIX.pack, b"".join
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
    kind, oid = encode_originator(originator_id)
    topic_bytes = topic.encode("utf-8")
    if len(topic_bytes) > MAX_SHORT:
        msg = "originator id and topic must each encode to at most 65535 bytes"
        raise ValueError(msg)
    return kind, len(oid), len(topic_bytes), oid + topic_bytes, topic


def encode_originator(originator_id: UUID | str) -> tuple[int, bytes]:
    """An originator id's kind and bytes (a UUID's 16, or a string's UTF-8)."""
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
    """Frame ``event1`` records (and an optional tracking record) as one ``EFC1`` commit."""
    flags, body = _raw_body(events, tracking)
    head = HEADER.pack(MAGIC, flags, 0, len(body), len(events), first_id, crc32(body))
    return head + LENGTH.pack(crc32(head)) + body


def encode_commit2(
    first_id: int,
    n_events: int,
    columns: list[bytes],
    tracking: tuple[str, int] | None,
    *,
    codec: int = CODEC_ZSTD,
    level: int = ZSTD_LEVEL,
) -> bytes:
    """Frame ``n_events`` events as columns (``columns.encode_columns``' pieces) and an
    optional tracking record as one ``EFC2`` commit.

    The body is compressed as a whole, then checksummed; a body that compression
    would not make smaller is stored as it is (codec 0).
    """
    return _columnar(MAGIC2, first_id, n_events, b"", columns, tracking, codec, level)


def encode_commit3(
    first_id: int,
    n_events: int,
    names: bytes,
    columns: list[bytes],
    tracking: tuple[str, int] | None,
    *,
    grouped: bool = False,
    codec: int = CODEC_ZSTD,
    level: int = ZSTD_LEVEL,
) -> bytes:
    """Frame ``n_events`` events as one ``EFC3`` commit (``grouped``: ``EFC4``, its states
    a group a topic): ``names`` (the new names of the segment's originator dictionary,
    ``columns.encode_columns3``'s section), then the columns and an optional tracking
    record, compressed as a whole (as it is, codec 0, when compression would not make
    them smaller); the body checksummed as stored."""
    magic = MAGIC4 if grouped else MAGIC3
    return _columnar(magic, first_id, n_events, names, columns, tracking, codec, level)


def _columnar(
    magic: bytes,
    first_id: int,
    n_events: int,
    names: bytes,
    columns: list[bytes],
    tracking: tuple[str, int] | None,
    codec: int,
    level: int,
) -> bytes:
    """An ``EFC2`` or ``EFC3`` commit: ``names`` (``EFC3``'s section; empty for
    ``EFC2``), then the columns and tracking record compressed as a whole (as they
    are, codec 0, when compression would not make them smaller), the body
    checksummed as stored."""
    flags, raw = _raw_body(columns, tracking)
    stored = raw
    if codec == CODEC_ZSTD:
        stored = _ZSTD.compress(raw, options=_options(level))
        if len(stored) >= len(raw):
            codec, stored = CODEC_NONE, raw
    body = names + stored
    if len(raw) > 0xFFFFFFFF or len(body) > 0xFFFFFFFF:
        msg = f"a commit of {len(raw) + len(names)} bytes is too large"
        raise ValueError(msg)
    head = HEADER2.pack(
        magic, flags, codec, 0, len(body), n_events, first_id, len(raw), crc32(body)
    )
    return head + LENGTH.pack(crc32(head)) + body


def _raw_body(events: list[bytes], tracking: tuple[str, int] | None) -> tuple[int, bytes]:
    """The flags and the uncompressed body of a commit of these events."""
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
    return flags, b"".join(parts)


_COLUMNAR = {MAGIC2: 2, MAGIC3: 3, MAGIC4: 4}
_ZSTD = zstd_module()  # imported now: a commit may be written as an interpreter shuts down


@functools.cache
def _options(level: int) -> dict[Any, int]:
    """zstd's parameters: the level, and the frame's own checksum of what it holds (so a
    body whose commit checksum was made to fit still does not decompress unnoticed)."""
    parameter = _ZSTD.CompressionParameter
    return {parameter.compression_level: level, parameter.checksum_flag: 1}


def decode_header(data: bytes | memoryview) -> Header:
    """Decode and check a commit header at the start of ``data`` (32 or 36 bytes, by its
    magic); raise FormatError if it is not one (``incomplete`` if ``data`` ends first)."""
    raw = bytes(data[:MAX_HEADER_SIZE])
    magic = raw[:4]
    if magic in _COLUMNAR:
        if len(raw) < HEADER2_SIZE:
            raise FormatError("incomplete commit header", incomplete=True)
        fields = HEADER2.unpack_from(raw)
        (header_crc,) = LENGTH.unpack_from(raw, HEADER2.size)
        if crc32(raw[: HEADER2.size]) != header_crc:
            raise FormatError("bad commit header (magic or header checksum)")
        _, flags, codec, _, body_len, n_events, first_id, raw_len, body_crc = fields
        if codec not in (CODEC_NONE, CODEC_ZSTD):
            raise FormatError(f"unknown commit codec {codec}")
        version = _COLUMNAR[magic]
        return Header(flags, body_len, n_events, first_id, body_crc, version, codec, raw_len)
    if len(raw) < HEADER_SIZE:
        raise FormatError("incomplete commit header", incomplete=True)
    magic, flags, _reserved, body_len, n_events, first_id, body_crc = HEADER.unpack_from(raw)
    (header_crc,) = LENGTH.unpack_from(raw, HEADER.size)
    if magic != MAGIC or crc32(raw[: HEADER.size]) != header_crc:
        raise FormatError("bad commit header (magic or header checksum)")
    return Header(flags, body_len, n_events, first_id, body_crc)


def raw_body(header: Header, body: bytes | memoryview) -> bytes | memoryview:
    """The checked, uncompressed body of a commit: its checksum verified, then (after an
    ``EFC3`` body's names) decompressed to exactly ``raw_len`` bytes. FormatError (offset
    in the body as stored) if not."""
    if crc32(body) != header.body_crc:
        raise FormatError("commit checksum mismatch", 0)
    at = 0
    if header.version >= 3:
        if len(body) < NAMES_HEAD.size:
            raise FormatError("incomplete originator names", 0)
        at = NAMES_HEAD.size + NAMES_HEAD.unpack_from(body)[0]
        if at > len(body):
            raise FormatError("originator names run past the body", 0)
        body = memoryview(body)[at:]
    if header.codec == CODEC_NONE:
        if header.version >= 2 and len(body) != header.raw_len:
            raise FormatError("commit body length does not match its header", at)
        return body
    zstd = _ZSTD
    try:
        decompressor = zstd.ZstdDecompressor()
        raw: bytes = decompressor.decompress(body, header.raw_len + 1)
        complete = decompressor.eof and not decompressor.unused_data
    except zstd.ZstdError as e:
        raise FormatError(f"compressed commit body does not decompress: {e}", at) from None
    if not complete or len(raw) != header.raw_len:
        msg = (
            f"compressed commit body decompresses to {len(raw):,} bytes, "
            f"not the {header.raw_len:,} its header says"
        )
        raise FormatError(msg, at)
    return raw


Name = tuple[int, bytes]  # an originator id's kind and bytes, as a commit holds them


def new_names(body: bytes | memoryview) -> tuple[int, list[Name]]:
    """The names an ``EFC3`` body (its checksum verified) adds to its segment's originator
    dictionary, and ``known``: how many the dictionary holds before them.
    FormatError names the offset in the body of what does not add up."""
    if len(body) < NAMES_HEAD.size:
        raise FormatError("incomplete originator names", 0)
    names_len, known, n_new, names_crc = NAMES_HEAD.unpack_from(body)
    end = NAMES_HEAD.size + names_len
    if end > len(body):
        raise FormatError("originator names run past the body", 0)
    section = bytes(body[:end])
    if crc32(section[NAMES_HEAD.size :], crc32(section[:12])) != names_crc:
        raise FormatError("originator names checksum mismatch", 0)
    names: list[Name] = []
    append, unpack, pos = names.append, NAME.unpack_from, NAMES_HEAD.size
    for _ in range(n_new):
        if pos + NAME.size > end:
            raise FormatError("incomplete originator id", pos)
        kind, length = unpack(section, pos)
        pos += NAME.size
        append((kind, section[pos : pos + length]))
        pos += length
    if pos != end:
        raise FormatError("originator names do not add up to their length", min(pos, end))
    return known, names


def tracking_of(header: Header, raw: bytes | memoryview) -> tuple[tuple[str, int] | None, int]:
    """The tracking record of an uncompressed body (or None), and where its events begin."""
    if not header.flags & FLAG_TRACKING:
        return None, 0
    if len(raw) < TRACKING_PREFIX.size:
        raise FormatError("incomplete tracking record", 0)
    (name_len,) = TRACKING_PREFIX.unpack_from(raw, 0)
    pos = TRACKING_PREFIX.size + name_len
    if pos + TRACKING_ID.size > len(raw):
        raise FormatError("incomplete tracking record", 0)
    try:
        name = bytes(raw[TRACKING_PREFIX.size : pos]).decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError("tracking name is not UTF-8", 0) from None
    (tracked_id,) = TRACKING_ID.unpack_from(raw, pos)
    return (name, tracked_id), pos + TRACKING_ID.size


def event_starts(header: Header, raw: bytes | memoryview, pos: int) -> list[int]:
    """Where each event's ``rest`` starts in the body of an ``EFC1`` commit whose events
    begin at ``pos``. Lengths are checked to add up; the events themselves are not
    decoded. FormatError names the offset in ``raw``."""
    prefix = EVENT_PREFIX.size
    unpack, size, minimum = LENGTH.unpack_from, len(raw), EVENT_FIXED.size
    starts: list[int] = []
    append = starts.append
    for _ in range(header.n_events):
        if pos + prefix > size:
            raise FormatError("incomplete event record", pos)
        (length,) = unpack(raw, pos)
        if length < minimum or pos + prefix + length > size:
            raise FormatError("event record length out of range", pos)
        append(pos + prefix)
        pos += prefix + length
    if pos != size:
        raise FormatError("commit body has trailing bytes", pos)
    return starts


Dictionary = Callable[[], Sequence[Name]]  # a segment's originator names before a commit


def decode_body(
    header: Header, body: bytes | memoryview, dictionary: Dictionary | None = None
) -> tuple[tuple[str, int] | None, list[tuple[int, RecordedEvent]]]:
    """Check and decode a commit body.

    Returns the tracking record and ``(offset_in_body, event)`` pairs (for a
    commit of version 2 to 4: ``(index, event)``). ``dictionary`` gives the names
    of the segment's originator dictionary before the commit (needed for an
    ``EFC3`` commit whose events name earlier ones). Raises FormatError naming
    the offset (relative to the body as stored) of what is wrong; inside a
    compressed body, the reason names the uncompressed offset.
    """
    raw = raw_body(header, body)
    if header.version >= 2:
        from eventfold.infra.filestore.columns import Columns  # it builds on this module

        names = None
        if header.version >= 3:
            known, new = new_names(body)
            names = (known, new, dictionary or _no_dictionary)
        try:
            tracking, start = tracking_of(header, raw)
            columns = Columns(
                bytes(raw), start, header.n_events, header.first_id, names, header.version == 4
            )
            return tracking, [(i, columns.event(i)) for i in range(header.n_events)]
        except FormatError as e:
            where = f" (at byte {e.offset:,} of the commit's uncompressed body)"
            raise FormatError(e.reason + where, stored_at(header, body)) from None
    return _decode_events(header, raw)


def stored_at(header: Header, body: bytes | memoryview) -> int:
    """Where a commit's stored columns start in its body (after an ``EFC3`` or ``EFC4``
    body's names)."""
    if header.version < 3 or len(body) < NAMES_HEAD.size:
        return 0
    return NAMES_HEAD.size + int(NAMES_HEAD.unpack_from(body)[0])


def _no_dictionary() -> Sequence[Name]:
    raise FormatError("the commit names originators of earlier commits, not given", 0)


def _decode_events(
    header: Header, body: bytes | memoryview
) -> tuple[tuple[str, int] | None, list[tuple[int, RecordedEvent]]]:
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
    """Decode one ``event1`` record at ``pos``; return it and the offset after it."""
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
