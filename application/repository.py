"""Reading the application's store: aggregates by id, recorded source ids in order."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from uuid import UUID

import msgspec
from eventsourcing.application import AggregateNotFoundError

from eventfold.application.app import Eventfold
from eventfold.application.codec import RECORDED_TOPIC, RecordedCodec

A = TypeVar("A")
PAGE = 1000

_event_id_only = msgspec.json.Decoder(dict[str, Any])


def load_or_create(app: Eventfold, kind: type[A], aggregate_id: UUID, create: Callable[[], A]) -> A:
    """The aggregate from the store (through its latest snapshot), or a new one."""
    try:
        aggregate: A = app.repository.get(aggregate_id)
    except AggregateNotFoundError:
        return create()
    if not isinstance(aggregate, kind):
        msg = f"aggregate {aggregate_id} is a {type(aggregate).__name__}, not a {kind.__name__}"
        raise TypeError(msg)
    return aggregate


def recorded_event_ids(app: Eventfold, after: int, last: int) -> Iterator[tuple[int, str]]:
    """(notification id, source id) of the ``Category.Recorded`` events in ``after+1..last``."""
    fast = RecordedCodec(app.mapper).fast and not app.mapper.compressor and not app.mapper.cipher
    start = after
    while True:
        page = app.recorder.select_notifications(
            start, PAGE, stop=last, inclusive_of_start=False, topics=[RECORDED_TOPIC]
        )
        if not page:
            return
        for n in page:
            if fast:
                event_id = _event_id_only.decode(n.state)["event_id"]
            else:
                event_id = app.mapper.to_domain_event(n).event_id  # type: ignore[attr-defined]
            yield n.id, event_id
        start = page[-1].id
