"""Rebuild a projection from scratch, or catch it up from its newest valid snapshot.

A rebuild folds every event into a new generation and switches to it only at
the end. A catch-up loads the newest snapshot that verifies (falling back to
older ones, and to a rebuild when none does) and folds only the events after
its position. Projections are order-independent folds with a ``merge``, so
``workers`` processes can fold disjoint ranges of notification ids and merge
to exactly the single-process state.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic

from eventfold.application.app import Eventfold
from eventfold.application.pages import notification_pages
from eventfold.application.progress import (
    CATCHING_UP,
    NOTIFICATIONS,
    REBUILDING,
    Progress,
    tell,
)
from eventfold.application.projecting.following import follow_events
from eventfold.application.projecting.shadow import Comparison, compared
from eventfold.application.projecting.workers import fold_parallel
from eventfold.application.reconstructing.plan import TOPICS as RECONSTRUCTION_TOPICS
from eventfold.application.reconstructing.plan import Plan, load_plan
from eventfold.application.recorded import RECORDED_TOPIC, fact_of, recorded_pages
from eventfold.domain.model import Category
from eventfold.infra import failpoints
from eventfold.infra.errors import StoreBusyError, StoreReadOnlyError
from eventfold.projections.base import Projection
from eventfold.projections.snapshots import (
    ProjectionSnapshots,
    Skipped,
    SnapshotInfo,
    newest_kept,
)

if TYPE_CHECKING:
    from eventfold.application.projecting.distributed import SharedRun

DEFAULT_SNAPSHOT_EVERY = 10_000
PARALLEL_FROM_EVENTS = 200_000  # a rebuild over more notifications uses every core (up to 4)
DEFAULT_KEEP = 3  # snapshots kept per generation
# A snapshot of B bytes is followed by the next one no sooner than B / 2 events later:
# writing a byte costs about what folding a fifteenth of an event does, so snapshots
# of a large state (100,000 categories: 14 MB) stay under a tenth of the fold's time.
SNAPSHOT_BYTES_PER_EVENT = 2


def snapshots_of(
    app: Eventfold, projection: Projection[Any], keep: int = DEFAULT_KEEP
) -> ProjectionSnapshots:
    """The snapshots of ``projection``, kept by the application's backend."""
    return ProjectionSnapshots(app.backend.snapshot_documents(projection.name, keep), projection)


@dataclass
class ProjectionReport:
    """What a rebuild or catch-up did, and the state it reached."""

    projection: str
    mode: str  # "rebuild" or "catchup"
    generation: str
    from_position: int
    position: int
    events_applied: int
    checksum: str
    canonical: dict[str, Any]
    state: Any
    snapshot_used: SnapshotInfo | None = None
    snapshot_written: SnapshotInfo | None = None  # None when this run wrote none
    skipped: list[Skipped] = field(default_factory=list)
    workers: int = 1
    elapsed: float = 0.0
    reason: str = ""  # why a catch-up rebuilt instead
    unwritten: str = ""  # why no snapshot could be written (read-only store, busy projection)
    figures: dict[str, dict[str, Any]] | None = None  # the projection's figures() of the state
    comparison: Comparison | None = None  # rebuild --compare: against the generation in use
    shared: SharedRun | None = None  # rebuild --worker: what this worker of a shared rebuild did

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document of ``rebuild`` and ``catchup`` (keys only ever added)."""
        doc: dict[str, Any] = {
            "projection": self.projection,
            "mode": self.mode,
            "generation": self.generation,
            "position": self.position,
            "from_position": self.from_position,
            "events_applied": self.events_applied,
            "checksum": self.checksum,
            "snapshot_used": None if self.snapshot_used is None else self.snapshot_used.to_json(),
            "snapshot_written": None
            if self.snapshot_written is None
            else self.snapshot_written.to_json(),
            "skipped_snapshots": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "workers": self.workers,
            "elapsed_seconds": round(self.elapsed, 6),
            "rebuilt_because": self.reason or None,
            "snapshot_not_written_because": self.unwritten or None,
        }
        doc.update(self.canonical)
        if self.figures is not None:
            doc["figures"] = self.figures
        if self.comparison is not None:
            doc["compare"] = self.comparison.to_json()
        if self.shared is not None:
            doc.update(self.shared.to_json())
        return doc


class ProjectionBusyError(StoreBusyError):
    """Another process holds the projection (exit code 2)."""


class Projector:
    """Folds the store's events into one projection, with verified snapshots."""

    def __init__(
        self,
        app: Eventfold,
        store_dir: str,
        projection: Projection[Any],
        *,
        snapshot_every: int = DEFAULT_SNAPSHOT_EVERY,
        keep: int = DEFAULT_KEEP,
    ) -> None:
        self.app = app
        self.store_dir = store_dir
        self.projection = projection
        self.snapshot_every = snapshot_every
        self.snapshots = snapshots_of(app, projection, keep)
        self._plan: Plan | None = None

    def snapshot_gap(self, last: SnapshotInfo | None) -> int:
        """Events to apply before the next snapshot, after ``last`` (written or loaded):
        ``snapshot_every``, or more for a large state (one event per
        ``SNAPSHOT_BYTES_PER_EVENT`` bytes of ``last``)."""
        size = 0 if last is None else last.size
        return max(self.snapshot_every, size // SNAPSHOT_BYTES_PER_EVENT)

    def rebuild(
        self,
        *,
        workers: int | None = 1,
        progress: Progress | None = None,
        compare: bool = False,
        switch: bool = False,
    ) -> ProjectionReport:
        """Fold every event into a new generation; switch to it at the end.

        ``workers=None`` picks one process per core (up to 4) for a store of
        more than ``PARALLEL_FROM_EVENTS`` notifications, else one. Takes the
        projection's lock (``ProjectionBusyError`` if another process holds it).
        With ``compare``, the new generation is compared with the current one
        (``shadow.py``) and switched to only when they are equal, or with ``switch``;
        the report's ``comparison`` says what differs and whether it switched.
        """
        with self._lock(required=True):
            return self._rebuild(workers, progress, compare, switch)

    def _rebuild(
        self,
        workers: int | None,
        progress: Progress | None,
        compare: bool = False,
        switch: bool = False,
    ) -> ProjectionReport:
        started = time.perf_counter()
        last = self.app.recorder.max_notification_id() or 0
        if workers is None:
            workers = min(os.cpu_count() or 1, 4) if last > PARALLEL_FROM_EVENTS else 1
        current = self.snapshots.current() if compare else None
        kept = None if current is None else newest_kept(self.snapshots, current, last)
        generation = self.snapshots.new_generation()
        until = last if kept is None else kept.position  # compared there, then folded on
        if workers > 1 and until > 0:
            state, applied = fold_parallel(self, until, workers, progress)
        else:
            state = self.projection.initial()
            applied = self._fold(state, 0, until, generation, 0, progress, REBUILDING)
        comparison = None
        if kept is not None and current is not None:
            comparison = compared(self.projection, kept, current, generation, state)
            applied = self._fold(state, until, last, generation, applied, progress, REBUILDING)
        canonical = self.projection.canonical(state)
        written = self.snapshots.write(generation, state, last, applied, canonical)
        failpoints.reach("projection.after-snapshot")
        failpoints.reach("projection.before-switch")
        if comparison is None or comparison.equal or switch:
            self.snapshots.switch(generation)
            if comparison is not None:
                comparison.switched = True
        report = self._report(
            "rebuild",
            generation,
            0,
            last,
            applied,
            state,
            None,
            written,
            [],
            workers,
            started,
            canonical,
        )
        report.comparison = comparison
        return report

    def catchup(self, *, progress: Progress | None = None) -> ProjectionReport:
        """Apply only the events after the newest valid snapshot (rebuild if there is none).

        When another process holds the projection (a rebuild or a follow), or the
        store is read-only, the result is computed all the same but no snapshot is
        written (the report's ``unwritten`` says why).
        """
        with self._lock(required=False) as unwritable:
            return self._catchup(unwritable is None, progress, unwritable or "")

    def _catchup(
        self, writable: bool, progress: Progress | None, unwritable: str = ""
    ) -> ProjectionReport:
        """``unwritable``: why no snapshot can be written, when not ``writable``."""
        started = time.perf_counter()
        generation = self.snapshots.current()
        last = self.app.recorder.max_notification_id() or 0
        loaded = None if generation is None else self.snapshots.load(generation, last)
        if loaded is None or loaded.info is None:
            reason = "no earlier rebuild" if loaded is None else "no valid snapshot"
            if writable:
                report = self._rebuild(1, progress)
            else:
                state = self.projection.initial()
                applied = self._fold(state, 0, last, None, 0, progress, CATCHING_UP)
                report = self._report(
                    "catchup",
                    generation or "-",
                    0,
                    last,
                    applied,
                    state,
                    None,
                    None,
                    [],
                    1,
                    started,
                )
                report.unwritten = unwritable
            report.mode, report.reason = "catchup", reason
            report.skipped = [] if loaded is None else loaded.skipped
            return report
        assert generation is not None
        used, state = loaded.info, loaded.state
        target = generation if writable else None
        applied = (
            self._fold(
                state,
                used.position,
                last,
                target,
                used.events_applied,
                progress,
                CATCHING_UP,
                used,
            )
            - used.events_applied
        )
        written: SnapshotInfo | None = None  # none when nothing was applied: ``used`` is current
        if writable and last > used.position:
            written = self.snapshots.write(generation, state, last, used.events_applied + applied)
        report = self._report(
            "catchup",
            generation,
            used.position,
            last,
            applied,
            state,
            used,
            written,
            loaded.skipped,
            1,
            started,
            # nothing applied: the state is the snapshot's, whose checksum was just verified
            checksum=used.checksum if not applied else None,
        )
        if not writable:
            report.unwritten = unwritable
        return report

    @contextlib.contextmanager
    def _lock(self, *, required: bool) -> Iterator[str | None]:
        """Hold the projection's lock; yield None if held, else why snapshots cannot be
        written (``required``: raise instead)."""
        try:
            release = self.snapshots.try_lock()
        except StoreReadOnlyError:
            if required:
                raise
            yield "the store is read-only"
            return
        if release is None and required:
            msg = (
                f"projection {self.projection.name} is being rebuilt or followed by "
                f"another process{self.snapshots.lock_holder()}"
            )
            raise ProjectionBusyError(msg)
        try:
            yield None if release is not None else "the projection is busy in another process"
        finally:
            if release is not None:
                release()

    def follow(
        self,
        stop: threading.Event,
        on_update: Callable[[ProjectionReport], None] | None = None,
        *,
        snapshot_seconds: float = 30.0,
        update_seconds: float = 0.25,
        changes_only: bool = False,
        progress: Progress | None = None,
    ) -> ProjectionReport:
        """Catch up, then apply events as they are committed (by any process) until ``stop``.

        Calls ``on_update`` right after the catch-up and every ``update_seconds``
        (with ``changes_only``, only when the position moved). Snapshots every
        ``snapshot_every`` events, every ``snapshot_seconds`` while the state
        changed (idle or not), and once more when it stops (``stop`` set, or
        KeyboardInterrupt). Holds the projection's lock while it runs. ``progress``
        is told the catch-up's. The rules in full: ``following.py``.
        """
        with self._lock(required=True):
            return follow_events(
                self, stop, on_update, snapshot_seconds, update_seconds, changes_only, progress
            )

    def _apply_one(self, state: Any, notification: Notification) -> None:
        """Handlers of ``Recorded`` get a ``RecordedFact``; others the library's event; a
        projection that folds reconstructions their adjustments, and no held fact."""
        if notification.topic in RECONSTRUCTION_TOPICS:
            if self.projection.folds_reconstructions:
                made_or_retired = self.app.mapper.to_domain_event(notification)
                plan = self.plan().applying(made_or_retired, notification.id)
                self._plan = load_plan(self.app) if plan is None else plan
                for adjustment in self._plan.adjustments(notification.id - 1, notification.id):
                    self.projection.adjust(state, adjustment)
            return
        if notification.topic == RECORDED_TOPIC:
            event: Any = fact_of(self.app, notification)
            handler = self.projection.handler(Category.Recorded)
            if self.projection.folds_reconstructions and self.plan().held(event):
                return
        else:
            event = self.app.mapper.to_domain_event(notification)
            handler = self.projection.handler(type(event))
        if handler is not None:
            handler(state, event)

    def plan(self) -> Plan:
        """The store's reconstructions, read once (and again as ``follow`` meets one)."""
        if self._plan is None:
            self._plan = load_plan(self.app)
        return self._plan

    def handled_topics(self) -> set[str]:
        """The topics of the notifications this projection folds."""
        topics = {get_topic(c) for c in self.projection.handlers}
        return topics | RECONSTRUCTION_TOPICS if self.projection.folds_reconstructions else topics

    def _refresh(self, report: ProjectionReport, state: Any, position: int) -> None:
        report.position, report.state = position, state
        report.canonical = self.projection.canonical(state)
        report.checksum = self.projection.checksum(state)
        report.figures = self.projection.figures(state)

    # -- folding ---------------------------------------------------------------

    def fold_range(
        self, state: Any, after: int, last: int, applied: int, progress: Progress | None = None
    ) -> int:
        """Apply the events ``after+1..last`` to ``state`` and write nothing (a state as
        of a point); return ``applied`` plus the events applied."""
        return self._fold(state, after, last, None, applied, progress, REBUILDING)

    def _fold(
        self,
        state: Any,
        after: int,
        last: int,
        generation: str | None,
        applied: int,
        progress: Progress | None,
        phase: str,
        used: SnapshotInfo | None = None,
    ) -> int:
        """Apply events ``after+1..last`` to ``state`` (from the snapshot ``used``, if
        any); snapshot every ``snapshot_gap``; return applied.

        Tells ``progress`` the notifications folded of ``last - after``, per page and at
        the end (the total, whatever the type of the last notifications).
        """
        next_snapshot = applied + self.snapshot_gap(used)
        for position, count in self._apply_pages(state, after, last):
            applied += count
            if generation is not None and applied >= next_snapshot:
                written = self.snapshots.write(generation, state, position, applied)
                failpoints.reach("projection.after-snapshot")
                next_snapshot = applied + self.snapshot_gap(written)
            tell(progress, phase, position - after, last - after, NOTIFICATIONS)
        tell(progress, phase, last - after, last - after, NOTIFICATIONS)
        return applied

    def _apply_pages(self, state: Any, after: int, last: int) -> Iterator[tuple[int, int]]:
        """Apply the events a page at a time; yield (last id applied, events in the page).

        ``Recorded`` facts come through the fast path, a page at a time to the
        projection's ``fold_page``; a projection of other event types reads them
        through the library's mapper.
        """
        plan = None
        if self.projection.folds_reconstructions:
            self._plan = plan = load_plan(self.app)  # read once ``last`` is fixed
        if not set(self.projection.handlers) <= {Category.Recorded}:
            topics = sorted(self.handled_topics())
            for notifications in notification_pages(self.app, after, last, topics, page=1000):
                for n in notifications:
                    self._apply_one(state, n)
                yield notifications[-1].id, len(notifications)
            return
        if not plan:
            fold_page = self.projection.fold_page
            for page in recorded_pages(self.app, after, last):
                fold_page(state, page)
                yield page.last_id, len(page)
            return
        yield from self._apply_planned(state, after, last, plan)

    def _apply_planned(
        self, state: Any, after: int, last: int, plan: Plan
    ) -> Iterator[tuple[int, int]]:
        """``_apply_pages`` where reconstructions exist: the pages between adjustments,
        without their held facts, then each adjustment at its position."""
        start = after
        for position, here in itertools.groupby(
            plan.adjustments(after, last), key=attrgetter("notification_id")
        ):
            yield from self._apply_kept(state, start, position - 1, plan)
            for adjustment in here:
                self.projection.adjust(state, adjustment)
            yield position, 1
            start = position
        yield from self._apply_kept(state, start, last, plan)

    def _apply_kept(
        self, state: Any, after: int, last: int, plan: Plan
    ) -> Iterator[tuple[int, int]]:
        """The pages of ``after+1..last`` folded without the facts ``plan`` holds out."""
        for page in recorded_pages(self.app, after, last):
            kept = plan.keep(page)
            if kept is not None:
                self.projection.fold_page(state, kept)
            yield page.last_id, len(page)

    def _report(
        self,
        mode: str,
        generation: str,
        after: int,
        last: int,
        applied: int,
        state: Any,
        used: SnapshotInfo | None,
        written: SnapshotInfo | None,
        skipped: list[Skipped],
        workers: int,
        started: float,
        canonical: Any = None,
        *,
        checksum: str | None = None,
    ) -> ProjectionReport:
        """The report of a fold that reached ``state``. ``canonical``: the projection's
        ``canonical(state)``, and ``checksum`` the state's, when the caller has them
        (computing either again costs as much as the canonical state)."""
        if canonical is None:
            canonical = self.projection.canonical(state)
        if checksum is None:
            if written is not None and written.position == last:  # of this very state
                checksum = written.checksum
            else:
                checksum = self.projection.checksum(state)
        return ProjectionReport(
            self.projection.name,
            mode,
            generation,
            after,
            last,
            applied,
            checksum,
            canonical,
            state,
            used,
            written,
            skipped,
            workers,
            time.perf_counter() - started,
            figures=self.projection.figures(state),
        )
