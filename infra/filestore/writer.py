"""The writer of a log: its lock, and appending commits durably, exactly once.

One process at a time writes, holding ``LOCK`` with ``flock`` from its first
write until it closes. A commit is acknowledged only after it is written and
(with the default durable policy) fsynced. In memory nothing changes until
the commit is durable, so a failed call leaves nothing visible, and a failed
write or fsync poisons the writer until the log is reopened.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Sequence
from typing import TypeVar
from uuid import UUID

from eventsourcing.persistence import IntegrityError, StoredEvent, Tracking

from eventfold.infra import failpoints, fileio
from eventfold.infra.errors import StoreLockedError, StoreReadOnlyError, StoreWriteError
from eventfold.infra.filestore import sortedrows
from eventfold.infra.filestore.columns import encode_columns, encode_columns3
from eventfold.infra.filestore.format import (
    EventColumns,
    Name,
    encode_commit,
    encode_commit2,
    encode_commit3,
    encode_events,
    encode_originator,
    pack_location,
    unpack_location,
)
from eventfold.infra.filestore.index import originator_key
from eventfold.infra.filestore.names import MAX_NAMES, SegmentNames
from eventfold.infra.filestore.shapes import ByFields
from eventfold.infra.filestore.state import LogState

_T = TypeVar("_T")
KEY_CACHE_SIZE = 1 << 18  # originator objects whose key and name the writer remembers
RISING_COLUMNS = 64  # events in a commit from which its versions are checked by column
Rising = tuple[dict[bytes, int], dict[bytes, int]]  # each key's first and last version


class Writing(LogState):
    """Appending to a log, as its one writer process."""

    def _become_writer(self) -> None:
        deadline = time.monotonic() + self.config.lock_timeout
        while not self._try_lock():
            if self._read_only is not None:
                problem = self._read_only.strerror or str(self._read_only)
                msg = f"{self.path} (writing needs its LOCK file: {problem})"
                raise StoreReadOnlyError(msg)
            if time.monotonic() >= deadline:
                holder = self._lock_holder()
                msg = (
                    f"{self.path}: the store is being written by another process"
                    f"{holder}; a store takes exactly one writer process at a time"
                )
                raise StoreLockedError(msg)
            time.sleep(0.02)
        try:
            sortedrows.load()  # for the index's flushes, the last perhaps at shutdown
            self._catch_up(flush=True)
            self._drop_torn_tail()
            seg, _ = unpack_location(self._end)
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
                self._flush_index(final=True)
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

    def _poison(self, error: BaseException) -> None:
        """After a failed write: refuse writes, and let go of the writer lock."""
        self._poisoned = error
        if self._write_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._write_fd)
            self._write_fd = None
        self._unlock()

    def append(
        self, stored_events: Sequence[StoredEvent], tracking: Tracking | None = None
    ) -> list[int]:
        """Commit events (and a tracking record) atomically; return their ids."""
        return self.append_columns(EventColumns.of(stored_events), tracking)

    def append_columns(
        self,
        events: EventColumns,
        tracking: Tracking | None = None,
        by_field: ByFields | None = None,
    ) -> list[int]:
        """``append`` for events given as columns (the bulk write path); ``by_field``: the
        states of some topics already split by field (``shapes.ByField``, which must
        give the states back exactly: taken when ``holds`` finds nothing against it)."""
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
            ids = events.originator_ids
            keys, names = self._identify(ids)
            tops = self._indexed(lambda: self._check_unique(ids, keys, events.versions))
            if tracking is not None:
                self._check_tracking(tracking)
            if not count and tracking is None:
                return []
            first = self._next_id
            track = None
            if tracking is not None:
                track = (tracking.application_name, tracking.notification_id)
            seg, off = unpack_location(self._end)
            if off >= self.config.segment_bytes:
                seg, off = self._guarded(self._roll_segment)
            try:
                frame, added = self._encode(first, events, track, seg, off, by_field, names)
            except ValueError as e:
                raise IntegrityError(str(e)) from e
            if frame is None:  # the segment's originator dictionary is full: a new segment
                seg, off = self._guarded(self._roll_segment)
                try:
                    frame, added = self._encode(first, events, track, seg, off, by_field, names)
                except ValueError as e:
                    raise IntegrityError(str(e)) from e
            assert frame is not None, "an empty dictionary takes a commit's names"
            self._write_frame(frame, seg, off)
            if added is not None:
                added[0].take(added[1], added[2], off + len(frame))
            locations = [pack_location(seg, off)] * count  # events are found from their commit
            self.index.add_many(first, keys, events.versions, locations, tops)
            if track is not None:
                self.tracking[track[0]] = track[1]
            self._next_id += count
            self._last_commit = pack_location(seg, off)
            self._end = pack_location(seg, off + len(frame))
            self._since_flush += count + 1
            self._notify()
            return list(range(first, first + count))

    def _encode(
        self,
        first: int,
        events: EventColumns,
        track: tuple[str, int] | None,
        seg: int,
        off: int,
        by_field: ByFields | None = None,
        names_of: dict[int, Name] | None = None,
    ) -> tuple[bytes | None, tuple[SegmentNames, int, list[Name]] | None]:
        """The frame of a commit at byte ``off`` of segment ``seg``, and what it adds to the
        segment's originator dictionary once written; (None, None) if the dictionary is
        full (after the segment's first commit: a new segment takes it). ``names_of``:
        the originators' encoded names, by ``id()`` of each originator object.

        ``EFC4``; ``EFC2`` for a commit that alone names more originators than a
        dictionary holds; ``EFC1`` uncompressed, or for more topics than columns name.
        """
        count = len(events.versions)
        if self.config.compressed:
            names = self._segment_names(seg, off)
            known = len(names.names)
            encoded = encode_columns3(
                events,
                names.lookup(),
                known,
                MAX_NAMES,
                grouped=True,
                by_field=by_field,
                names_of=names_of,
            )
            if encoded is not None:
                section, pieces, new = encoded
                frame = encode_commit3(first, count, section, pieces, track, grouped=True)
                return frame, (names, known, new)
            if known and off and encode_columns3(events, {}, 0, MAX_NAMES) is not None:
                return None, None
            columns = encode_columns(events)
            if columns is not None:
                return encode_commit2(first, count, columns, track), None
        return encode_commit(first, encode_events(first, events), track), None

    def _identify(self, ids: list[UUID | str]) -> tuple[list[bytes], dict[int, Name]]:
        """The events' index keys, and their originators' encoded names by ``id()`` of each
        originator object: a step per distinct object (the columns keep them alive)."""
        distinct = dict(zip(map(id, ids), ids, strict=True))
        entries = {i: self._originator(o) for i, o in distinct.items()}
        key_of = {i: key for i, (_, key, _) in entries.items()}
        return list(map(key_of.__getitem__, map(id, ids))), {
            i: name for i, (_, _, name) in entries.items()
        }

    def _check_unique(
        self, originator_ids: list[UUID | str], keys: list[bytes], versions: list[int]
    ) -> dict[bytes, int] | None:
        """Raise IntegrityError if an event's (originator, version) is taken (``keys``: the
        events' index keys); each key's highest version among the events, when every
        originator's versions only go up (None otherwise).

        Per originator one lookup of its highest indexed version settles every
        event above it (the common case: versions that only go up, checked in one
        pass, by column for a large commit); anything else gets an exact check,
        against the batch and the index.
        """
        rising = _rising(keys, versions)
        if rising is not None:
            max_version = self.index.max_version
            for key, first in rising[0].items():
                top = max_version(key)
                if top is not None and first <= top:
                    rising = None
                    break
        if rising is None:
            self._check_unique_exactly(originator_ids, keys, versions)
            return None
        return rising[1]

    def _check_unique_exactly(
        self, originator_ids: list[UUID | str], keys: list[bytes], versions: list[int]
    ) -> None:
        """``_check_unique`` of a batch whose versions do not all go up."""
        highest: dict[bytes, int | None] = {}
        seen: set[tuple[bytes, int]] | None = None
        events = zip(originator_ids, keys, versions, strict=True)
        for i, (originator_id, key, version) in enumerate(events):
            if key in highest:
                top = highest[key]
            else:
                top = highest[key] = self.index.max_version(key)
            if top is None or version > top:
                highest[key] = version
                if seen is not None:
                    seen.add((key, version))
                continue
            if seen is None:
                seen = set(zip(keys[:i], versions[:i], strict=True))
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

    def _originator(self, originator_id: UUID | str) -> tuple[UUID | str, bytes, Name]:
        """The originator id, its index key (``originator_key``) and its encoded name,
        remembered by the id object: a writer that passes the same objects again
        (ingest does) pays for each once. The entry keeps its object alive, so that
        its ``id()`` is not another's."""
        entry = self._originators.get(id(originator_id))
        if entry is None or entry[0] is not originator_id:
            if len(self._originators) >= KEY_CACHE_SIZE:
                self._originators.clear()
            key, name = originator_key(originator_id), encode_originator(originator_id)
            entry = self._originators[id(originator_id)] = (originator_id, key, name)
        return entry

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
        seg, _ = unpack_location(self._end)
        new = seg + 1
        fd = os.open(self._segment_path(new), os.O_WRONLY | os.O_CREAT, 0o644)
        fileio.fsync_dir(self.path)
        assert self._write_fd is not None
        if not self.config.durable:  # a later checkpoint may record its commits as durable
            fileio.fsync(self._write_fd)
        os.close(self._write_fd)
        self._write_fd = fd
        self._end = pack_location(new, 0)
        return new, 0

    def _flush_index(self, *, final: bool = False) -> None:
        """Persist the index; its checkpoint records the commits so far as durable.

        ``final`` (the writer lets go): the merge of index runs in flight is finished
        and adopted.
        """
        if not self.config.durable and self._write_fd is not None:
            fileio.fsync(self._write_fd)  # with FILESTORE_DURABILITY=os, make it true first
        self.index.flush(self._last_commit, self._end, self.tracking, wait=final)
        self._since_flush = 0

    def _guarded(self, step: Callable[[], _T]) -> _T:
        """Run a writer step; an OSError poisons the writer."""
        try:
            return step()
        except OSError as e:
            self._poison(e)
            msg = f"{self.path}: {e}; the store refuses writes until it is reopened"
            raise StoreWriteError(msg) from e


def _rising(keys: list[bytes], versions: list[int]) -> Rising | None:
    """The first and the last version of each key (in the order keys first appear), when
    every key's versions go up from event to event; None when one does not. By
    column (``numpy``) for a large commit, where a step per event would cost most."""
    if len(keys) < RISING_COLUMNS:
        return _rising_by_event(keys, versions)
    np = sortedrows.load()
    distinct = list(dict.fromkeys(keys))
    code_of = dict(zip(distinct, range(len(distinct)), strict=True))
    codes = np.fromiter(map(code_of.__getitem__, keys), np.intp, len(keys))
    try:
        values = np.array(versions, np.int64)
    except OverflowError:  # beyond 64 bits: no columns
        return _rising_by_event(keys, versions)
    order = np.argsort(codes, kind="stable")  # each key's events together, in order
    codes, values = codes[order], values[order]
    same = codes[1:] == codes[:-1]
    if np.any(same & (values[1:] <= values[:-1])):
        return None
    starts = np.flatnonzero(np.concatenate(([True], ~same)))
    ends = np.append(starts[1:], len(keys)) - 1
    first, last = values[starts].tolist(), values[ends].tolist()
    return dict(zip(distinct, first, strict=True)), dict(zip(distinct, last, strict=True))


def _rising_by_event(keys: list[bytes], versions: list[int]) -> Rising | None:
    """``_rising``, a step per event."""
    first: dict[bytes, int] = {}
    last: dict[bytes, int] = {}
    for key, version in zip(keys, versions, strict=True):
        top = last.get(key)
        if top is None:
            first[key] = version
        elif version <= top:
            return None
        last[key] = version
    return first, last
