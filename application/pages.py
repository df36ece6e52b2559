"""Reading an application's notifications a page at a time, in order."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from eventsourcing.persistence import Notification

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
