"""The recorders of the file store: the library's recorder interfaces over a ``Log``."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    ListenNotifySubscription,
    Notification,
    ProcessRecorder,
    StoredEvent,
    Subscription,
    Tracking,
    TrackingRecorder,
)

from eventfold.infra.filestore.format import EventColumns
from eventfold.infra.filestore.index import originator_key
from eventfold.infra.filestore.log import Log
from eventfold.infra.filestore.shapes import ByFields, Fields


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
        return [
            StoredEvent(originator_id, version, topic.decode(), state)
            for version, topic, state in parts
        ]


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

    def scan_joined(
        self, after: int, last: int, topic: str, page: int = 2000
    ) -> Iterator[tuple[list[int], bytes]]:
        """eventfold's fast fold path: pages of the events of one topic, ``after+1..last``:
        their ids, and their states joined by commas (``Log.scan_joined``); a page holds
        whole commits, at least ``page`` events but at the end.

        Not part of the library's recorder interface (``select_notifications``
        is); projections use it when the recorder has it.
        """
        log = self.log
        log.refresh()
        yield from log.scan_joined(after + 1, min(last, log.max_id), topic, page)

    def scan_parts(
        self, after: int, last: int, topic: str, page: int = 2000
    ) -> Iterator[tuple[list[int], list[bytes | Fields]]]:
        """As ``scan_joined``, with the states in parts (``Log.scan_parts``): joined by
        commas, or by field where an ``EFC4`` commit's states share a shape."""
        log = self.log
        log.refresh()
        yield from log.scan_parts(after + 1, min(last, log.max_id), topic, page)

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
        self,
        events: EventColumns,
        tracking: Tracking | None = None,
        by_field: ByFields | None = None,
    ) -> list[int]:
        """``insert_events`` for events given as columns (bulk writers: no object per event);
        ``by_field``: the states of some topics already split by field (``shapes.ByField``)."""
        return self.log.append_columns(events, tracking, by_field)
