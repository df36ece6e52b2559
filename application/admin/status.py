"""``eventfold status``: the store's size, each projection's position and lag, and how
its sources' files stand (by their sizes only: ``sources.py``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from eventfold.application.admin.partitions import PartitionsStatus, partitions_status
from eventfold.application.admin.sources import SourcesReport, source_states
from eventfold.application.app import Eventfold
from eventfold.application.projecting import snapshots_of
from eventfold.application.reconstructing.plan import load_plan
from eventfold.projections.registry import UnknownProjectionError, load_projection


@dataclass
class ProjectionStatus:
    name: str
    generation: str | None
    position: int | None  # of the newest valid snapshot
    lag: int | None  # notifications in the store after it
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""


@dataclass
class StoreStatus:
    path: str
    events: int
    last_notification_id: int
    files: int
    bytes: int
    projections: list[ProjectionStatus]
    backend: str = "file"
    location: str = ""  # where the events are (the backend's description)
    files_are_the_store: bool = True  # else the directory holds only this machine's files
    sources: SourcesReport | None = None  # by sizes only (no digest)
    standing: list[str] = field(default_factory=list)  # the reconstructions standing
    retired: list[str] = field(default_factory=list)  # and those retired
    partitions: PartitionsStatus | None = None  # a partitioned store's join (postgres)

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document (keys are only ever added)."""
        return {
            "store": self.path,
            "backend": self.backend,
            "events": self.events,
            "last_notification_id": self.last_notification_id,
            "files": self.files,
            "bytes": self.bytes,
            "projections": [
                {
                    "name": p.name,
                    "generation": p.generation,
                    "position": p.position,
                    "lag": p.lag,
                    "snapshots": p.snapshots,
                    "note": p.note or None,
                }
                for p in self.projections
            ],
            "sources": None if self.sources is None else self.sources.summary(),
            "reconstructions": {"standing": self.standing, "retired": self.retired},
            "partitions": None if self.partitions is None else self.partitions.to_json(),
        }


def store_status(app: Eventfold, store_dir: str) -> StoreStatus:
    last = app.recorder.max_notification_id() or 0
    files = size = 0
    for root, _, names in os.walk(store_dir):
        for name in names:
            files += 1
            size += os.path.getsize(os.path.join(root, name))
    names = app.backend.projection_names()
    projections = [_projection(app, name, last) for name in names]
    count = app.backend.event_count()
    events = last if count is None else count
    status = StoreStatus(store_dir, events, last, files, size, projections, app.backend.name)
    status.location = app.backend.describe()
    status.files_are_the_store = app.backend.checks_files
    status.sources = source_states(app, digest=False, tail=False)
    status.partitions = partitions_status(app)
    for r in load_plan(app).reconstructions:
        (status.standing if r.retired_on is None else status.retired).append(r.ident)
    return status


def _projection(app: Eventfold, name: str, last: int) -> ProjectionStatus:
    try:
        projection = load_projection(name)
    except UnknownProjectionError:
        return _unverified(app, name, last)
    generation, rows = snapshots_of(app, projection).list()
    status = ProjectionStatus(name, generation, None, None)
    for path, info, problem in rows:
        if info is None:
            status.snapshots.append({"path": path, "valid": False, "reason": problem})
            continue
        status.snapshots.append(info.to_json() | {"valid": True})
        if status.position is None:
            status.position, status.lag = info.position, max(last - info.position, 0)
    return status


def _unverified(app: Eventfold, name: str, last: int) -> ProjectionStatus:
    """A projection whose code is not installed here: positions as the backend keeps them."""
    documents = app.backend.snapshot_documents(name, keep=0)
    current = documents.current()
    positions = [d.position for d in documents.documents(current)] if current else []
    status = ProjectionStatus(
        name, current, None, None, note="projection code not found here: snapshots not verified"
    )
    status.snapshots = [{"position": p, "valid": None} for p in positions]
    if positions:
        status.position, status.lag = positions[0], max(last - positions[0], 0)
    return status
