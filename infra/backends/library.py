"""Any other persistence module of the eventsourcing library (POPO, SQLite, ...).

Events go through the library's recorders as ``StoredEvent`` objects; projection
snapshots are kept as files in the working directory, as the file backend keeps
them. Used when an eventfold application is built over such a module directly
(tests, embedding); the CLI offers ``file`` and ``postgres``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from uuid import UUID

from eventsourcing.persistence import ProcessRecorder, Tracking, TrackingRecorder

from eventfold.infra.backends.base import (
    BackendError,
    insert_stored_events,
    last_versions_one_by_one,
    positions_by_reading,
)
from eventfold.infra.backends.file import ProjectionFiles
from eventfold.infra.filestore.format import EventColumns
from eventfold.infra.filestore.shapes import ByFields


class LibraryBackend(ProjectionFiles):
    """The store is whatever the library's persistence module ``name`` keeps."""

    checks_files = False

    def __init__(
        self, name: str, tracking_recorder_class: type[TrackingRecorder], state_dir: str
    ) -> None:
        self.name = name
        self.tracking_recorder_class = tracking_recorder_class
        self.state_dir = state_dir

    def event_count(self) -> int | None:
        return None  # not asked of the library's modules: the last id stands for it

    def tracking_positions(self) -> dict[str, int]:
        msg = f"{self.name}: listing every tracking record is not supported"
        raise BackendError(msg)

    def tracked_originators(self, originator_of: Callable[[str], UUID | None]) -> list[UUID] | None:
        return None  # no index of streams to ask: the caller reads the notifications

    def insert(
        self,
        recorder: ProcessRecorder,
        events: EventColumns,
        tracking: Tracking,
        by_field: ByFields | None = None,
    ) -> list[int]:
        return insert_stored_events(recorder, events, tracking)

    def last_versions(
        self, recorder: ProcessRecorder, originator_ids: Sequence[UUID]
    ) -> dict[UUID, int]:
        return last_versions_one_by_one(recorder, originator_ids)

    def positions(self, recorder: ProcessRecorder, originator_id: UUID) -> list[tuple[int, int]]:
        return positions_by_reading(recorder, originator_id)

    def worker_env(self) -> dict[str, str]:
        return {}

    def describe(self) -> str:
        return self.name
