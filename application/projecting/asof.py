"""A projection's state as of a point: a store position, a time, or a generation.

Nothing is written and no lock is taken: the live projection and its
generations are only read. A point is

- ``@N``: the store up to notification N, from the newest valid snapshot of
  the generation in use at or before N, then the events after it;
- a time ``T`` (ISO 8601; UTC without an offset): the events that *occurred*
  at or before T (their ``timestamp`` in the source). A late event, recorded
  after T but stamped before it, is counted; events without a timestamp are
  left out, and counted. Snapshots cannot serve (they hold events of any time),
  so every event is read;
- with ``recorded``, a time ``T``: the events the store had *recorded* at or
  before T (when ingest wrote them), whatever time they occurred at;
- ``gen-NNNNNNNN``: the state of a kept generation's newest verified snapshot;
- ``now``: the store's end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eventfold.application.app import Eventfold
from eventfold.application.progress import NOTIFICATIONS, REBUILDING, Progress, tell
from eventfold.application.projecting.projector import Projector
from eventfold.application.proving.keyed import parse_moment
from eventfold.application.recorded import recorded_facts, recorded_facts_timed
from eventfold.domain.model import Category
from eventfold.infra.errors import MissingArgumentError
from eventfold.projections.base import Projection, state_checksum
from eventfold.projections.snapshots import SnapshotInfo, newest_kept

KINDS = ("position", "occurred", "recorded", "generation", "now")


class PointError(MissingArgumentError):
    """A point that is not one, or that this store or projection cannot give (exit 2)."""


@dataclass(frozen=True)
class Point:
    """A moment of the store: ``kind`` is one of ``KINDS``."""

    kind: str
    text: str
    position: int | None = None
    moment: datetime | None = None

    @classmethod
    def parse(cls, text: str, *, recorded: bool = False) -> Point:
        """``@N``, an ISO time (occurred, or ``recorded``), ``gen-NNNNNNNN`` or ``now``;
        ``PointError`` says what a point can be."""
        given = text.strip()
        if recorded:
            return cls("recorded", given, moment=_moment(given))
        if given == "now":
            return cls("now", given)
        if given.startswith("@"):
            if not given[1:].isdigit():
                raise PointError(f"{text!r}: a position is @N, N a notification id (@0 or more)")
            return cls("position", given, position=int(given[1:]))
        if given.startswith("gen-"):
            return cls("generation", given)
        return cls("occurred", given, moment=_moment(given))

    def describe(self) -> str:
        """The point in words: ``position 4,800``, ``occurred at or before ...``."""
        if self.kind == "position":
            return f"position {self.position:,}"
        if self.kind == "occurred":
            return f"events that occurred at or before {_iso(self.moment)}"
        if self.kind == "recorded":
            return f"events recorded at or before {_iso(self.moment)}"
        if self.kind == "generation":
            return f"generation {self.text}"
        return "the store's end"


def _moment(text: str) -> datetime:
    try:
        return parse_moment(text)
    except ValueError:
        msg = (
            f"{text!r} is not a point: @N (a store position), an ISO 8601 time "
            "(2026-11-30T14:00:00Z), gen-NNNNNNNN (a generation) or now"
        )
        raise PointError(msg) from None


def _iso(moment: datetime | None) -> str:
    return "-" if moment is None else moment.isoformat()


@dataclass
class AsOf:
    """A projection's state as of ``point``."""

    point: Point
    projection: str
    canonical: Any
    checksum: str
    position: int  # the last notification the state reads (a time: the store's end)
    events_applied: int  # events folded in, the snapshot's included
    left_out: int = 0  # events read and not counted: later than a time point
    without_time: int = 0  # events without a timestamp, left out of an occurred point
    snapshot: SnapshotInfo | None = None  # the snapshot it started from
    state: Any = None

    def to_json(self) -> dict[str, Any]:
        return {
            "point": self.point.text,
            "kind": self.point.kind,
            "position": self.position,
            "checksum": self.checksum,
            "events_applied": self.events_applied,
            "left_out": self.left_out,
            "without_timestamp": self.without_time,
            "snapshot_used": None if self.snapshot is None else self.snapshot.to_json(),
        }


def state_as_of(
    app: Eventfold,
    store_dir: str,
    projection: Projection[Any],
    point: Point,
    progress: Progress | None = None,
) -> AsOf:
    """The state of ``projection`` as of ``point``, read without writing anything."""
    projector = Projector(app, store_dir, projection)
    end = app.recorder.max_notification_id() or 0
    if point.kind in ("position", "now"):
        position = end if point.position is None else point.position
        if position > end:
            raise PointError(f"{point.text}: beyond the end of the store (position {end:,})")
        return _at_position(projector, point, position, progress)
    if point.kind == "generation":
        kept = newest_kept(projector.snapshots, point.text, end)
        if kept is None:
            raise PointError(
                f"{point.text}: no verified snapshot of it is kept (eventfold generations)"
            )
        if kept.canonical is None:
            raise PointError(f"{point.text}: {kept.why}")
        info = SnapshotInfo(kept.where, kept.position, kept.checksum, kept.created, 0)
        return AsOf(
            point, projection.name, kept.canonical, kept.checksum, kept.position, 0, snapshot=info
        )
    return _at_time(app, projection, point, end, progress)


def _at_position(
    projector: Projector, point: Point, position: int, progress: Progress | None
) -> AsOf:
    projection = projector.projection
    generation = projector.snapshots.current()
    loaded = None if generation is None else projector.snapshots.load(generation, position)
    used = None if loaded is None else loaded.info
    state = projection.initial() if loaded is None else loaded.state
    after = 0 if used is None else used.position
    applied = projector.fold_range(
        state, after, position, 0 if used is None else used.events_applied, progress
    )
    canonical = projection.canonical(state)
    return AsOf(
        point,
        projection.name,
        canonical,
        state_checksum(canonical),
        position,
        applied,
        snapshot=used,
        state=state,
    )


def _at_time(
    app: Eventfold, projection: Projection[Any], point: Point, end: int, progress: Progress | None
) -> AsOf:
    moment = point.moment
    assert moment is not None
    if point.kind == "occurred":
        return _fold_where(app, projection, point, lambda when: when <= moment, progress)
    _recorded_only(projection, point.text)
    handler = projection.handler(Category.Recorded)
    state = projection.initial()
    applied = left_out = 0
    for timed in recorded_facts_timed(app, 0, end):
        for fact, recorded in timed:
            if recorded <= moment:
                applied += 1
                if handler is not None:
                    handler(state, fact)
            else:
                left_out += 1
        tell(progress, REBUILDING, timed[-1][0].notification_id, end, NOTIFICATIONS)
    return _as_of(point, projection, state, end, applied, left_out, 0)


def state_in_window(
    app: Eventfold,
    projection: Projection[Any],
    since: datetime | None,
    until: datetime | None,
    through: datetime | None = None,
    progress: Progress | None = None,
) -> AsOf:
    """The state of the events that occurred in ``[since, until)`` (either bound may be
    None) and, given ``through``, at or before it; events without a timestamp are left
    out. Every event is read; nothing is written."""

    def kept(when: datetime) -> bool:
        return (
            (since is None or when >= since)
            and (until is None or when < until)
            and (through is None or when <= through)
        )

    point = Point("occurred", f"{_iso(since)}/{_iso(until)}", moment=through)
    return _fold_where(app, projection, point, kept, progress)


def _fold_where(
    app: Eventfold,
    projection: Projection[Any],
    point: Point,
    kept: Callable[[datetime], bool],
    progress: Progress | None,
) -> AsOf:
    """The state of the events whose occurrence time ``kept`` keeps (events without a
    timestamp are left out and counted), every event read, nothing written."""
    _recorded_only(projection, point.text)
    handler = projection.handler(Category.Recorded)
    end = app.recorder.max_notification_id() or 0
    state = projection.initial()
    applied = left_out = without = 0
    for page in recorded_facts(app, 0, end):
        for fact in page:
            when = fact.occurred_at
            if when is None:
                without += 1
            elif kept(when):
                applied += 1
                if handler is not None:
                    handler(state, fact)
            else:
                left_out += 1
        tell(progress, REBUILDING, page[-1].notification_id, end, NOTIFICATIONS)
    return _as_of(point, projection, state, end, applied, left_out, without)


def _recorded_only(projection: Projection[Any], what: str) -> None:
    if set(projection.handlers) - {Category.Recorded}:
        msg = (
            f"{what}: {projection.name} folds other events than Category.Recorded; "
            "as of a time it cannot be computed (a position, @N, can)"
        )
        raise PointError(msg)


def _as_of(
    point: Point,
    projection: Projection[Any],
    state: Any,
    end: int,
    applied: int,
    left_out: int,
    without: int,
) -> AsOf:
    canonical = projection.canonical(state)
    return AsOf(
        point,
        projection.name,
        canonical,
        state_checksum(canonical),
        end,
        applied,
        left_out=left_out,
        without_time=without,
        state=state,
    )
