"""Reading a log: events by notification id, streams by originator, pages of states.

Every record read is checked (its checksum, and that it is the event the index
says); a record that is not makes the index suspect: it is rebuilt from the log
and the read tried again, and a second failure is damage to the log itself.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterator, Sequence

from eventfold.infra import fileio
from eventfold.infra.errors import StoreCorruptedError
from eventfold.infra.filestore.format import (
    EVENT_FIXED,
    EVENT_PREFIX,
    FormatError,
    RecordedEvent,
    crc32,
    decode_rest,
    pack_location,
    unpack_location,
)
from eventfold.infra.filestore.runs import IndexDamagedError
from eventfold.infra.filestore.state import LogState

READ_CHUNK = 256 * 1024


class Reading(LogState):
    """Reads of a log, in any process."""

    def read_events(self, nids: Sequence[int]) -> list[RecordedEvent]:
        """Read events by notification id, verifying each record's checksum and id."""
        with self._lock:
            return self._indexed(lambda: self._read_events(nids)) if nids else []

    def _read_events(self, nids: Sequence[int]) -> list[RecordedEvent]:
        reader = _ChunkReader(self)
        locations = self.index.locations_of(nids)
        return [reader.event(nid, pos) for nid, pos in zip(nids, locations, strict=True)]

    def read_stream(
        self, key: bytes, after: int | None, upto: int | None = None
    ) -> list[tuple[int, bytes, bytes]]:
        """(version, topic, state) of the events of the originator with index ``key`` above
        version ``after`` (up to ``upto``), in version order: each record verified, no event
        object built.

        Entries of another originator that shares the 16-byte key (never seen in
        practice) are not told apart here: callers that need certainty use ``read_events``.
        """
        with self._lock:
            pairs = self._indexed(lambda: self.index.versions(key, after))
            nids = [nid for version, nid in pairs if upto is None or version <= upto]
            return self._indexed(lambda: self._read_parts(nids)) if nids else []

    def _read_parts(self, nids: list[int]) -> list[tuple[int, bytes, bytes]]:
        reader = _ChunkReader(self)
        locations = self.index.locations_of(nids)
        return [reader.parts(nid, pos) for nid, pos in zip(nids, locations, strict=True)]

    def max_version(self, key: bytes) -> int | None:
        """The highest version of the originator with index ``key``, or None."""
        with self._lock:
            return self._indexed(lambda: self.index.max_version(key))

    def versions(self, key: bytes, after: int | None = None) -> list[tuple[int, int]]:
        """(version, notification id) of the events of the originator with index ``key``
        (those above version ``after``, if given), in version order."""
        with self._lock:
            return self._indexed(lambda: self.index.versions(key, after))

    def scan_states(
        self, first: int, last: int, topic: str, page: int = 2000
    ) -> Iterator[tuple[list[int], list[bytes]]]:
        """Pages of (notification ids, states) of the events ``first..last`` with ``topic``.

        The fast path of a full fold: each record's checksum is verified, but
        no event object is built and other topics are skipped unread.
        """
        wanted = topic.encode("utf-8")
        while first <= last:
            upto = min(last, first + page * 4 - 1)
            with self._lock:
                ids, states = self._indexed(functools.partial(self._states, first, upto, wanted))
            if ids:
                yield ids, states
            first = upto + 1

    def _states(self, first: int, last: int, topic: bytes) -> tuple[list[int], list[bytes]]:
        locations = self.index.locations(first, last)
        reader = _ChunkReader(self)
        ids: list[int] = []
        states: list[bytes] = []
        for nid, location in zip(range(first, last + 1), locations, strict=True):
            state = reader.state_if(nid, location, topic)
            if state is not None:
                ids.append(nid)
                states.append(state)
        return ids, states

    def corruption(self, location: int, reason: str) -> StoreCorruptedError:
        seg, off = unpack_location(location)
        return StoreCorruptedError(self._segment_path(seg), off, reason)


class _ChunkReader:
    """Reads event records through a window of the segment, one pread per chunk.

    A record that is not the event the index says (checksum, id, a location
    past the segment) raises ``IndexDamagedError``: the index is suspected
    first; rebuilding it from the log tells index damage from log damage.
    """

    def __init__(self, log: LogState) -> None:
        self._log = log
        self._seg = -1
        self._start = 0
        self._buf = b""

    def _record(self, nid: int, location: int) -> memoryview:
        """The verified ``rest`` of the record at ``location``, which must be event ``nid``."""
        seg, off = unpack_location(location)
        rel = off - self._start
        if seg != self._seg or rel < 0 or rel + 8 > len(self._buf):
            self._load(seg, off, READ_CHUNK)
            rel = 0
        if rel + 8 > len(self._buf):
            raise self._suspect(location, f"no event record for notification {nid}")
        length, event_crc = EVENT_PREFIX.unpack_from(self._buf, rel)
        if rel + 8 + length > len(self._buf):
            self._load(seg, off, max(READ_CHUNK, 8 + length))
            rel = 0
        start = rel + 8
        rest = memoryview(self._buf)[start : start + length]
        if len(rest) != length or length < EVENT_FIXED.size or crc32(rest) != event_crc:
            raise self._suspect(location, f"event checksum mismatch (notification {nid})")
        (event_id,) = struct.unpack_from("<Q", rest)
        if event_id != nid:
            raise self._suspect(location, f"index points at event {event_id} for {nid}")
        return rest

    def event(self, nid: int, location: int) -> RecordedEvent:
        try:
            return decode_rest(self._record(nid, location))
        except FormatError as e:
            raise self._suspect(location, e.reason) from None

    def parts(self, nid: int, location: int) -> tuple[int, bytes, bytes]:
        """(version, topic, state) of the event at ``location`` (checksummed)."""
        rest = self._record(nid, location)
        _, version, _, oid_len, topic_len, _ = EVENT_FIXED.unpack_from(rest)
        p = EVENT_FIXED.size + oid_len
        return version, bytes(rest[p : p + topic_len]), bytes(rest[p + topic_len :])

    def state_if(self, nid: int, location: int, topic: bytes) -> bytes | None:
        """The state of the event at ``location`` if its topic is ``topic`` (checksummed)."""
        rest = self._record(nid, location)
        _, _, _, oid_len, topic_len, state_len = EVENT_FIXED.unpack_from(rest)
        p = EVENT_FIXED.size + oid_len
        if rest[p : p + topic_len] != topic:
            return None
        p += topic_len
        return bytes(rest[p : p + state_len])

    def _suspect(self, location: int, reason: str) -> IndexDamagedError:
        seg, off = unpack_location(location)
        return IndexDamagedError(self._log._segment_path(seg), off, reason)

    def _load(self, seg: int, off: int, size: int) -> None:
        fd = self._log._read_fd(seg)
        if fd is None:
            raise self._suspect(pack_location(seg, off), "segment is missing")
        self._seg, self._start = seg, off
        self._buf = fileio.read_exact(fd, size, off)
