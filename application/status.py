"""``eventfold status``: the store's size, and each projection's position and lag."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from eventfold.application.app import Eventfold
from eventfold.application.projection_stores import projection_names, snapshot_store
from eventfold.projections.registry import UnknownProjectionError, load_projection
from eventfold.projections.snapshots import SNAPSHOT, projection_dir


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
                {"name": p.name, "generation": p.generation, "position": p.position,
                 "lag": p.lag, "snapshots": p.snapshots, "note": p.note or None}
                for p in self.projections
            ],
        }  # fmt: skip


def store_status(app: Eventfold, store_dir: str) -> StoreStatus:
    last = app.recorder.max_notification_id() or 0
    files = size = 0
    for root, _, names in os.walk(store_dir):
        for name in names:
            files += 1
            size += os.path.getsize(os.path.join(root, name))
    names = projection_names(app, store_dir)
    projections = [_projection(app, store_dir, name, last) for name in names]
    return StoreStatus(store_dir, last, last, files, size, projections, app.backend)


def _projection(app: Eventfold, store_dir: str, name: str, last: int) -> ProjectionStatus:
    try:
        projection = load_projection(name)
    except UnknownProjectionError:
        if app.backend != "file":
            return ProjectionStatus(name, None, None, None,
                                    note="projection code not found here: not read")  # fmt: skip
        return _unverified(store_dir, name, last)
    generation, rows = snapshot_store(app, store_dir, projection).list()
    status = ProjectionStatus(name, generation, None, None)
    for path, info, problem in rows:
        if info is None:
            status.snapshots.append({"path": path, "valid": False, "reason": problem})
            continue
        status.snapshots.append(info.to_json() | {"valid": True})
        if status.position is None:
            status.position, status.lag = info.position, max(last - info.position, 0)
    return status


def _unverified(store_dir: str, name: str, last: int) -> ProjectionStatus:
    """A projection whose code is not installed here: positions read off file names."""
    directory = projection_dir(store_dir, name)
    current = None
    try:
        with open(os.path.join(directory, "CURRENT")) as f:
            current = f.read().strip()
        names = sorted(os.listdir(os.path.join(directory, current)), reverse=True)
    except OSError:
        names = []
    positions = [int(m.group(1)) for n in names if (m := SNAPSHOT.match(n))]
    status = ProjectionStatus(name, current, None, None,
                              note="projection code not found here: snapshots not verified")
    status.snapshots = [{"position": p, "valid": None} for p in positions]
    if positions:
        status.position, status.lag = positions[0], max(last - positions[0], 0)
    return status
