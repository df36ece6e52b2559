"""Waking subscriptions: at once for this process's commits, by polling for others'."""

from __future__ import annotations

import os
import threading
import time
import weakref

from eventfold.infra.filestore.format import unpack_location
from eventfold.infra.filestore.state import LogState


class Watching(LogState):
    """Listeners (subscriptions) of a log, and the thread that polls for news."""

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
            seg, off = unpack_location(self._end)
            if os.path.exists(self._segment_path(seg + 1)):
                return True
            fd = self._read_fd(seg)
            return fd is not None and os.fstat(fd).st_size > off

    @property
    def log_closed(self) -> bool:
        return self._closed


def _watch(ref: weakref.ReferenceType[Watching]) -> None:
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
