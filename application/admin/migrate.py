"""``eventfold migrate``: copy a store to another backend, resumably, and prove the copy.

Events are copied in notification order, a batch per commit, each commit
carrying a tracking record (``eventfold.migrate:<source>`` -> the last source
notification id copied), so a run killed at any instant resumes after the
last commit and never copies an event twice. Aggregate versions, topics and
states are copied as they are; notification ids are the target's own (the
order is what is preserved). Then the source's tracking records (where each
ingested source stands) and the aggregates' snapshots are copied, and
every projection the source has is rebuilt in the target.

The copy is verified at the end: a SHA-256 over every event (originator,
version, topic, state, in order) on each side, and the checksum of each
projection on each side, must agree.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent, Tracking

from eventfold.application.admin.partitions import partitions_waiting
from eventfold.application.app import Eventfold, StorePathError, open_app
from eventfold.application.pages import notification_pages
from eventfold.application.progress import COMPARING, COPYING, NOTIFICATIONS, Progress, tell
from eventfold.application.projecting import Projector
from eventfold.infra import failpoints, storepath
from eventfold.infra.backends import is_shared
from eventfold.infra.errors import EventfoldError, UsageError
from eventfold.projections.registry import UnknownProjectionError, load_projection

PAGE = 1000


class MigrateTargetError(EventfoldError):
    """The target already holds events that are not an earlier copy of this source."""


@dataclass
class ProjectionCheck:
    name: str
    source_checksum: str
    target_checksum: str

    @property
    def matches(self) -> bool:
        return self.source_checksum == self.target_checksum

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source_checksum": self.source_checksum,
            "target_checksum": self.target_checksum,
            "match": self.matches,
        }


@dataclass
class MigrateReport:
    source: str
    target: str
    events: int = 0  # in the source
    copied: int = 0  # by this run
    resumed_from: int = 0  # source notification id the run started after
    tracking_records: int = 0
    aggregate_snapshots: int = 0
    source_digest: str = ""
    target_digest: str = ""
    projections: list[ProjectionCheck] = field(default_factory=list)
    not_checked: list[str] = field(default_factory=list)  # projections whose code is missing
    elapsed: float = 0.0
    waiting: str | None = None  # a partitioned source's events not in its log yet

    @property
    def matches(self) -> bool:
        return self.source_digest == self.target_digest and all(p.matches for p in self.projections)

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document (keys are only ever added)."""
        return {
            "source": self.source,
            "target": self.target,
            "status": "match" if self.matches else "mismatch",
            "events": self.events,
            "copied": self.copied,
            "resumed_from": self.resumed_from,
            "tracking_records": self.tracking_records,
            "aggregate_snapshots": self.aggregate_snapshots,
            "source_digest": self.source_digest,
            "target_digest": self.target_digest,
            "projections": [p.to_json() for p in self.projections],
            "projections_not_checked": self.not_checked,
            "elapsed_seconds": round(self.elapsed, 6),
        }


def migrate_store(
    store: str,
    source_backend: str,
    target_backend: str,
    *,
    target_store: str | None,
    progress: Progress | None = None,
) -> MigrateReport:
    """Copy the store ``store`` of ``source_backend`` into ``target_backend`` (into the file
    store ``target_store``, required when the target is ``file``), then verify the copy.

    Raises ``UsageError`` when both sides would be the one shared database, or
    when a file target has no directory.
    """
    if source_backend == target_backend and is_shared(target_backend):
        msg = (
            f"migrate copies between backends: --from and --to are both "
            f"{target_backend}, one shared database"
        )
        raise UsageError(msg)
    target_dir = target_store or (store if is_shared(target_backend) else None)
    if target_dir is None:
        msg = "--to-store DIR is required: the file store to copy into"
        raise UsageError(msg)
    problem = storepath.path_problem(target_dir)  # before anything is read
    if problem:
        raise StorePathError(problem)
    source = open_app(store, source_backend, create=False)
    try:
        target = open_app(target_dir, target_backend, writes="migrate")
        try:
            report = migrate(
                source,
                source.state_dir,
                target,
                target.state_dir,
                source_name=source.backend.describe(),
                target_name=target.backend.describe(),
                progress=progress,
            )
            report.waiting = partitions_waiting(source)
            return report
        finally:
            target.close()
    finally:
        source.close()


def migrate(
    source: Eventfold,
    source_dir: str,
    target: Eventfold,
    target_dir: str,
    *,
    source_name: str,
    target_name: str,
    progress: Progress | None = None,
) -> MigrateReport:
    """Copy ``source`` into ``target`` (resuming an earlier copy), then verify both.

    ``progress`` is told the phases: copying, comparing (the target's events), and
    each projection's catching up and rebuilding."""
    started = time.perf_counter()
    report = MigrateReport(source_name, target_name)
    tracking_name = f"eventfold.migrate:{source_name}"
    done = target.process_recorder.max_tracking_id(tracking_name) or 0
    if not done and (target.recorder.max_notification_id() or 0):
        msg = f"{target_name} already holds events that are not a copy of {source_name}"
        raise MigrateTargetError(msg)
    report.resumed_from = done
    last = source.recorder.max_notification_id() or 0
    originators: set[UUID | str] = set()
    source_digest = hashlib.sha256()
    for page in notification_pages(source, 0, last, page=PAGE):
        report.events += _digest(source_digest, page)
        originators.update(n.originator_id for n in page)
        tell(progress, COPYING, page[-1].id, last, NOTIFICATIONS)
        if page[-1].id <= done:
            continue
        fresh = [n for n in page if n.id > done]
        stored = [
            StoredEvent(n.originator_id, n.originator_version, n.topic, n.state) for n in fresh
        ]
        target.process_recorder.insert_events(
            stored, tracking=Tracking(tracking_name, fresh[-1].id)
        )
        report.copied += len(stored)
        failpoints.reach("migrate.after-commit")
    report.tracking_records = _copy_tracking(source, target, skip=tracking_name)
    report.aggregate_snapshots = _copy_snapshots(source, target, originators)
    now = source.recorder.max_notification_id() or 0  # events written meanwhile count too
    for page in notification_pages(source, last, now, page=PAGE):
        report.events += _digest(source_digest, page)
    report.source_digest = source_digest.hexdigest()
    report.target_digest, _ = stream_digest(target, progress)
    _check_projections(source, source_dir, target, target_dir, report, progress)
    report.elapsed = time.perf_counter() - started
    return report


def stream_digest(app: Eventfold, progress: Progress | None = None) -> tuple[str, int]:
    """SHA-256 over every event in notification order (originator, version, topic,
    state), and the number of events."""
    digest, count = hashlib.sha256(), 0
    last = app.recorder.max_notification_id() or 0
    for page in notification_pages(app, 0, last, page=PAGE):
        count += _digest(digest, page)
        tell(progress, COMPARING, page[-1].id, last, NOTIFICATIONS)
    return digest.hexdigest(), count


def _digest(digest: Any, page: Sequence[Notification]) -> int:
    """Feed a page of events to ``stream_digest``'s hash; how many there were."""
    for n in page:
        head = f"{n.originator_id}\x00{n.originator_version}\x00{n.topic}\x00{len(n.state)}\x00"
        digest.update(head.encode("utf-8"))
        digest.update(n.state)
    return len(page)


def _copy_tracking(source: Eventfold, target: Eventfold, *, skip: str) -> int:
    copied = 0
    recorder = target.process_recorder
    for name, position in sorted(source.backend.tracking_positions().items()):
        if name == skip or (recorder.max_tracking_id(name) or 0) >= position:
            continue
        recorder.insert_tracking(Tracking(name, position))
        copied += 1
    return copied


def _copy_snapshots(source: Eventfold, target: Eventfold, originators: set[UUID | str]) -> int:
    """Copy the aggregates' snapshots (the library's snapshot store) that the target lacks."""
    if source.snapshots is None or target.snapshots is None:
        return 0
    copied = 0
    for originator_id in sorted(originators, key=str):
        have = {
            s.originator_version for s in target.snapshots.recorder.select_events(originator_id)
        }
        missing = [
            s
            for s in source.snapshots.recorder.select_events(originator_id)
            if s.originator_version not in have
        ]
        if missing:
            target.snapshots.recorder.insert_events(missing)
            copied += len(missing)
    return copied


def _check_projections(
    source: Eventfold,
    source_dir: str,
    target: Eventfold,
    target_dir: str,
    report: MigrateReport,
    progress: Progress | None,
) -> None:
    """Each projection of the source, and category_totals: caught up there, rebuilt here."""
    for name in dict.fromkeys(["category_totals", *source.backend.projection_names()]):
        try:
            projection = load_projection(name)
        except UnknownProjectionError:
            report.not_checked.append(name)  # its code is not installed here
            continue
        before = Projector(source, source_dir, projection).catchup(progress=progress)
        after = Projector(target, target_dir, load_projection(name)).rebuild(progress=progress)
        report.projections.append(ProjectionCheck(name, before.checksum, after.checksum))
