"""eventsourcing persistence module: a durable event store made of plain files.

Use it from any eventsourcing application::

    PERSISTENCE_MODULE=eventfold.infra.filestore
    FILESTORE_PATH=/path/to/store

Each application (by its environment name) gets its own logs in the store
directory: ``<name>_events`` (application and process recorders),
``<name>_<purpose>`` for other aggregate recorders (``snapshots``) and
``<name>_tracking`` for tracking recorders. See docs/FORMAT.md; the package's
parts are listed in docs/ARCHITECTURE.md. This module is the persistence
module's one factory; the recorders are in ``recorders.py``.
"""

from __future__ import annotations

import os
import re
import threading
import weakref
from typing import Any

from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    InfrastructureFactory,
    ProcessRecorder,
)
from eventsourcing.utils import Environment, EnvType, resolve_topic

from eventfold.infra.filestore.log import Log, LogConfig
from eventfold.infra.filestore.recorders import (
    FileAggregateRecorder,
    FileApplicationRecorder,
    FileProcessRecorder,
    FileRecorder,
    FileSubscription,
    FileTrackingRecorder,
)

__all__ = [
    "Factory",
    "FileAggregateRecorder",
    "FileApplicationRecorder",
    "FileProcessRecorder",
    "FileRecorder",
    "FileStoreFactory",
    "FileSubscription",
    "FileTrackingRecorder",
    "open_log",
]

_registry_lock = threading.Lock()
_open_logs: dict[str, weakref.ReferenceType[Log]] = {}


def open_log(path: str, config: LogConfig) -> Log:
    """Open the log at ``path``, sharing one Log object per directory in a process.

    Every call must be paired with ``Log.release()``.
    """
    real = os.path.realpath(path)
    with _registry_lock:
        ref = _open_logs.get(real)
        log = ref() if ref is not None else None
        if log is not None and log.usable:
            log.acquire()
            return log
        log = Log(real, config)
        _open_logs[real] = weakref.ref(log)
        return log


class FileStoreFactory(InfrastructureFactory[FileTrackingRecorder]):
    """Constructs file recorders from the environment (one factory per module)."""

    FILESTORE_PATH = "FILESTORE_PATH"
    FILESTORE_DURABILITY = "FILESTORE_DURABILITY"
    FILESTORE_SEGMENT_BYTES = "FILESTORE_SEGMENT_BYTES"
    FILESTORE_INDEX_INTERVAL = "FILESTORE_INDEX_INTERVAL"
    FILESTORE_POLL_INTERVAL = "FILESTORE_POLL_INTERVAL"
    FILESTORE_LOCK_TIMEOUT = "FILESTORE_LOCK_TIMEOUT"
    FILESTORE_COMPRESSION = "FILESTORE_COMPRESSION"

    aggregate_recorder_class = FileAggregateRecorder
    application_recorder_class = FileApplicationRecorder
    tracking_recorder_class = FileTrackingRecorder
    process_recorder_class = FileProcessRecorder

    def __init__(self, env: Environment | EnvType | None):
        super().__init__(env)
        path = self.env.get(self.FILESTORE_PATH)
        if not path:
            keys = ", ".join(self.env.create_keys(self.FILESTORE_PATH))
            msg = f"File store path not found in environment with keys: {keys}"
            raise OSError(msg)
        self.path = os.path.abspath(path)
        os.makedirs(self.path, exist_ok=True)
        defaults = LogConfig()
        self.config = LogConfig(
            durable=self._choice(self.FILESTORE_DURABILITY, "fsync", "os") == "fsync",
            compressed=self._choice(self.FILESTORE_COMPRESSION, "zstd", "none") == "zstd",
            segment_bytes=self._number(self.FILESTORE_SEGMENT_BYTES, defaults.segment_bytes),
            index_interval=self._number(self.FILESTORE_INDEX_INTERVAL, defaults.index_interval),
            poll_interval=self._number(self.FILESTORE_POLL_INTERVAL, defaults.poll_interval, float),
            lock_timeout=self._number(self.FILESTORE_LOCK_TIMEOUT, defaults.lock_timeout, float),
        )
        name = re.sub(r"[^a-z0-9_.-]", "_", self.env.name.lower()).strip(".")
        self.namespace = name or "stored"
        self._logs: list[Log] = []

    def _choice(self, key: str, default: str, other: str) -> str:
        """The setting ``key``: ``default`` (when unset) or ``other``, else an error."""
        value = self.env.get(key, default).strip().lower()
        if value not in (default, other):
            msg = f"Invalid {key} {value!r}: expected {default!r} (the default) or {other!r}"
            raise OSError(msg)
        return value

    def _number(self, key: str, default: Any, kind: type = int) -> Any:
        raw = self.env.get(key)
        if raw is None or not raw.strip():
            return default
        try:
            value = kind(raw)
        except ValueError:
            value = None
        if value is None or value <= 0:
            msg = f"Invalid {key} {raw!r}: expected a positive {kind.__name__}"
            raise OSError(msg)
        return value

    def _log(self, suffix: str) -> Log:
        log = open_log(os.path.join(self.path, f"{self.namespace}_{suffix}"), self.config)
        self._logs.append(log)
        return log

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        return self.aggregate_recorder_class(self._log(purpose))

    def application_recorder(self) -> ApplicationRecorder:
        topic = self.env.get(self.APPLICATION_RECORDER_TOPIC)
        cls = resolve_topic(topic) if topic else self.application_recorder_class
        assert issubclass(cls, FileApplicationRecorder)
        return cls(self._log("events"))

    def tracking_recorder(
        self, tracking_recorder_class: type[FileTrackingRecorder] | None = None
    ) -> FileTrackingRecorder:
        cls = tracking_recorder_class
        if cls is None:
            topic = self.env.get(self.TRACKING_RECORDER_TOPIC)
            cls = resolve_topic(topic) if topic else self.tracking_recorder_class
        assert cls is not None and issubclass(cls, FileTrackingRecorder)
        return cls(self._log("tracking"))

    def process_recorder(self) -> ProcessRecorder:
        topic = self.env.get(self.PROCESS_RECORDER_TOPIC)
        cls = resolve_topic(topic) if topic else self.process_recorder_class
        assert issubclass(cls, FileProcessRecorder)
        return cls(self._log("events"))

    def close(self) -> None:
        logs, self._logs = self._logs, []
        for log in logs:
            log.release()


Factory = FileStoreFactory
