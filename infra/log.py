"""One append-only log of commits: segments, writer lock, recovery, reads.

A log is a directory (see docs/FORMAT.md). Any number of processes may read
it; one process at a time writes, holding ``LOCK`` with ``flock`` from its first
write until it closes. A commit is acknowledged only after it is written and
(with the default durable policy) fsynced. In memory nothing changes until
the commit is durable, so a failed call leaves nothing visible, and a failed
write or fsync poisons the writer until the log is reopened.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import struct
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import TypeVar
from uuid import UUID

from eventsourcing.persistence import IntegrityError, StoredEvent, Tracking

from eventfold.infra import failpoints, fileio
from eventfold.infra.errors import (
    StoreClosedError,
    StoreCorruptedError,
    StoreLockedError,
    StoreWriteError,
)
from eventfold.infra.logformat import (
    EVENT_FIXED,
    EVENT_PREFIX,
    HEADER_SIZE,
    TRACKING_ID,
    TRACKING_PREFIX,
    EventColumns,
    FormatError,
    RecordedEvent,
    crc32,
    decode_body,
    decode_header,
    decode_rest,
    encode_commit,
    encode_events,
    pack_position,
    unpack_position,
)
from eventfold.infra.logindex import LogIndex, Mark, originator_key
from eventfold.infra.logscan import CommitScanner, TornTail, segment_name
from eventfold.infra.runs import IndexDamagedError

logger = logging.getLogger("eventfold.store")
_T = TypeVar("_T")

READ_CHUNK = 256 * 1024
KEY_CACHE_SIZE = 65536  # originators whose index key is remembered by the writer


@dataclass(frozen=True)
class LogConfig:
    """Tunables of a log; see the README's environment table."""

    durable: bool = True
    segment_bytes: int = 64 * 1024 * 1024
    index_interval: int = 65536
    poll_interval: float = 0.05
    lock_timeout: float = 2.0


class Log:
    """An append-only log of commits in one directory, shared within a process."""

    def __init__(
        self, path: str, config: LogConfig, *, rebuild_index: bool = False
    ) -> None:
        self.path = path
        self.config = config
        self._lock: threading.RLock = threading.RLock()
        self._read_fds: dict[int, int] = {}
        self._keys: dict[UUID | str, bytes] = {}
        self._lock_fd: int | None = None
        self._write_fd: int | None = None
        self._poisoned: BaseException | None = None
        self._closed = False
        self._refs = 1
        self._listeners: set[threading.Event] = set()
        self._watcher: threading.Thread | None = None
        self.recovery_notes: list[str] = []
        self.frames_scanned = 0
        self.torn_tail: TornTail | None = None
        os.makedirs(path, exist_ok=True)
        self.index = LogIndex(path)
        self._open(rebuild_index)

    # -- opening and recovery ---------------------------------------------

    def _open(self, rebuild_index: bool) -> None:
        index_existed = self.index.exists()
        reason = self.index.load()
        if self.index.durable is not None:
            self._check_reaches(self.index.durable)  # the log holds every durable commit
        if reason is None:
            reason = self._checkpoint_mismatch()
        if rebuild_index:
            reason = "index rebuild requested"
        first_segment = self._segment_path(1)
        has_data = os.path.exists(first_segment) and os.path.getsize(first_segment) > 0
        if reason is None and not index_existed and has_data:
            reason, index_existed = "no index", True
        if reason:
            self.index.reset()
        self._adopt_checkpoint()
        have_lock = self._try_lock()
        try:
            if reason and index_existed:
                where = "" if reason.startswith(os.sep) else f"{self.index.dir}: "
                note = f"{where}{reason}; rebuilding the index from the log"
                self.recovery_notes.append(note)
                # An index that was never written (the writer stopped before its first
                # flush) or of an older format is routine; a damaged one is worth a warning.
                routine = reason in ("no index", "no index checkpoint", "index of an older format")
                (logger.info if routine else logger.warning)(note)
                if have_lock:
                    self.index.discard_files()
            elif have_lock:
                self.index.remove_strays()
            self._catch_up(flush=have_lock, every_segment=True)
            if have_lock:
                self._drop_torn_tail()
        finally:
            if have_lock:
                self._unlock()

    def _adopt_checkpoint(self) -> None:
        index = self.index
        self._next_id = index.covered + 1
        self._end = index.end if index.end is not None else pack_position(1, 0)
        self._last_commit = index.last_commit
        self.tracking = dict(index.tracking)
        self._since_flush = 0

    def _check_reaches(self, mark: Mark) -> None:
        """Raise ``StoreCorruptedError`` unless the log holds the commit ``mark`` names.

        The mark is the furthest commit the store recorded as durable: a log that
        no longer reaches it lost acknowledged commits, which is damage (exit 3),
        never a torn tail and never a reason to rebuild the index over the evidence.
        """
        if mark.last_commit is None:
            return
        seg, off = unpack_position(mark.last_commit)
        path = self._segment_path(seg)
        lost = (f"the store recorded commits up to notification {mark.covered:,} as durable "
                "(index checkpoint); committed data is missing or damaged")  # fmt: skip
        fd = self._read_fd(seg)
        if fd is None:
            raise StoreCorruptedError(path, 0, f"segment is missing: {lost}")
        try:
            header = decode_header(fileio.read_exact(fd, HEADER_SIZE, off))
        except FormatError as e:
            raise StoreCorruptedError(path, off, f"{e.reason}: {lost}") from None
        body = fileio.read_exact(fd, header.body_len, off + HEADER_SIZE)
        if len(body) < header.body_len:
            msg = f"commit cut short at byte {off + HEADER_SIZE + len(body)}: {lost}"
            raise StoreCorruptedError(path, off, msg)
        try:
            decode_body(header, body)
        except FormatError as e:
            at = off + HEADER_SIZE + e.offset
            raise StoreCorruptedError(path, at, f"{e.reason}: {lost}") from None
        last = header.first_id + header.n_events - 1
        if pack_position(seg, off + header.frame_len) != mark.end or last != mark.covered:
            raise StoreCorruptedError(path, off, f"not the commit recorded there: {lost}")

    def _checkpoint_mismatch(self) -> str | None:
        """Check that the checkpoint's last commit is where it says, or say why not."""
        index = self.index
        if index.end is None:
            return None
        if index.last_commit is None:
            return None if index.covered == 0 else "index checkpoint has no last commit"
        try:
            self._check_reaches(Mark(index.covered, index.last_commit, index.end))
        except StoreCorruptedError:
            return "index checkpoint does not match the log"
        return None

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

    def _catch_up(self, *, flush: bool, every_segment: bool = False) -> None:
        """Apply the commits after ``self._end``; stop at the end or a torn tail.

        ``every_segment``: list the directory, so that a missing segment in the
        middle is damage rather than the end of the log (opening does this).
        """
        durable = self.index.durable
        seg, _ = unpack_position(self._end)
        scanner = CommitScanner(
            self.path, self._end, self._next_id, durable_end=durable.end if durable else 0,
            last_segment=None if every_segment else seg,
        )  # fmt: skip
        index, key_of = self.index, originator_key
        for commit in scanner:
            for body_offset, event in commit.events:
                index.add(event.id, key_of(event.originator_id), event.originator_version,
                          commit.event_position(body_offset))  # fmt: skip
            if commit.tracking is not None:
                self.tracking[commit.tracking[0]] = commit.tracking[1]
            self._next_id += commit.header.n_events
            self._last_commit = pack_position(commit.segment, commit.offset)
            self._end = commit.end
            self._since_flush += commit.header.n_events + 1
            self.frames_scanned += 1
            if flush and self._since_flush >= self.config.index_interval:
                self._flush_index()
        self._end = scanner.end
        self.torn_tail = scanner.torn_tail

    def _drop_torn_tail(self) -> None:
        """Writer only: keep a copy of a torn tail, then truncate it."""
        tail = self.torn_tail
        if tail is None:
            return
        torn_dir = os.path.join(self.path, "torn")
        os.makedirs(torn_dir, exist_ok=True)
        fileio.remove_temporary(torn_dir)
        name = f"{os.path.basename(tail.path)}-{tail.offset}-{time.time_ns()}.bin"
        copy = os.path.join(torn_dir, name)
        with open(tail.path, "rb") as src:
            src.seek(tail.offset)
            fileio.atomic_write(copy, src.read())
        fd = os.open(tail.path, os.O_WRONLY)
        try:
            os.ftruncate(fd, tail.offset)
            fileio.fsync(fd)
        finally:
            os.close(fd)
        note = (
            f"{tail.path}: dropped a torn tail of {tail.length} bytes at byte offset "
            f"{tail.offset} (an unacknowledged commit); copy kept in {copy}"
        )
        self.recovery_notes.append(note)
        logger.warning(note)
        self.torn_tail = None

    def rebuild_index(self, reason: str) -> None:
        """Rebuild the index from the log after it failed a check (the log is scanned whole).

        Persisted when this process can write the log; in memory otherwise. A log
        that is itself damaged raises ``StoreCorruptedError`` here, naming the place.
        """
        with self._lock:
            note = f"{self.index.dir}: {reason}; rebuilding the index from the log"
            self.recovery_notes.append(note)
            logger.warning(note)
            writer = self._lock_fd is not None
            have_lock = writer or self._try_lock()
            try:
                if have_lock:
                    self.index.discard_files()
                else:
                    self.index.reset()
                self._adopt_checkpoint()
                self._catch_up(flush=have_lock, every_segment=True)
                if have_lock:
                    self._flush_index()
            finally:
                if have_lock and not writer:
                    self._unlock()

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

    # -- the writer lock -----------------------------------------------------

    def _try_lock(self) -> bool:
        self._lock_fd = fileio.try_flock(os.path.join(self.path, "LOCK"))
        return self._lock_fd is not None

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _become_writer(self) -> None:
        deadline = time.monotonic() + self.config.lock_timeout
        while not self._try_lock():
            if time.monotonic() >= deadline:
                holder = self._lock_holder()
                msg = (
                    f"{self.path}: the store is being written by another process"
                    f"{holder}; a store takes exactly one writer process at a time"
                )
                raise StoreLockedError(msg)
            time.sleep(0.02)
        try:
            self._catch_up(flush=True)
            self._drop_torn_tail()
            seg, _ = unpack_position(self._end)
            path = self._segment_path(seg)
            created = not os.path.exists(path)
            self._write_fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
            if created:
                fileio.fsync_dir(self.path)
        except BaseException:
            self._unlock()
            raise

    def recover(self) -> None:
        """Take the writer lock now (dropping a torn tail), persist the index, let go.

        ``StoreLockedError`` while another process writes (``check --repair``).
        """
        with self._lock:
            self._check_open()
            writer = self._lock_fd is not None
            if not writer:
                self._become_writer()
            try:
                self._flush_index()
            finally:
                if not writer:
                    self._release_writer()

    def _release_writer(self) -> None:
        if self._write_fd is not None:
            os.close(self._write_fd)
            self._write_fd = None
        self._unlock()

    def _lock_holder(self) -> str:
        return fileio.flock_holder(os.path.join(self.path, "LOCK"))

    @property
    def is_writer(self) -> bool:
        return self._lock_fd is not None

    @property
    def lock(self) -> threading.RLock:
        """The lock that serialises this log's readers and writers in-process."""
        return self._lock

    @property
    def usable(self) -> bool:
        """Open and not poisoned by a failed write."""
        return not self._closed and self._poisoned is None

    def _poison(self, error: BaseException) -> None:
        """After a failed write: refuse writes, and let go of the writer lock."""
        self._poisoned = error
        if self._write_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._write_fd)
            self._write_fd = None
        self._unlock()

    # -- writing -------------------------------------------------------------

    def append(
        self, stored_events: Sequence[StoredEvent], tracking: Tracking | None = None
    ) -> list[int]:
        """Commit events (and a tracking record) atomically; return their ids."""
        return self.append_columns(EventColumns.of(stored_events), tracking)

    def append_columns(self, events: EventColumns, tracking: Tracking | None = None) -> list[int]:
        """``append`` for events given as columns (the bulk write path)."""
        count = len(events.versions)
        with self._lock:
            self._check_open()
            if self._poisoned is not None:
                msg = (
                    f"{self.path}: an earlier write failed ({self._poisoned}); "
                    "the store refuses writes until it is reopened"
                )
                raise StoreWriteError(msg)
            if self._lock_fd is None:
                self._become_writer()
            if self._since_flush >= self.config.index_interval:
                self._guarded(self._flush_index)
            keys = self._indexed(
                lambda: self._check_unique(events.originator_ids, events.versions)
            )
            if tracking is not None:
                self._check_tracking(tracking)
            if not count and tracking is None:
                return []
            first = self._next_id
            try:
                encoded = encode_events(first, events)
                track = None
                if tracking is not None:
                    track = (tracking.application_name, tracking.notification_id)
                frame = encode_commit(first, encoded, track)
            except ValueError as e:
                raise IntegrityError(str(e)) from e
            seg, off = unpack_position(self._end)
            if off >= self.config.segment_bytes:
                seg, off = self._guarded(self._roll_segment)
            self._write_frame(frame, seg, off)
            position = off + HEADER_SIZE
            if track is not None:
                position += TRACKING_PREFIX.size + len(track[0].encode()) + TRACKING_ID.size
            base = pack_position(seg, position)
            positions = list(accumulate(map(len, encoded[:-1]), initial=base)) if encoded else []
            self.index.add_many(first, keys, events.versions, positions)
            if track is not None:
                self.tracking[track[0]] = track[1]
            self._next_id += count
            self._last_commit = pack_position(seg, off)
            self._end = pack_position(seg, off + len(frame))
            self._since_flush += count + 1
            self._notify()
            return list(range(first, first + count))

    def _check_unique(self, originator_ids: list[UUID | str], versions: list[int]) -> list[bytes]:
        """Raise IntegrityError if an event's (originator, version) is taken.

        Per originator one lookup of its highest indexed version settles every
        event above it (the common case: versions that only go up); anything
        else gets an exact check, against the batch and the index.
        """
        keys: list[bytes] = []
        highest: dict[bytes, int | None] = {}
        seen: set[tuple[bytes, int]] | None = None
        by_object: dict[int, bytes] = {}  # the columns keep the ids alive for the call
        for i, (originator_id, version) in enumerate(zip(originator_ids, versions, strict=True)):
            key = by_object.get(id(originator_id))
            if key is None:
                key = by_object[id(originator_id)] = self._key_of(originator_id)
            if key in highest:
                top = highest[key]
            else:
                top = highest[key] = self.index.max_version(key)
            if top is None or version > top:
                highest[key] = version
                keys.append(key)
                if seen is not None:
                    seen.add((key, version))
                continue
            if seen is None:
                seen = set(zip(keys, versions[:i], strict=True))
            if (key, version) in seen:
                msg = f"Stored events are not unique: {originator_id} v{version}"
                raise IntegrityError(msg)
            seen.add((key, version))
            nid = self.index.find(key, version)
            if nid is not None and self._same_originator(nid, originator_id):
                msg = (
                    f"Stored event already recorded: {originator_id} "
                    f"v{version} (notification {nid})"
                )
                raise IntegrityError(msg)
            keys.append(key)
        return keys

    def _key_of(self, originator_id: UUID | str) -> bytes:
        """``originator_key``, remembered for recently written originators."""
        key = self._keys.get(originator_id)
        if key is None:
            if len(self._keys) >= KEY_CACHE_SIZE:
                self._keys.clear()
            key = self._keys[originator_id] = originator_key(originator_id)
        return key

    def _same_originator(self, nid: int, originator_id: UUID | str) -> bool:
        return str(self.read_events([nid])[0].originator_id) == str(originator_id)

    def _check_tracking(self, tracking: Tracking) -> None:
        current = self.tracking.get(tracking.application_name)
        if current is not None and current >= tracking.notification_id:
            msg = (
                f"Tracking notification ID {tracking.notification_id} not greater "
                f"than current max tracking ID {current} "
                f"for {tracking.application_name!r}"
            )
            raise IntegrityError(msg)

    def _write_frame(self, frame: bytes, seg: int, off: int) -> None:
        assert self._write_fd is not None
        try:
            failpoints.reach("log.before-write")
            if failpoints.due("log.torn-write"):
                fileio.write_all(self._write_fd, frame[: len(frame) // 2], off)
                failpoints.die("log.torn-write")
            fileio.write_all(self._write_fd, frame, off)
            failpoints.reach("log.after-write")
            if self.config.durable:
                fileio.fsync(self._write_fd)
            failpoints.reach("log.after-fsync")
        except OSError as e:
            with contextlib.suppress(OSError):
                os.ftruncate(self._write_fd, off)
                fileio.fsync(self._write_fd)
            self._poison(e)
            msg = (
                f"{self._segment_path(seg)}: writing a commit at byte offset {off} "
                f"failed: {e}; nothing of it was recorded, and the store refuses "
                "writes until it is reopened"
            )
            raise StoreWriteError(msg) from e

    def _roll_segment(self) -> tuple[int, int]:
        seg, _ = unpack_position(self._end)
        new = seg + 1
        fd = os.open(self._segment_path(new), os.O_WRONLY | os.O_CREAT, 0o644)
        fileio.fsync_dir(self.path)
        assert self._write_fd is not None
        if not self.config.durable:  # a later checkpoint may record its commits as durable
            fileio.fsync(self._write_fd)
        os.close(self._write_fd)
        self._write_fd = fd
        self._end = pack_position(new, 0)
        return new, 0

    def _flush_index(self) -> None:
        """Persist the index; its checkpoint records the commits so far as durable."""
        if not self.config.durable and self._write_fd is not None:
            fileio.fsync(self._write_fd)  # with FILESTORE_DURABILITY=os, make it true first
        self.index.flush(self._last_commit, self._end, self.tracking)
        self._since_flush = 0

    def _guarded(self, step: Callable[[], _T]) -> _T:
        """Run a writer step; an OSError poisons the writer."""
        try:
            return step()
        except OSError as e:
            self._poison(e)
            msg = f"{self.path}: {e}; the store refuses writes until it is reopened"
            raise StoreWriteError(msg) from e

    # -- reading -------------------------------------------------------------

    def refresh(self) -> None:
        """Readers: pick up what another process committed since the last call."""
        with self._lock:
            self._check_open()
            if self._lock_fd is not None:
                return
            if self.index.mem_size > 2 * self.config.index_interval and not (
                self.index.reload_if_newer()
            ):
                self._adopt_checkpoint()
            self._catch_up(flush=False)

    @property
    def max_id(self) -> int:
        return self._next_id - 1

    def read_events(self, nids: Sequence[int]) -> list[RecordedEvent]:
        """Read events by notification id, verifying each record's checksum and id."""
        with self._lock:
            return self._indexed(lambda: self._read_events(nids)) if nids else []

    def _read_events(self, nids: Sequence[int]) -> list[RecordedEvent]:
        reader = _ChunkReader(self)
        positions = self.index.positions_of(nids)
        return [reader.event(nid, pos) for nid, pos in zip(nids, positions, strict=True)]

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
        positions = self.index.positions_of(nids)
        return [reader.parts(nid, pos) for nid, pos in zip(nids, positions, strict=True)]

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
        positions = self.index.positions(first, last)
        reader = _ChunkReader(self)
        ids: list[int] = []
        states: list[bytes] = []
        for nid, position in zip(range(first, last + 1), positions, strict=True):
            state = reader.state_if(nid, position, topic)
            if state is not None:
                ids.append(nid)
                states.append(state)
        return ids, states

    def corruption(self, position: int, reason: str) -> StoreCorruptedError:
        seg, off = unpack_position(position)
        return StoreCorruptedError(self._segment_path(seg), off, reason)

    # -- listeners (subscriptions) -------------------------------------------

    def listen(self, event: threading.Event) -> None:
        with self._lock:
            self._listeners.add(event)
            if self._watcher is None:
                self._watcher = threading.Thread(
                    target=_watch, args=(weakref.ref(self),), daemon=True
                )
                self._watcher.start()

    def unlisten(self, event: threading.Event) -> None:
        with self._lock:
            self._listeners.discard(event)

    def _notify(self) -> None:
        for listener in list(self._listeners):
            listener.set()

    def _has_news(self) -> bool:
        with self._lock:
            if self._closed:
                return False
            seg, off = unpack_position(self._end)
            if os.path.exists(self._segment_path(seg + 1)):
                return True
            fd = self._read_fd(seg)
            return fd is not None and os.fstat(fd).st_size > off

    # -- lifetime --------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError(f"{self.path}: the store is closed")

    def acquire(self) -> None:
        with self._lock:
            self._refs += 1

    def release(self) -> None:
        with self._lock:
            self._refs -= 1
            if self._refs <= 0:
                self.close()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            if self._lock_fd is not None and self._poisoned is None and self._since_flush:
                try:
                    self._flush_index()
                except OSError as e:  # the index trails the log: rebuilt next time
                    logger.warning("%s: index not flushed at close: %s", self.path, e)
            self._closed = True
            self._listeners.clear()
            for fd in self._read_fds.values():
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._read_fds.clear()
            if self._write_fd is not None:
                with contextlib.suppress(OSError):
                    os.close(self._write_fd)
                self._write_fd = None
            self.index.close()
            self._unlock()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


class _ChunkReader:
    """Reads event records through a window of the segment, one pread per chunk.

    A record that is not the event the index says (checksum, id, a position
    past the segment) raises ``IndexDamagedError``: the index is suspected
    first; rebuilding it from the log tells index damage from log damage.
    """

    def __init__(self, log: Log) -> None:
        self._log = log
        self._seg = -1
        self._start = 0
        self._buf = b""

    def _record(self, nid: int, position: int) -> memoryview:
        """The verified ``rest`` of the record at ``position``, which must be event ``nid``."""
        seg, off = unpack_position(position)
        rel = off - self._start
        if seg != self._seg or rel < 0 or rel + 8 > len(self._buf):
            self._load(seg, off, READ_CHUNK)
            rel = 0
        if rel + 8 > len(self._buf):
            raise self._suspect(position, f"no event record for notification {nid}")
        length, event_crc = EVENT_PREFIX.unpack_from(self._buf, rel)
        if rel + 8 + length > len(self._buf):
            self._load(seg, off, max(READ_CHUNK, 8 + length))
            rel = 0
        start = rel + 8
        rest = memoryview(self._buf)[start : start + length]
        if len(rest) != length or length < EVENT_FIXED.size or crc32(rest) != event_crc:
            raise self._suspect(position, f"event checksum mismatch (notification {nid})")
        (event_id,) = struct.unpack_from("<Q", rest)
        if event_id != nid:
            raise self._suspect(position, f"index points at event {event_id} for {nid}")
        return rest

    def event(self, nid: int, position: int) -> RecordedEvent:
        try:
            return decode_rest(self._record(nid, position))
        except FormatError as e:
            raise self._suspect(position, e.reason) from None

    def parts(self, nid: int, position: int) -> tuple[int, bytes, bytes]:
        """(version, topic, state) of the event at ``position`` (checksummed)."""
        rest = self._record(nid, position)
        _, version, _, oid_len, topic_len, _ = EVENT_FIXED.unpack_from(rest)
        p = EVENT_FIXED.size + oid_len
        return version, bytes(rest[p : p + topic_len]), bytes(rest[p + topic_len :])

    def state_if(self, nid: int, position: int, topic: bytes) -> bytes | None:
        """The state of the event at ``position`` if its topic is ``topic`` (checksummed)."""
        rest = self._record(nid, position)
        _, _, _, oid_len, topic_len, state_len = EVENT_FIXED.unpack_from(rest)
        p = EVENT_FIXED.size + oid_len
        if rest[p : p + topic_len] != topic:
            return None
        p += topic_len
        return bytes(rest[p : p + state_len])

    def _suspect(self, position: int, reason: str) -> IndexDamagedError:
        seg, off = unpack_position(position)
        return IndexDamagedError(self._log._segment_path(seg), off, reason)

    def _load(self, seg: int, off: int, size: int) -> None:
        fd = self._log._read_fd(seg)
        if fd is None:
            raise self._suspect(pack_position(seg, off), "segment is missing")
        self._seg, self._start = seg, off
        self._buf = fileio.read_exact(fd, size, off)


def _watch(ref: weakref.ReferenceType[Log]) -> None:
    """Notify subscriptions of commits made by other processes (polling)."""
    while True:
        log = ref()
        if log is None or log._closed:
            return
        interval = log.config.poll_interval
        try:
            if log._listeners and not log.is_writer and log._has_news():
                log._notify()
        except OSError:
            pass
        del log
        time.sleep(interval)
