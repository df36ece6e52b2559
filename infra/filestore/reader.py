"""Reading a log: events by notification id, streams by originator, pages of states.

Every record read is checked (its checksum, and that it is the event the index
says); a record that is not makes the index suspect: it is rebuilt from the log
and the read tried again, and a second failure is damage to the log itself.
"""

from __future__ import annotations

import functools
import os
import struct
from collections.abc import Iterator, Sequence

from eventfold.infra import fileio
from eventfold.infra.errors import StoreCorruptedError
from eventfold.infra.filestore.format import (
    EVENT_FIXED,
    EVENT_PREFIX,
    MAX_HEADER_SIZE,
    RECORD1,
    FormatError,
    RecordedEvent,
    decode_header,
    decode_rest,
    pack_location,
    unpack_location,
)
from eventfold.infra.filestore.runs import IndexDamagedError
from eventfold.infra.filestore.shapes import Fields
from eventfold.infra.filestore.state import Commit, LogState

READ_CHUNK = 256 * 1024
_ID = struct.Struct("<Q")


class Reading(LogState):
    """Reads of a log, in any process."""

    def read_events(self, nids: Sequence[int]) -> list[RecordedEvent]:
        """Read events by notification id, verifying each record's checksum and id."""
        with self._lock:
            return self._indexed(lambda: self._read_events(nids)) if nids else []

    def _read_events(self, nids: Sequence[int]) -> list[RecordedEvent]:
        reader = _CommitReader(self)
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
        reader = _CommitReader(self)
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

    def scan_joined(
        self, first: int, last: int, topic: str, page: int = 2000
    ) -> Iterator[tuple[list[int], bytes]]:
        """Pages of the events ``first..last`` with ``topic``: their notification ids, and
        their states joined by commas (so that JSON states are one array's items).

        The fast path of a full fold: commits are read whole and checksummed, no
        event object is built, other topics are skipped unread, and the states of
        an ``EFC2`` or ``EFC3`` commit's events of the topic are one slice of its body.
        """
        for ids, parts in self.scan_parts(first, last, topic, page):
            yield ids, b",".join([p if isinstance(p, bytes) else p.joined() for p in parts])

    def scan_parts(
        self, first: int, last: int, topic: str, page: int = 2000
    ) -> Iterator[tuple[list[int], list[bytes | Fields]]]:
        """Pages of the events ``first..last`` with ``topic``: their notification ids, and
        their states in parts, in order: states joined by commas, or an ``EFC4`` commit's
        states of one shape by field (``shapes.Fields``), never put back together."""
        wanted = topic.encode("utf-8")
        location: int | None = None  # where the next page's first commit is, once known
        while first <= last:
            with self._lock:
                ids, parts, first, location = self._indexed(
                    functools.partial(self._states, first, last, wanted, page, location)
                )
            if ids:
                yield ids, parts

    def _states(
        self, first: int, last: int, topic: bytes, page: int, location: int | None
    ) -> tuple[list[int], list[bytes | Fields], int, int]:
        """A page: the states of whole commits from ``first`` on, until at least ``page``
        states or event ``last``, as pieces to be joined by commas; and where the next
        page starts (id, commit location)."""
        if location is None:
            location = self.index.location_of(first)
        reader = _CommitReader(self)
        ids: list[int] = []
        pieces: list[bytes | Fields] = []
        while first <= last and len(ids) < page:
            commit = reader.commit_of(first, location)
            upto = min(last, commit.last_id)
            reader.states(commit, first, upto, topic, ids, pieces)
            first, location = upto + 1, commit.next
        return ids, pieces, first, location

    def corruption(self, location: int, reason: str) -> StoreCorruptedError:
        seg, off = unpack_location(location)
        return StoreCorruptedError(self._segment_path(seg), off, reason)


class _CommitReader:
    """Finds the commit that holds an event and reads it whole.

    The index gives a location at or before that commit; the reader walks
    commit headers forward from there (through a window of the segment, one
    pread per chunk) to the commit whose ids include the event, then reads its
    body: checksum, decompression, records located (``format.event_starts``).
    Anything that is not what the index says (a header that fails its check, an
    id the walk passes, a record of another id) raises ``IndexDamagedError``:
    the index is suspected first; rebuilding it from the log tells index damage
    from log damage.
    """

    def __init__(self, log: LogState) -> None:
        self._log = log
        self._cache = log._commits
        self._seg = -1
        self._start = 0
        self._buf = b""
        self._last: tuple[int, Commit] | None = None

    def commit_of(self, nid: int, location: int) -> Commit:
        """The commit holding event ``nid``, walking from the commit at ``location``."""
        last = self._last
        if last is not None:
            if last[1].first_id <= nid <= last[1].last_id:
                return last[1]
            if last[0] >= location and last[1].last_id < nid:
                location = last[1].next  # walk on from where the last read ended
        while True:
            commit = self.commit_at(location)
            if nid < commit.first_id:
                raise self._suspect(location, f"the index points past notification {nid}")
            if nid <= commit.last_id:
                return commit
            location = commit.next

    def commit_at(self, location: int) -> Commit:
        """The commit at ``location``, read whole (or from the cache)."""
        commit = self._cache.get(location)
        if commit is None:
            commit = self._read(location)
            self._cache.put(location, commit)
        self._last = (location, commit)
        return commit

    def _read(self, location: int) -> Commit:
        seg, off = unpack_location(location)
        fd = self._log._read_fd(seg)
        if fd is None:
            raise self._suspect(location, "segment is missing")
        if off >= os.fstat(fd).st_size and self._log._read_fd(seg + 1) is not None:
            seg, off = seg + 1, 0  # the end of a segment: its commits go on in the next one
            location = pack_location(seg, 0)
        head = self._window(seg, off, MAX_HEADER_SIZE)
        try:
            header = decode_header(head)
        except FormatError as e:
            raise self._suspect(location, e.reason) from None
        body = self._window(seg, off + header.size, header.body_len)
        if len(body) != header.body_len:
            raise self._suspect(location, "commit is cut short")
        log = self._log
        try:
            return Commit.open(
                header, body, pack_location(seg, off), lambda: log._segment_names(seg, off).names
            )
        except FormatError as e:
            raise self._suspect(location, e.reason) from None

    def _window(self, seg: int, off: int, size: int) -> memoryview:
        """Up to ``size`` bytes at ``off`` of segment ``seg``, through the read window."""
        rel = off - self._start
        if seg != self._seg or rel < 0 or rel + size > len(self._buf):
            fd = self._log._read_fd(seg)
            if fd is None:
                raise self._suspect(pack_location(seg, off), "segment is missing")
            self._seg, self._start = seg, off
            self._buf = fileio.read_exact(fd, max(READ_CHUNK, size), off)
            rel = 0
        return memoryview(self._buf)[rel : rel + size]

    def rest(self, nid: int, location: int) -> tuple[bytes, int, int]:
        """The raw body of the ``EFC1`` commit holding event ``nid``'s ``rest``, and where
        it starts and ends."""
        commit = self.commit_of(nid, location)
        i = nid - commit.first_id
        try:
            starts, ends = commit.spans()
        except FormatError as e:
            raise self._suspect(location, e.reason) from None
        raw, start = commit.raw, starts[i]
        if _ID.unpack_from(raw, start)[0] != nid:
            raise self._suspect(location, f"the commit's record {i} is not notification {nid}")
        return raw, start, ends[i]

    def event(self, nid: int, location: int) -> RecordedEvent:
        commit = self.commit_of(nid, location)
        try:
            if commit.columns is not None:
                return commit.columns.event(nid - commit.first_id)
            raw, start, end = self.rest(nid, location)
            return decode_rest(memoryview(raw)[start:end])
        except FormatError as e:
            raise self._suspect(location, e.reason) from None

    def parts(self, nid: int, location: int) -> tuple[int, bytes, bytes]:
        """(version, topic, state) of event ``nid``."""
        commit = self.commit_of(nid, location)
        columns = commit.columns
        if columns is not None:
            i = nid - commit.first_id
            return columns.versions[i], columns.topic(i), columns.state(i)
        raw, start, end = self.rest(nid, location)
        _, version, _, oid_len, topic_len, _ = EVENT_FIXED.unpack_from(raw, start)
        p = start + EVENT_FIXED.size + oid_len
        return version, raw[p : p + topic_len], raw[p + topic_len : end]

    def states(
        self,
        commit: Commit,
        first: int,
        last: int,
        topic: bytes,
        ids: list[int],
        states: list[bytes | Fields],
    ) -> None:
        """Add the ids and states of the events ``first..last`` of ``commit`` whose topic
        is ``topic`` (an ``EFC2``, ``EFC3`` or ``EFC4`` commit's in one part:
        ``Columns.part``; an ``EFC1`` commit's one by one, in one walk over its records,
        each checked to be the id it should be and to add up), no event object built."""
        base = commit.first_id
        if commit.columns is not None:
            part = commit.columns.part(first - base, last - base, topic)
            if part is not None:
                spans, joined = part
                for span in spans:
                    ids.extend(range(base + span.start, base + span.stop))
                states.append(joined)
            return
        raw, pos = commit.raw, commit.body_start
        unpack, fixed, prefix = RECORD1.unpack_from, RECORD1.size, EVENT_PREFIX.size
        wanted, size = len(topic), len(raw)
        skip, count = first - base, last - base + 1
        add_id, add_state = ids.append, states.append
        try:
            for i in range(count):
                length, event_id, _, _, oid_len, topic_len, state_len = unpack(raw, pos)
                end = pos + prefix + length
                if event_id != base + i or fixed + oid_len + topic_len + state_len != end - pos:
                    msg = f"the commit's record {i} is not notification {base + i}"
                    raise self._suspect(commit.location, msg)
                if i >= skip and topic_len == wanted:
                    p = pos + fixed + oid_len
                    if raw.startswith(topic, p):
                        add_id(event_id)
                        add_state(raw[p + wanted : end])
                pos = end
        except struct.error:
            raise self._suspect(commit.location, "the commit's records run past its body") from None
        if pos > size or (last == commit.last_id and pos != size):
            raise self._suspect(commit.location, "the commit's records do not add up")

    def _suspect(self, location: int, reason: str) -> IndexDamagedError:
        seg, off = unpack_location(location)
        return IndexDamagedError(self._log._segment_path(seg), off, reason)
