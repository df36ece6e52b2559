"""The file backend: the store is a directory (``infra/filestore``), snapshots are files.

Projection snapshots live under ``STORE/projections/NAME/``::

    CURRENT                       the generation in use, e.g. "gen-00000002"
    LOCK                          the projection's lock (flock)
    gen-00000002/snap-000000001000.json

Each document is written atomically (temporary file, fsync, rename, directory
fsync), the newest ``keep`` kept. A rebuild writes a new generation and
switches ``CURRENT`` (atomically) only at the end, so a crash mid-rebuild
leaves the previous generation in use.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
from collections.abc import Callable, Sequence
from uuid import UUID

from eventsourcing.persistence import ProcessRecorder, Tracking, TrackingRecorder

from eventfold.infra import fileio
from eventfold.infra.backends.base import StoredDocument
from eventfold.infra.errors import StoreReadOnlyError
from eventfold.infra.filestore import FileProcessRecorder, FileTrackingRecorder
from eventfold.infra.filestore.format import EventColumns
from eventfold.infra.filestore.index import originator_key
from eventfold.infra.filestore.shapes import ByFields

GENERATION = re.compile(r"^gen-(\d{8})$")
SNAPSHOT = re.compile(r"^snap-(\d{12})\.json$")


def projection_dir(store_dir: str, name: str) -> str:
    return os.path.join(store_dir, "projections", name)


class FileSnapshotDocuments:
    """The snapshot documents of one projection in one store directory."""

    def __init__(self, directory: str, keep: int) -> None:
        self.dir = directory
        self.keep = keep

    def try_lock(self) -> Callable[[], None] | None:
        try:
            os.makedirs(self.dir, exist_ok=True)
            fd = fileio.try_flock(os.path.join(self.dir, "LOCK"))
        except OSError as e:
            if not fileio.is_read_only(e):
                raise
            msg = f"{self.dir} ({e.strerror or e})"
            raise StoreReadOnlyError(msg) from None
        if fd is None:
            return None
        generations = [self._gen(n) for n in os.listdir(self.dir) if GENERATION.match(n)]
        for directory in (self.dir, *generations):
            fileio.remove_temporary(directory)  # left by a crash or a failed write
        return functools.partial(os.close, fd)

    def lock_holder(self) -> str:
        return fileio.flock_holder(os.path.join(self.dir, "LOCK"))

    def current(self) -> str | None:
        try:
            with open(os.path.join(self.dir, "CURRENT")) as f:
                name = f.read().strip()
        except FileNotFoundError:
            return None
        return name if GENERATION.match(name) and os.path.isdir(self._gen(name)) else None

    def new_generation(self) -> str:
        os.makedirs(self.dir, exist_ok=True)
        numbers = [int(m.group(1)) for n in os.listdir(self.dir) if (m := GENERATION.match(n))]
        current = self.current()
        for n in os.listdir(self.dir):  # left by a crashed rebuild
            if GENERATION.match(n) and n != current:
                shutil.rmtree(self._gen(n), ignore_errors=True)
        name = f"gen-{max(numbers, default=0) + 1:08d}"
        os.makedirs(self._gen(name))
        fileio.fsync_dir(self.dir)
        return name

    def switch(self, generation: str) -> None:
        fileio.atomic_write(os.path.join(self.dir, "CURRENT"), generation.encode() + b"\n")
        for n in os.listdir(self.dir):
            if GENERATION.match(n) and n != generation:
                shutil.rmtree(self._gen(n), ignore_errors=True)

    def put(self, generation: str, position: int, document: bytes) -> str:
        path = os.path.join(self._gen(generation), f"snap-{position:012d}.json")
        fileio.atomic_write(path, document + b"\n")
        for old in self.documents(generation)[self.keep :]:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(old.where)
        return path

    def documents(self, generation: str) -> list[StoredDocument]:
        directory = self._gen(generation)
        try:
            names = sorted(os.listdir(directory), reverse=True)
        except FileNotFoundError:
            return []
        found = []
        for name in names:
            if m := SNAPSHOT.match(name):
                path = os.path.join(directory, name)
                found.append(
                    StoredDocument(path, int(m.group(1)), functools.partial(_read_file, path))
                )
        return found

    def generations(self) -> list[str]:
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if GENERATION.match(n) and os.path.isdir(self._gen(n)))

    def _gen(self, generation: str) -> str:
        return os.path.join(self.dir, generation)


def _read_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


class ProjectionFiles:
    """Projections kept as files: snapshot documents in ``state_dir/projections/<name>/``."""

    state_dir: str

    def snapshot_documents(self, projection: str, keep: int) -> FileSnapshotDocuments:
        return FileSnapshotDocuments(projection_dir(self.state_dir, projection), keep)

    def projection_names(self) -> list[str]:
        directory = os.path.join(self.state_dir, "projections")
        return sorted(os.listdir(directory)) if os.path.isdir(directory) else []

    def rebuild_plans(self, projection: str) -> None:
        """None: one machine's files are not shared, so no rebuild is shared."""
        return None


class FileBackend(ProjectionFiles):
    """The store is the directory ``state_dir`` (the application's ``FILESTORE_PATH``)."""

    name = "file"
    tracking_recorder_class: type[TrackingRecorder] = FileTrackingRecorder
    checks_files = True

    def __init__(self, recorder: ProcessRecorder, state_dir: str) -> None:
        assert isinstance(recorder, FileProcessRecorder)
        self.recorder = recorder
        self.state_dir = state_dir

    def event_count(self) -> int | None:
        return None  # a log's notification ids never skip

    def tracking_positions(self) -> dict[str, int]:
        log = self.recorder.log
        log.refresh()
        return dict(log.tracking)

    def tracked_originators(self, originator_of: Callable[[str], UUID | None]) -> list[UUID] | None:
        """From the tracking records the log keeps and its index of streams: no event is
        read (the first event of each originator is found in the index)."""
        log = self.recorder.log
        log.refresh()
        first: dict[UUID, int] = {}
        for name in list(log.tracking):
            originator = originator_of(name)
            if originator is None or originator in first:
                continue
            versions = log.versions(originator_key(originator))
            if versions:
                first[originator] = min(nid for _, nid in versions)
        return sorted(first, key=first.__getitem__)

    def insert(
        self,
        recorder: ProcessRecorder,
        events: EventColumns,
        tracking: Tracking,
        by_field: ByFields | None = None,
    ) -> list[int]:
        """Columns as they are: no ``StoredEvent`` object per event; the states of some
        topics split by field already, if given (the commit keeps them so)."""
        assert isinstance(recorder, FileProcessRecorder)
        return recorder.insert_event_columns(events, tracking, by_field)

    def last_versions(
        self, recorder: ProcessRecorder, originator_ids: Sequence[UUID]
    ) -> dict[UUID, int]:
        """From the log's index alone: no event is read.

        The index knows a stream by its originator's 16-byte key, as the log's own
        uniqueness check does. Keys are looked up in their sorted order, so that
        neighbouring lookups share the index blocks read.
        """
        assert isinstance(recorder, FileProcessRecorder)
        log = recorder.log
        log.refresh()
        found: dict[UUID, int] = {}
        for key, originator_id in sorted((originator_key(i), i) for i in originator_ids):
            version = log.max_version(key)
            if version is not None:
                found[originator_id] = version
        return found

    def positions(self, recorder: ProcessRecorder, originator_id: UUID) -> list[tuple[int, int]]:
        """From the log's index alone: no event is read."""
        assert isinstance(recorder, FileProcessRecorder)
        log = recorder.log
        log.refresh()
        return log.versions(originator_key(originator_id))

    def worker_env(self) -> dict[str, str]:
        return {}

    def describe(self) -> str:
        return f"file:{self.state_dir}"
