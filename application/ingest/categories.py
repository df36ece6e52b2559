"""Reading the application's store: aggregates by id, recorded source ids in order."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from eventfold.application.app import Eventfold
from eventfold.application.recorded import (
    RECORDED_TOPIC,
    content_digest,
    plain_json,
    recorded_facts,
    recorded_values,
)
from eventfold.domain.model import Category, exact_sum

A = TypeVar("A")


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


def find(app: Eventfold, kind: type[A], aggregate_id: UUID) -> A | None:
    """The aggregate from the store (through its latest snapshot), or None."""
    try:
        aggregate: A = app.repository.get(aggregate_id)
    except AggregateNotFoundError:
        return None
    return aggregate if isinstance(aggregate, kind) else None


def stored(app: Eventfold, aggregate_id: UUID) -> bool:
    """Whether the store holds any event of ``aggregate_id`` (nothing is loaded)."""
    return bool(app.recorder.select_events(aggregate_id, limit=1))


def load_category(app: Eventfold, name: str, upto: int | None = None) -> Category:
    """The ``Category`` from its newest snapshot and the events after it, or a new one;
    as it was at version ``upto``, if given.

    The ``Recorded`` events after the snapshot (up to a snapshot interval of them)
    are decoded in bulk rather than one domain event at a time, so that loading
    a category costs a few milliseconds however long its stream; the result is
    the library's (tested). Any other event after the first falls back to the
    library's repository.
    """
    aggregate_id = Category.create_id(name)
    if not plain_json(app.mapper):
        return _load_with_library(app, name, upto)
    snapshots = (
        []
        if app.snapshots is None
        else list(app.snapshots.get(aggregate_id, desc=True, limit=1, lte=upto))
    )
    gt = snapshots[0].originator_version if snapshots else None
    fast = getattr(app.recorder, "select_states", None)  # the file store's
    if fast is not None:
        stored = fast(aggregate_id, gt, upto)
    else:
        stored = list(app.recorder.select_events(aggregate_id, gt=gt, lte=upto))
    first: Any = snapshots[0] if snapshots else None
    if first is None and stored:
        first, stored = app.mapper.to_domain_event(stored[0]), stored[1:]
    if first is None:
        return Category(name)
    category: Any = first.mutate(None)
    recorded = all(s.topic == RECORDED_TOPIC for s in stored) and all(
        s.originator_version == category.version + i for i, s in enumerate(stored, 1)
    )
    if not recorded:
        return _load_with_library(app, name, upto)
    if stored:
        values, modified_on = recorded_values([s.state for s in stored])
        category.fast_forward(
            len(values), exact_sum(values), stored[-1].originator_version, modified_on
        )
    assert isinstance(category, Category)
    return category


def _load_with_library(app: Eventfold, name: str, upto: int | None) -> Category:
    try:
        category: Category = app.repository.get(Category.create_id(name), version=upto)
    except AggregateNotFoundError:
        return Category(name)
    return category


def recorded_event_ids(
    app: Eventfold, after: int, last: int, *, except_source: str | None = None
) -> Iterator[tuple[int, str, bytes]]:
    """(notification id, source id, content digest) of the ``Category.Recorded`` events in
    ``after+1..last``, but those read from ``except_source``."""
    for page in recorded_facts(app, after, last):
        for fact in page:
            if fact.source != except_source:
                when = fact.occurred_at
                digest = content_digest(
                    fact.category, fact.value, None if when is None else when.isoformat()
                )
                yield fact.notification_id, fact.event_id, digest
