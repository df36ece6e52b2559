"""eventsourcing persistence module: a durable event store made of plain files.

Use it from any eventsourcing application::

    PERSISTENCE_MODULE=eventfold.infra.filestore
    FILESTORE_PATH=/path/to/store

Each application (by its environment name) gets its own logs in the store
directory: ``<name>_events`` (application and process recorders),
``<name>_<purpose>`` for other aggregate recorders (``snapshots``) and
``<name>_tracking`` for tracking recorders. See docs/FORMAT.md.
"""

from __future__ import annotations

import itertools
import os
import re
import threading
import weakref
from collections.abc import Iterator, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    InfrastructureFactory,
    ListenNotifySubscription,
    Notification,
    ProcessRecorder,
    StoredEvent,
    Subscription,
    Tracking,
    TrackingRecorder,
)
from eventsourcing.utils import Environment, EnvType, resolve_topic

from eventfold.infra.log import Log, LogConfig
from eventfold.infra.logformat import EventColumns
from eventfold.infra.logindex import originator_key

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


class FileRecorder:
    """Base of the file recorders: each one works on one log."""

    def __init__(self, log: Log) -> None:
        self.log = log


class FileAggregateRecorder(FileRecorder, AggregateRecorder):
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        self.log.append(stored_events)
        return None

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        log = self.log
        log.refresh()
        key = originator_key(originator_id)
        with log.lock:
            pairs = None
            if desc and limit is not None and lte is None:  # the newest: found from the top
                top = log.max_version(key)
                if top is None:
                    return []
                pairs = log.versions(key, top - limit if gt is None else max(gt, top - limit))
                if len(pairs) < limit:  # versions with gaps: take them all
                    pairs = None
            if pairs is None:
                pairs = log.versions(key, gt)
            nids = [nid for version, nid in pairs if lte is None or version <= lte]
            if desc:
                nids.reverse()
            wanted = str(originator_id)
            results: list[StoredEvent] = []
            for first in range(0, len(nids), limit or len(nids) or 1):  # a page at a time
                for event in log.read_events(nids[first : first + (limit or len(nids))]):
                    if event.originator_id != originator_id and str(event.originator_id) != wanted:
                        continue  # a key collision: not ours
                    results.append(
                        StoredEvent(
                            originator_id=event.originator_id,
                            originator_version=event.originator_version,
                            topic=event.topic,
                            state=event.state,
                        )
                    )
                    if limit is not None and len(results) >= limit:
                        return results
            return results


    def select_states(
        self, originator_id: UUID | str, gt: int | None, lte: int | None = None
    ) -> list[StoredEvent]:
        """eventfold's fast path of ``select_events(originator_id, gt=gt, lte=lte)``: the same
        events, read without decoding more than the version, topic and state of each.

        Not part of the library's recorder interface; the application uses it when
        the recorder has it. Falls back to ``select_events`` if another originator
        shares the index key.
        """
        log = self.log
        log.refresh()
        parts = log.read_stream(originator_key(originator_id), gt, lte)
        if any(b[0] != a[0] + 1 for a, b in itertools.pairwise(parts)):  # not one stream
            return list(self.select_events(originator_id, gt=gt, lte=lte))
        return [StoredEvent(originator_id, version, topic.decode(), state)
                for version, topic, state in parts]  # fmt: skip


class FileApplicationRecorder(FileAggregateRecorder, ApplicationRecorder):
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        return self.log.append(stored_events)

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        log = self.log
        log.refresh()
        first = 1 if start is None else start + (0 if inclusive_of_start else 1)
        first = max(first, 1)
        results: list[Notification] = []
        with log.lock:
            last = log.max_id if stop is None else min(stop, log.max_id)
            while first <= last and len(results) < limit:
                batch = limit - len(results) if not topics else max(limit, 500)
                batch_last = min(last, first + batch - 1)
                for event in log.read_events(range(first, batch_last + 1)):
                    if topics and event.topic not in topics:
                        continue
                    results.append(
                        Notification(
                            id=event.id,
                            originator_id=event.originator_id,
                            originator_version=event.originator_version,
                            topic=event.topic,
                            state=event.state,
                        )
                    )
                    if len(results) == limit:
                        break
                first = batch_last + 1
        return results

    def scan_states(
        self, after: int, last: int, topic: str
    ) -> Iterator[tuple[list[int], list[bytes]]]:
        """eventfold's fast fold path: pages of (ids, states) of one topic, ``after+1..last``.

        Not part of the library's recorder interface (``select_notifications``
        is); projections use it when the recorder has it.
        """
        log = self.log
        log.refresh()
        yield from log.scan_states(after + 1, min(last, log.max_id), topic)

    def max_notification_id(self) -> int | None:
        self.log.refresh()
        return self.log.max_id or None

    def subscribe(
        self, gt: int | None = None, topics: Sequence[str] = ()
    ) -> Subscription[ApplicationRecorder]:
        return FileSubscription(recorder=self, gt=gt, topics=topics)


class FileSubscription(ListenNotifySubscription[FileApplicationRecorder]):
    """Yields notifications as they are committed, in this process or another."""

    def __init__(
        self,
        recorder: FileApplicationRecorder,
        gt: int | None = None,
        topics: Sequence[str] = (),
    ) -> None:
        super().__init__(recorder=recorder, gt=gt, topics=topics)
        recorder.log.listen(self._has_been_notified)

    def stop(self) -> None:
        super().stop()
        self._recorder.log.unlisten(self._has_been_notified)


class FileTrackingRecorder(FileRecorder, TrackingRecorder):
    """Tracking records in their own log; subclass it for custom views."""

    def insert_tracking(self, tracking: Tracking) -> None:
        self.log.append([], tracking)

    def max_tracking_id(self, application_name: str) -> int | None:
        self.log.refresh()
        return self.log.tracking.get(application_name)


class FileProcessRecorder(FileTrackingRecorder, FileApplicationRecorder, ProcessRecorder):
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        tracking: Tracking | None = kwargs.get("tracking")
        return self.log.append(stored_events, tracking)

    def insert_event_columns(
        self, events: EventColumns, tracking: Tracking | None = None
    ) -> list[int]:
        """``insert_events`` for events given as columns (bulk writers: no object per event)."""
        return self.log.append_columns(events, tracking)


class FileStoreFactory(InfrastructureFactory[FileTrackingRecorder]):
    """Constructs file recorders from the environment (one factory per module)."""

    FILESTORE_PATH = "FILESTORE_PATH"
    FILESTORE_DURABILITY = "FILESTORE_DURABILITY"
    FILESTORE_SEGMENT_BYTES = "FILESTORE_SEGMENT_BYTES"
    FILESTORE_INDEX_INTERVAL = "FILESTORE_INDEX_INTERVAL"
    FILESTORE_POLL_INTERVAL = "FILESTORE_POLL_INTERVAL"
    FILESTORE_LOCK_TIMEOUT = "FILESTORE_LOCK_TIMEOUT"

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
        durability = self.env.get(self.FILESTORE_DURABILITY, "fsync").strip().lower()
        if durability not in ("fsync", "os"):
            msg = (
                f"Invalid {self.FILESTORE_DURABILITY} {durability!r}: "
                "expected 'fsync' (the default) or 'os'"
            )
            raise OSError(msg)
        defaults = LogConfig()
        self.config = LogConfig(
            durable=durability == "fsync",
            segment_bytes=self._number(self.FILESTORE_SEGMENT_BYTES, defaults.segment_bytes),
            index_interval=self._number(
                self.FILESTORE_INDEX_INTERVAL, defaults.index_interval
            ),
            poll_interval=self._number(
                self.FILESTORE_POLL_INTERVAL, defaults.poll_interval, float
            ),
            lock_timeout=self._number(
                self.FILESTORE_LOCK_TIMEOUT, defaults.lock_timeout, float
            ),
        )
        name = re.sub(r"[^a-z0-9_.-]", "_", self.env.name.lower()).strip(".")
        self.namespace = name or "stored"
        self._logs: list[Log] = []

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
