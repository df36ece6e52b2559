"""Reading the application's store: aggregates by id, recorded source ids in order."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from eventfold.application.app import Eventfold
from eventfold.application.facts import recorded_facts
from eventfold.infra.dedup import content_digest

A = TypeVar("A")


def load_or_create(
    app: Eventfold, kind: type[A], aggregate_id: UUID, create: Callable[[], A]
) -> A:
    """The aggregate from the store (through its latest snapshot), or a new one."""
    try:
        aggregate: A = app.repository.get(aggregate_id)
    except AggregateNotFoundError:
        return create()
    if not isinstance(aggregate, kind):
        msg = f"aggregate {aggregate_id} is a {type(aggregate).__name__}, not a {kind.__name__}"
        raise TypeError(msg)
    return aggregate


def recorded_event_ids(
    app: Eventfold, after: int, last: int, *, except_source: str | None = None
) -> Iterator[tuple[int, str, bytes]]:
    """(notification id, source id, content digest) of the ``Category.Recorded`` events in
    ``after+1..last``, but those read from ``except_source``."""
    for page in recorded_facts(app, after, last):
        for fact in page:
            if fact.source != except_source:
                when = fact.occurred_at
                digest = content_digest(fact.category, fact.value,
                                        None if when is None else when.isoformat())  # fmt: skip
                yield fact.notification_id, fact.event_id, digest
