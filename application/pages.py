"""Reading an application's notifications, or one stream's events, a page at a time, in
order."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent

from eventfold.application.app import Eventfold

PAGE = 2000


def notification_pages(
    app: Eventfold, after: int, last: int, topics: Sequence[str] = (), page: int = PAGE
) -> Iterator[Sequence[Notification]]:
    """Pages of the notifications ``after+1 .. last`` (of ``topics``, if given), in order."""
    start = after
    while start < last:
        notifications = app.recorder.select_notifications(
            start, page, stop=last, inclusive_of_start=False, topics=topics
        )
        if not notifications:
            return
        yield notifications
        start = notifications[-1].id


def stream_pages(
    app: Eventfold, originator_id: UUID, upto: int | None = None, page: int = PAGE
) -> Iterator[Sequence[StoredEvent]]:
    """Pages (never empty) of the stored events of one stream (up to version ``upto``, if
    given), in version order: memory holds a page, however long the stream."""
    after = None
    while True:
        events = app.recorder.select_events(originator_id, gt=after, lte=upto, limit=page)
        if events:
            yield events
        if len(events) < page:
            return
        after = events[-1].originator_version
