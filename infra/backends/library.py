"""Any other persistence module of the eventsourcing library (POPO, SQLite, ...).

Events go through the library's recorders as ``StoredEvent`` objects; projection
snapshots are kept as files in the working directory, as the file backend keeps
them. Used when an eventfold application is built over such a module directly
(tests, embedding); the CLI offers ``file`` and ``postgres``.
"""

from __future__ import annotations

import os

from eventsourcing.persistence import ProcessRecorder, StoredEvent, Tracking, TrackingRecorder

from eventfold.infra.backends.base import BackendError
from eventfold.infra.backends.file import FileSnapshotDocuments, projection_dir
from eventfold.infra.filestore.format import EventColumns


class LibraryBackend:
    """The store is whatever the library's persistence module ``name`` keeps."""

    checks_files = False

    def __init__(
        self, name: str, tracking_recorder_class: type[TrackingRecorder], state_dir: str
    ) -> None:
        self.name = name
        self.tracking_recorder_class = tracking_recorder_class
        self.state_dir = state_dir

    def snapshot_documents(self, projection: str, keep: int) -> FileSnapshotDocuments:
        return FileSnapshotDocuments(projection_dir(self.state_dir, projection), keep)

    def projection_names(self) -> list[str]:
        directory = os.path.join(self.state_dir, "projections")
        return sorted(os.listdir(directory)) if os.path.isdir(directory) else []

    def tracking_positions(self) -> dict[str, int]:
        msg = f"{self.name}: listing every tracking record is not supported"
        raise BackendError(msg)

    def insert(
        self, recorder: ProcessRecorder, events: EventColumns, tracking: Tracking
    ) -> list[int]:
        stored = [StoredEvent(*columns) for columns in zip(*events, strict=True)]
        nids = recorder.insert_events(stored, tracking=tracking)
        assert nids is not None and len(nids) == len(stored)
        return list(nids)

    def worker_env(self) -> dict[str, str]:
        return {}

    def describe(self) -> str:
        return self.name
