"""The event lists of ``verify`` with sources: the store's events against the sources'.

Events are matched by id: missing (in the sources only), extra (in the store
only), conflicting (the same id with other content) and duplicated (an id the
store recorded more than once). Each list keeps a sample in source order; the
counts, an ``--export`` file and a ``--by`` timeline get every event.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from eventfold.application.app import Eventfold
from eventfold.application.progress import COMPARING, NOTIFICATIONS, Progress, tell
from eventfold.application.proving.export import Export
from eventfold.application.proving.keyed import Narrowing
from eventfold.application.proving.reference import ExpectedState
from eventfold.application.proving.timeline import TimelineBuilder
from eventfold.application.recorded import recorded_facts
from eventfold.projections.base import RecordedFact

SAMPLES = 20


@dataclass
class EventDiff:
    """With sources: events by id, the sources against the store.

    Each list keeps the first ``limit`` rows in source order (by file in reading order,
    then line; 0 keeps all), in bounded memory; the counts are of all. An ``export``
    is given every row as it is noted.
    """

    missing: list[dict[str, Any]] = field(default_factory=list)
    extra: list[dict[str, Any]] = field(default_factory=list)
    conflicting: list[dict[str, Any]] = field(default_factory=list)
    duplicated: list[dict[str, Any]] = field(default_factory=list)  # ids recorded again
    missing_count: int = 0
    extra_count: int = 0
    conflicting_count: int = 0
    duplicated_count: int = 0  # recordings of an id after its first, in the store
    missing_ids: list[str] = field(default_factory=list, repr=False)  # all, source order
    limit: int = SAMPLES
    export: Export | None = field(default=None, repr=False)
    _kept: dict[str, list[tuple[int, int, int, dict[str, Any]]]] = field(
        default_factory=dict, repr=False
    )

    def note(self, kind: str, row: dict[str, Any], line: int | None = None, file: int = 0) -> None:
        """Count one event of ``kind`` (missing, extra, conflicting, duplicated); keep the
        ``limit`` rows of each first in source order: the smallest (``file``, ``line``),
        then the first noted."""
        count = getattr(self, f"{kind}_count") + 1
        setattr(self, f"{kind}_count", count)
        if self.export is not None:
            self.export.event(kind, row)
        kept = self._kept.setdefault(kind, [])
        entry = (-file, -(line or 0), -count, row)  # a max-heap of the rows kept
        if not self.limit or len(kept) < self.limit:
            heapq.heappush(kept, entry)
        elif entry[:3] > kept[0][:3]:
            heapq.heapreplace(kept, entry)

    def finish(self) -> EventDiff:
        """Fill the lists from the rows kept, in source order."""
        for kind, kept in self._kept.items():
            ordered = sorted(kept, key=lambda e: (-e[0], -e[1], -e[2]))
            setattr(self, kind, [e[3] for e in ordered])
        return self


def event_diff(
    app: Eventfold,
    expected: ExpectedState,
    position: int,
    limit: int,
    progress: Progress | None,
    narrowing: Narrowing,
    export: Export | None,
    timeline: TimelineBuilder | None = None,
    until: datetime | None = None,
) -> EventDiff:
    """The event lists; ``until``: only events that occurred at or before it (an
    ``--as-of`` time), on both sides."""
    diff = EventDiff(limit=limit, export=export)
    files = {name: index for index, name in enumerate(expected.sources)}
    seen: set[str] = set()
    kept = narrowing.category, narrowing.moment
    if until is not None:
        kept = narrowing.category, lambda when: _through(narrowing, when, until)
    for page in recorded_facts(app, 0, position):
        tell(progress, COMPARING, page[-1].notification_id, position, NOTIFICATIONS)
        for fact in page:
            record = expected.records.get(fact.event_id)
            if not (kept[0](fact.category) and kept[1](fact.occurred_at)) and (
                record is None or not (kept[0](record.category) and kept[1](record.occurred_at))
            ):
                seen.add(fact.event_id)  # outside on both sides: not compared
                continue
            if fact.event_id in seen:  # an id recorded twice: the store counts it twice
                row = _stored(fact) | {"notification_id": fact.notification_id}
                diff.note("duplicated", row, fact.line, files.get(fact.source, 0))
                continue
            seen.add(fact.event_id)
            if record is None:
                row = _stored(fact)
                diff.note("extra", row, fact.line, files.get(fact.source, 0))
                if timeline is not None:
                    timeline.event("extra", row, fact.occurred_at)
            elif (record.category, record.value, record.occurred_at) != (
                fact.category,
                fact.value,
                fact.occurred_at,
            ):
                stored = _stored(fact) | {"notification_id": fact.notification_id}
                del stored["id"]
                source: dict[str, Any] = {"category": record.category, "value": str(record.value)}
                source |= {"occurred_at": _iso(record.occurred_at), "source": record.source}
                source |= {"line": record.line, "offset": record.offset}
                row = {"id": fact.event_id, "source": source}
                diff.note("conflicting", row | {"store": stored}, record.line, record.file)
    for event_id, record in expected.records.items():
        if event_id in seen or not (kept[0](record.category) and kept[1](record.occurred_at)):
            continue
        diff.missing_ids.append(event_id)
        row = {"id": event_id, "category": record.category, "value": str(record.value)}
        row |= {"occurred_at": _iso(record.occurred_at), "source": record.source}
        row |= {"line": record.line, "offset": record.offset}
        diff.note("missing", row, record.line, record.file)
        if timeline is not None:
            timeline.event("missing", row, record.occurred_at)
    tell(progress, COMPARING, position, position, NOTIFICATIONS)
    return diff.finish()


def _through(narrowing: Narrowing, when: datetime | None, until: datetime) -> bool:
    return when is not None and when <= until and narrowing.moment(when)


def _stored(fact: RecordedFact) -> dict[str, Any]:
    """How a recorded event is shown in the event lists."""
    return {
        "id": fact.event_id,
        "category": fact.category,
        "value": str(fact.value),
        "occurred_at": _iso(fact.occurred_at),
        "source": fact.source,
        "line": fact.line,
        "offset": fact.offset,
    }


def _iso(value: Any) -> str | None:
    return None if value is None else str(value.isoformat())
