"""One append-only log of commits in a directory (docs/FORMAT.md), shared within a process.

Any number of processes may read a log; one at a time writes. ``Log`` is put
together from its parts: recovery (``recovery.py``), the writer (``writer.py``),
the reader (``reader.py``) and the watcher (``watcher.py``), over the state they
share (``state.py``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from uuid import UUID

from eventfold.infra import fileio
from eventfold.infra.filestore.format import Name
from eventfold.infra.filestore.index import LogIndex
from eventfold.infra.filestore.reader import Reading
from eventfold.infra.filestore.recovery import Recovering
from eventfold.infra.filestore.scan import TornTail
from eventfold.infra.filestore.state import CommitCache, LogConfig
from eventfold.infra.filestore.watcher import Watching
from eventfold.infra.filestore.writer import Writing

logger = logging.getLogger("eventfold.store")

__all__ = ["Log", "LogConfig"]


class Log(Recovering, Writing, Reading, Watching):
    """An append-only log of commits in one directory, shared within a process."""

    def __init__(self, path: str, config: LogConfig, *, rebuild_index: bool = False) -> None:
        self.path = path
        self.config = config
        self._lock: threading.RLock = threading.RLock()
        self._read_fds: dict[int, int] = {}
        self._commits = CommitCache()
        self._originators: dict[int, tuple[UUID | str, bytes, Name]] = {}
        self._lock_fd: int | None = None
        self._read_only: OSError | None = None
        self._write_fd: int | None = None
        self._poisoned: BaseException | None = None
        self._closed = False
        self._refs = 1
        self._listeners: set[threading.Event] = set()
        self._watcher: threading.Thread | None = None
        self.recovery_notes: list[str] = []
        self.frames_scanned = 0
        self.torn_tail: TornTail | None = None
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as e:  # a read-only store without this log: read as empty
            if not fileio.is_read_only(e) or os.path.lexists(path):
                raise
            self._read_only = e
        self.index = LogIndex(path)
        self._open(rebuild_index)

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

    @property
    def lock(self) -> threading.RLock:
        """The lock that serialises this log's readers and writers in-process."""
        return self._lock

    @property
    def usable(self) -> bool:
        """Open and not poisoned by a failed write."""
        return not self._closed and self._poisoned is None

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
            flush = self._since_flush or self.index.merging
            if self._lock_fd is not None and self._poisoned is None and flush:
                try:
                    self._flush_index(final=True)
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
