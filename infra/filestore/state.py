"""What every part of a log shares: its state, its paths and files, its locks.

``Log`` (``log.py``) is put together from the parts beside this module: recovery
(``recovery.py``), the writer (``writer.py``), the reader (``reader.py``) and the
watcher of other processes' commits (``watcher.py``). Each is a mixin over this
state; none is used alone.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar
from uuid import UUID

from eventfold.infra import fileio
from eventfold.infra.errors import StoreClosedError, StoreCorruptedError
from eventfold.infra.filestore.columns import Columns
from eventfold.infra.filestore.format import (
    EVENT_PREFIX,
    Dictionary,
    FormatError,
    Header,
    Name,
    RecordedEvent,
    event_starts,
    new_names,
    raw_body,
    stored_at,
    tracking_of,
)
from eventfold.infra.filestore.index import LogIndex
from eventfold.infra.filestore.names import SegmentNames, cached
from eventfold.infra.filestore.runs import IndexDamagedError
from eventfold.infra.filestore.scan import TornTail, segment_name

_T = TypeVar("_T")
CACHED_COMMITS = 8  # commits a log keeps read (a compressed commit is read whole)


@dataclass(frozen=True)
class LogConfig:
    """Tunables of a log; see the README's environment table."""

    durable: bool = True
    compressed: bool = True  # new commits: EFC4 compressed with zstd; False: EFC1 commits
    segment_bytes: int = 64 * 1024 * 1024
    index_interval: int = 65536
    poll_interval: float = 0.05
    lock_timeout: float = 2.0


class Commit:
    """One commit read whole: its checksums verified, its body uncompressed.

    An ``EFC2``, ``EFC3`` or ``EFC4`` commit's events are its ``columns``. For an
    ``EFC1`` commit, where each event's record starts (``spans``) is found the first
    time one event is asked for; a fold walks the records itself.
    """

    __slots__ = (
        "_spans",
        "body_start",
        "columns",
        "first_id",
        "header",
        "last_id",
        "location",
        "next",
        "raw",
    )

    def __init__(
        self,
        header: Header,
        raw: bytes,
        body_start: int,
        location: int,
        next_at: int,
        columns: Columns | None = None,
    ) -> None:
        self.header = header
        self.columns = columns  # an EFC2, EFC3 or EFC4 commit's events
        self.location = location  # the packed location of its header
        self.first_id = header.first_id
        self.last_id = header.first_id + header.n_events - 1
        self.raw = raw
        self.body_start = body_start  # where the events begin (after a tracking record)
        self.next = next_at  # the packed location of the commit after this one
        self._spans: tuple[list[int], list[int]] | None = None

    @classmethod
    def open(
        cls,
        header: Header,
        body: bytes | memoryview,
        location: int,
        dictionary: Dictionary | None = None,
    ) -> Commit:
        """The commit at ``location`` whose header and stored body these are: the body's
        checksum verified and it decompressed, and an ``EFC2``, ``EFC3`` or ``EFC4``
        commit's columns checked to add up (``dictionary``: the segment's originator
        names before an ``EFC3`` or ``EFC4`` commit, asked for when an event names one
        of them). FormatError (offset
        in the body as stored; the reason names one inside the uncompressed columns) if
        not."""
        raw = bytes(raw_body(header, body))
        _, body_start = tracking_of(header, raw)
        columns = None
        if header.version >= 2:
            names = None
            if header.version >= 3:
                known, new = new_names(body)
                names = (known, new, dictionary or _no_dictionary)
            try:
                grouped = header.version == 4
                columns = Columns(raw, body_start, header.n_events, header.first_id, names, grouped)
            except FormatError as e:
                where = f" (at byte {e.offset:,} of the commit's uncompressed body)"
                raise FormatError(e.reason + where, stored_at(header, body)) from None
        next_at = location + header.frame_len  # within the segment: the offset's low bits
        return cls(header, raw, body_start, location, next_at, columns)

    def spans(self) -> tuple[list[int], list[int]]:
        """Where each ``EFC1`` event's ``rest`` starts and ends (FormatError if they do
        not add up)."""
        if self._spans is None:
            starts = event_starts(self.header, self.raw, self.body_start)
            ends = [start - EVENT_PREFIX.size for start in starts[1:]] + [len(self.raw)]
            self._spans = (starts, ends)
        return self._spans


def _no_dictionary() -> list[Name]:
    return []  # checked by the columns: an event names an earlier commit's originator


class CommitCache:
    """The commits a log read most recently (they are immutable once complete), and the
    originator dictionaries of the segments it read (``names``, at most two)."""

    def __init__(self, size: int = CACHED_COMMITS) -> None:
        self.size = size
        self.commits: dict[int, Commit] = {}
        self.names: dict[int, SegmentNames] = {}

    def get(self, location: int) -> Commit | None:
        return self.commits.get(location)

    def put(self, location: int, commit: Commit) -> None:
        if len(self.commits) >= self.size:
            del self.commits[next(iter(self.commits))]
        self.commits[location] = commit

    def clear(self) -> None:
        self.commits.clear()
        self.names.clear()


class LogState:
    """The state of one log, and the helpers every part uses."""

    path: str
    config: LogConfig
    index: LogIndex
    tracking: dict[str, int]
    recovery_notes: list[str]
    frames_scanned: int
    torn_tail: TornTail | None
    _lock: threading.RLock
    _read_fds: dict[int, int]
    _commits: CommitCache
    _originators: dict[int, tuple[UUID | str, bytes, Name]]  # by id(): see Writing._originator
    _lock_fd: int | None
    _read_only: OSError | None  # why this process cannot write the log, once it tried
    _write_fd: int | None
    _poisoned: BaseException | None
    _closed: bool
    _refs: int
    _listeners: set[threading.Event]
    _watcher: threading.Thread | None
    _next_id: int
    _end: int
    _last_commit: int | None
    _since_flush: int

    def _segment_path(self, number: int) -> str:
        return os.path.join(self.path, segment_name(number))

    def _read_fd(self, number: int) -> int | None:
        fd = self._read_fds.get(number)
        if fd is None:
            try:
                fd = os.open(self._segment_path(number), os.O_RDONLY)
            except FileNotFoundError:
                return None
            self._read_fds[number] = fd
        return fd

    def _segment_names(self, segment: int, offset: int) -> SegmentNames:
        """The originator dictionary of ``segment`` at least up to byte ``offset`` (where a
        commit starts): kept, and read further when needed (StoreCorruptedError if the
        segment's commits before ``offset`` do not add up)."""
        names = cached(self._commits.names, segment)
        if names.upto < offset:
            fd = self._read_fd(segment)
            path = self._segment_path(segment)
            if fd is None:
                raise StoreCorruptedError(path, 0, "segment is missing")
            names.extend(fd, path, offset)
        return names

    def _indexed(self, operation: Callable[[], _T]) -> _T:
        """Run a read of the index; if the index fails a check, rebuild it and run it again.

        A second failure is damage to the log itself.
        """
        try:
            return operation()
        except IndexDamagedError as e:
            self.rebuild_index(str(e))
        try:
            return operation()
        except IndexDamagedError as e:
            raise StoreCorruptedError(e.path, e.offset, e.reason) from None

    def _try_lock(self) -> bool:
        """Take the writer lock if free; False while another process writes, or when
        this process cannot write the log at all (``_read_only`` says why)."""
        if self._read_only is not None:
            return False
        try:
            self._lock_fd = fileio.try_flock(os.path.join(self.path, "LOCK"))
        except OSError as e:
            if not fileio.is_read_only(e):
                raise
            self._read_only = e  # a reader still reads everything; only writing is refused
            return False
        return self._lock_fd is not None

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError(f"{self.path}: the store is closed")

    # Parts of the log that other parts call (each is defined by its own part).

    def _catch_up(self, *, flush: bool, every_segment: bool = False) -> None:
        raise NotImplementedError

    def _drop_torn_tail(self) -> None:
        raise NotImplementedError

    def rebuild_index(self, reason: str) -> None:
        raise NotImplementedError

    def _flush_index(self, *, final: bool = False) -> None:
        raise NotImplementedError

    def _notify(self) -> None:
        raise NotImplementedError

    def read_events(self, nids: Sequence[int]) -> list[RecordedEvent]:
        raise NotImplementedError

    @property
    def is_writer(self) -> bool:
        return self._lock_fd is not None
