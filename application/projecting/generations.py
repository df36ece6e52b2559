"""The generations a projection keeps, each with its newest verified snapshot."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eventfold.application.app import Eventfold
from eventfold.application.projecting.projector import snapshots_of
from eventfold.projections.base import Projection
from eventfold.projections.snapshots import Kept, newest_kept


@dataclass(frozen=True)
class Generation:
    """One generation: whether it is in use, its snapshots, the newest that verifies."""

    name: str
    current: bool
    snapshots: int
    newest: Kept | None

    def to_json(self) -> dict[str, Any]:
        n = self.newest
        return {
            "generation": self.name,
            "current": self.current,
            "snapshots": self.snapshots,
            "position": None if n is None else n.position,
            "checksum": None if n is None else n.checksum,
            "version": None if n is None else n.version,
            "created": None if n is None else n.created,
        }


@dataclass
class Generations:
    projection: str
    current: str | None
    generations: list[Generation] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "projection": self.projection,
            "current": self.current,
            "generations": [g.to_json() for g in self.generations],
        }


def list_generations(app: Eventfold, projection: Projection[Any]) -> Generations:
    """Every generation kept of ``projection``, oldest first; a generation's checksum is
    that of its newest snapshot that verifies (by any code version), or None."""
    snapshots = snapshots_of(app, projection)
    store_end = app.recorder.max_notification_id() or 0
    current = snapshots.current()
    listing = Generations(projection.name, current)
    for name in snapshots.documents.generations():
        documents = snapshots.documents.documents(name)
        newest = newest_kept(snapshots, name, store_end)
        listing.generations.append(Generation(name, name == current, len(documents), newest))
    return listing
