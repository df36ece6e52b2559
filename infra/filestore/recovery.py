"""Recovery: opening a log checks its durable mark, then applies the commits after the
index checkpoint (the one scanner, ``scan.py``), dropping a torn tail; a damaged
index is rebuilt from the log, never over the evidence of lost commits."""

from __future__ import annotations

import logging
import os
import time

from eventfold.infra import fileio
from eventfold.infra.errors import StoreCorruptedError
from eventfold.infra.filestore.format import (
    MAX_HEADER_SIZE,
    FormatError,
    decode_header,
    pack_location,
    unpack_location,
)
from eventfold.infra.filestore.index import Mark, originator_key
from eventfold.infra.filestore.scan import CommitScanner
from eventfold.infra.filestore.state import Commit, LogState

logger = logging.getLogger("eventfold.store")


class Recovering(LogState):
    """Opening and recovery of a log."""

    def _open(self, rebuild_index: bool) -> None:
        index_existed = self.index.exists()
        reason = self.index.load()
        if self.index.durable is not None:
            self._check_reaches(self.index.durable)  # the log holds every durable commit
        if reason is None:
            reason = self._checkpoint_mismatch(self.index.durable)
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
        self._end = index.end if index.end is not None else pack_location(1, 0)
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
        seg, off = unpack_location(mark.last_commit)
        path = self._segment_path(seg)
        lost = (
            f"the store recorded commits up to notification {mark.covered:,} as durable "
            "(index checkpoint); committed data is missing or damaged"
        )
        fd = self._read_fd(seg)
        if fd is None:
            raise StoreCorruptedError(path, 0, f"segment is missing: {lost}")
        size = os.fstat(fd).st_size
        if size <= off:  # name where the log ends, not where the lost commit was
            msg = f"the segment ends at byte {size:,}, before its last durable commit"
            msg += f" (byte {off:,})"
            raise StoreCorruptedError(path, size, f"{msg}: {lost}")
        try:
            header = decode_header(fileio.read_exact(fd, MAX_HEADER_SIZE, off))
        except FormatError as e:
            raise StoreCorruptedError(path, off, f"{e.reason}: {lost}") from None
        body = fileio.read_exact(fd, header.body_len, off + header.size)
        if len(body) < header.body_len:
            msg = f"commit cut short at byte {off + header.size + len(body)}: {lost}"
            raise StoreCorruptedError(path, off, msg)
        try:  # checksums, decompression and records adding up; no event decoded
            commit = Commit.open(header, body, mark.last_commit)
            if commit.columns is None:
                commit.spans()
        except FormatError as e:
            at = off + header.size + e.offset
            raise StoreCorruptedError(path, at, f"{e.reason}: {lost}") from None
        last = header.first_id + header.n_events - 1
        if pack_location(seg, off + header.frame_len) != mark.end or last != mark.covered:
            raise StoreCorruptedError(path, off, f"not the commit recorded there: {lost}")

    def _checkpoint_mismatch(self, checked: Mark | None) -> str | None:
        """Check that the checkpoint's last commit is where it says (unless it is the mark
        ``checked`` already), or say why not."""
        index = self.index
        if index.end is None:
            return None
        if index.last_commit is None:
            return None if index.covered == 0 else "index checkpoint has no last commit"
        mark = Mark(index.covered, index.last_commit, index.end)
        if mark == checked:
            return None
        try:
            self._check_reaches(mark)
        except StoreCorruptedError:
            return "index checkpoint does not match the log"
        return None

    def _catch_up(self, *, flush: bool, every_segment: bool = False) -> None:
        """Apply the commits after ``self._end``; stop at the end or a torn tail.

        ``every_segment``: list the directory, so that a missing segment in the
        middle is damage rather than the end of the log (opening does this).
        """
        durable = self.index.durable
        seg, _ = unpack_location(self._end)
        scanner = CommitScanner(
            self.path,
            self._end,
            self._next_id,
            durable_end=durable.end if durable else 0,
            last_segment=None if every_segment else seg,
            names=self._commits.names,
        )
        index, key_of = self.index, originator_key
        for commit in scanner:
            for _, event in commit.events:
                index.add(
                    event.id, key_of(event.originator_id), event.originator_version, commit.location
                )
            if commit.tracking is not None:
                self.tracking[commit.tracking[0]] = commit.tracking[1]
            self._next_id += commit.header.n_events
            self._last_commit = pack_location(commit.segment, commit.offset)
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

        Built in memory, then persisted when this process can write the log. A log
        that is itself damaged raises ``StoreCorruptedError`` here, naming the place,
        and leaves the persisted index as it was.
        """
        with self._lock:
            note = f"{self.index.dir}: {reason}; rebuilding the index from the log"
            self.recovery_notes.append(note)
            logger.warning(note)
            writer = self._lock_fd is not None
            have_lock = writer or self._try_lock()
            try:
                # rebuilt in memory first: a log that is itself damaged stops the scan
                # before anything persisted is touched (the evidence stays as it was)
                self.index.reset()
                self._adopt_checkpoint()
                self._catch_up(flush=False, every_segment=True)
                if have_lock:
                    self.index.remove_files()
                    self._flush_index()
            finally:
                if have_lock and not writer:
                    self._unlock()
