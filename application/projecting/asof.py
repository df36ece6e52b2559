"""A projection's state as of a point: a store position, a time, or a generation.

Nothing is written and no lock is taken: the live projection and its
generations are only read. A point is

- ``@N``: the store up to notification N, from the newest valid snapshot of
  the generation in use at or before N, then the events after it;
- a time ``T`` (ISO 8601; UTC without an offset): the events that *occurred*
  at or before T (their ``timestamp`` in the source). A late event, recorded
  after T but stamped before it, is counted; events without a timestamp are
  left out, and counted. Snapshots cannot serve (they hold events of any time),
  so every event is read. The reconstructions standing now count as
  ``reconstructing/attime.py`` says (one whose period holds T is refused);
- with ``recorded``, a time ``T``: the store as it was recorded by T, the
  prefix of its positions up to the first event recorded after T (when ingest
  wrote it, whatever time it occurred at), folded as ``@N`` is;
- ``gen-NNNNNNNN``: the state of a kept generation's newest verified snapshot;
- ``now``: the store's end.

A projection that folds reconstructions follows the plan (``plan.py``) at a
position; ``AsOf.reconstructions`` names those whose summaries the state holds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from eventfold.application.app import Eventfold
from eventfold.application.progress import (
    NOTIFICATIONS,
    READING_EVENTS,
    REBUILDING,
    Progress,
    tell,
)
from eventfold.application.projecting.projector import Projector
from eventfold.application.proving.keyed import parse_moment
from eventfold.application.reconstructing.attime import OccurredCut, recorded_limit
from eventfold.application.reconstructing.plan import Plan, Reconstruction, load_plan
from eventfold.application.recorded import recorded_facts, recorded_facts_timed, recorded_pages
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
            return f"the store as recorded by {_iso(self.moment)}"
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
    position: int  # the last notification the state reads (an occurred time: the store's end)
    events_applied: int  # events folded in, the snapshot's included
    left_out: int = 0  # events read and not counted: later than a time point
    without_time: int = 0  # events without a timestamp, left out of an occurred point
    snapshot: SnapshotInfo | None = None  # the snapshot it started from
    state: Any = None
    # the reconstructions whose summaries the state holds, in the order they were made
    reconstructions: list[Reconstruction] = field(default_factory=list)
    # an occurred time: raw events left out because a counted reconstruction stands for them
    stood_for: int | None = None

    def to_json(self) -> dict[str, Any]:
        """``as_of`` in ``--json`` (keys only ever added)."""
        return {
            "point": self.point.text,
            "kind": self.point.kind,
            "position": self.position,
            "checksum": self.checksum,
            "events_applied": self.events_applied,
            "left_out": self.left_out,
            "without_timestamp": self.without_time,
            "snapshot_used": None if self.snapshot is None else self.snapshot.to_json(),
            "reconstructions": [r.ident for r in self.reconstructions],
            "left_out_reconstructed": self.stood_for,
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
    plan = load_plan(app) if projection.folds_reconstructions else Plan([])
    if point.kind in ("position", "now"):
        position = end if point.position is None else point.position
        if position > end:
            raise PointError(f"{point.text}: beyond the end of the store (position {end:,})")
        at = _at_position(projector, point, position, progress)
    elif point.kind == "generation":
        kept = newest_kept(projector.snapshots, point.text, end)
        if kept is None:
            raise PointError(
                f"{point.text}: no verified snapshot of it is kept (eventfold generations)"
            )
        if kept.canonical is None:
            raise PointError(f"{point.text}: {kept.why}")
        info = SnapshotInfo(kept.where, kept.position, kept.checksum, kept.created, 0)
        at = AsOf(
            point, projection.name, kept.canonical, kept.checksum, kept.position, 0, snapshot=info
        )
    elif point.kind == "recorded":
        return _at_recorded(projector, point, plan, end, progress)
    else:
        return _at_occurred(app, projection, point, plan, end, progress)
    at.reconstructions = plan.standing(at.position)
    return at


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
    return _as_of(point, projection, state, position, applied, snapshot=used)


def _at_recorded(
    projector: Projector, point: Point, plan: Plan, end: int, progress: Progress | None
) -> AsOf:
    """The store as recorded by the point's time: the prefix of positions before the first
    ``Recorded`` or reconstruction event recorded after it, folded as ``@N`` is."""
    _recorded_only(projector.projection, point.text)
    moment = point.moment
    assert moment is not None
    app = projector.app
    prefix = recorded_limit(plan, moment, end)
    for timed in recorded_facts_timed(app, 0, prefix):
        late = next((f.notification_id for f, when in timed if when > moment), None)
        tell(progress, READING_EVENTS, timed[-1][0].notification_id, end, NOTIFICATIONS)
        if late is not None:
            prefix = late - 1
            break
    at = _at_position(projector, point, prefix, progress)
    at.left_out = sum(len(page) for page in recorded_pages(app, prefix, end))
    at.reconstructions = plan.standing(prefix)
    return at


def _at_occurred(
    app: Eventfold,
    projection: Projection[Any],
    point: Point,
    plan: Plan,
    end: int,
    progress: Progress | None,
) -> AsOf:
    """The events up to ``end`` that occurred at or before the point's time, and the
    reconstructions standing at ``end`` that the rule of ``attime.py`` counts
    (``PointError`` for a time inside the period of one)."""
    moment = point.moment
    assert moment is not None
    cut = OccurredCut.of(plan, end, moment)
    split = cut.splitting
    if split is not None:
        start, stop = split.start.isoformat(), split.end.isoformat()
        msg = (
            f"{point.text}: inside the period {start}/{stop} of reconstruction "
            f"{split.ident}, whose summary stands for the whole period and cannot be "
            f"split; give a time before {start} or at or after {stop}, or a position @N"
        )
        raise PointError(msg)
    return _fold_where(app, projection, point, lambda when: when <= moment, progress, cut, end)


def state_in_window(
    app: Eventfold,
    projection: Projection[Any],
    since: datetime | None,
    until: datetime | None,
    through: datetime | None = None,
    progress: Progress | None = None,
) -> AsOf:
    """The state of the raw events that occurred in ``[since, until)`` (either bound may
    be None) and, given ``through``, at or before it; events without a timestamp are left
    out. Every event is read; nothing is written; reconstructions are not counted."""

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
    cut: OccurredCut | None = None,
    end: int | None = None,
) -> AsOf:
    """The state of the events (up to ``end``, default the store's end) whose occurrence
    time ``kept`` keeps (events without a timestamp are left out and counted), every
    event read, nothing written; with ``cut``, the summaries of its counted
    reconstructions in and the raw events they stand for left out (and counted)."""
    _recorded_only(projection, point.text)
    handler = projection.handler(Category.Recorded)
    if end is None:
        end = app.recorder.max_notification_id() or 0
    state = projection.initial()
    applied = left_out = without = stood = 0
    stands = None if cut is None or not cut.standing else cut.stood_for
    for page in recorded_facts(app, 0, end):
        for fact in page:
            when = fact.occurred_at
            if when is None:
                without += 1
            elif not kept(when):
                left_out += 1
            elif stands is not None and stands(fact):
                stood += 1
            else:
                applied += 1
                if handler is not None:
                    handler(state, fact)
        tell(progress, REBUILDING, page[-1].notification_id, end, NOTIFICATIONS)
    if cut is not None:
        for adjustment in cut.adjustments():
            projection.adjust(state, adjustment)
    at = _as_of(point, projection, state, end, applied, left_out, without)
    if cut is not None:
        at.reconstructions, at.stood_for = cut.counted, stood
    return at


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
    left_out: int = 0,
    without: int = 0,
    snapshot: SnapshotInfo | None = None,
) -> AsOf:
    """The ``AsOf`` of ``state``, its canonical document and checksum computed once."""
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
        snapshot=snapshot,
        state=state,
    )
