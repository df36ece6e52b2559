"""The one seam between eventfold and where its store lives: the ``Backend`` protocol.

An application is built over one backend, chosen once (``open_backend``); nothing
downstream asks which one it is. A backend keeps the projections' snapshot
documents (as bytes: what is in them is ``projections/snapshots.py``'s concern),
lists the projections it holds, reads every tracking record (and, where it can
without reading every event, orders the originators they name), appends columns of
events in bulk, says how a worker process reaches the same store, and checks
the store's files. ``file.py`` and ``postgres.py`` implement it. A backend that
several machines share (``postgres.py``) also keeps the plans of rebuilds shared
by several machines (``RebuildPlans``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from eventfold.infra.errors import EventfoldError

if TYPE_CHECKING:
    from eventsourcing.persistence import ProcessRecorder, Tracking, TrackingRecorder

    from eventfold.infra.filestore.format import EventColumns
    from eventfold.infra.filestore.shapes import ByFields


class BackendError(EventfoldError):
    """A backend that is unknown, not configured, not installed, or asked for what it does
    not do (exit code 2)."""


class DatabaseUnavailableError(BackendError):
    """The database backend cannot be used here: its extra is not installed, or its
    settings are missing (exit code 2)."""

    label = "database unavailable"


@dataclass(frozen=True)
class StoredDocument:
    """One snapshot document: where it is (to show), its position, and how to read it."""

    where: str
    position: int
    read: Callable[[], bytes]


class SnapshotDocuments(Protocol):
    """The snapshot documents of one projection, by generation (``CURRENT`` names one)."""

    def try_lock(self) -> Callable[[], None] | None:
        """Take the projection's lock; the function that releases it, or None if held.

        ``StoreReadOnlyError`` where nothing can be written (a read-only store).
        """

    def lock_holder(self) -> str:
        """`` (pid N)`` or the like, naming who holds the lock, or ``""``."""

    def current(self) -> str | None:
        """The generation in use, or None before the first rebuild."""

    def new_generation(self) -> str:
        """Start the next generation (dropping one that a crashed rebuild left)."""

    def switch(self, generation: str) -> None:
        """Make ``generation`` current, atomically, and drop the others."""

    def put(self, generation: str, position: int, document: bytes) -> str:
        """Store a document durably (keeping the newest few); return where it is."""

    def documents(self, generation: str) -> list[StoredDocument]:
        """The documents of a generation, newest first."""

    def generations(self) -> list[str]:
        """Every generation kept (the current one, and one a rebuild is writing or did
        not switch to), oldest first."""


@dataclass(frozen=True)
class RebuildPlan:
    """The open plan of a rebuild shared by ``workers`` processes: the generation it
    writes, the last notification it folds (``until``) and the projection's code
    version (every worker folds with the same code)."""

    workers: int
    generation: str
    until: int
    version: int


@dataclass(frozen=True)
class RebuildPart:
    """What worker ``worker`` (from 1) of a plan folded: notifications ``after+1..last``,
    ``applied`` events, and the state as the projection's ``dump_state`` gave it."""

    worker: int
    after: int
    last: int
    applied: int
    state: bytes


@dataclass(frozen=True)
class PartWrite:
    """What became of a part: ``written`` now, already ``present`` (not written twice),
    or ``closed`` (the plan is no longer open: nothing written); and how many parts
    of the plan are written (0 when ``closed``)."""

    outcome: Literal["written", "present", "closed"]
    parts: int


class RebuildPlans(Protocol):
    """The plan of one projection's shared rebuild and its parts, in the shared store.

    At most one plan is open per projection. A part is written whole or not at
    all (one transaction), at most once per worker, and only while its plan is
    open; ``complete`` switches to the plan's generation and closes the plan
    in one transaction. Starting a generation otherwise
    (``SnapshotDocuments.new_generation``) drops an open plan and its parts.
    """

    def open(self, workers: int, version: int, until: int) -> tuple[RebuildPlan, bool]:
        """The open plan, or (none open) a new one of ``workers``, ``version`` and
        ``until``, numbering its generation as ``new_generation`` does; and whether
        this call opened it. Concurrent callers agree on one plan."""

    def plan(self) -> RebuildPlan | None:
        """The open plan, or None."""

    def written(self, plan: RebuildPlan) -> list[int]:
        """The workers whose parts of ``plan`` are written, in order."""

    def write_part(self, plan: RebuildPlan, part: RebuildPart) -> PartWrite:
        """Write ``part`` of ``plan`` in one transaction, unless it is there already or
        ``plan`` is no longer open. Writers are serialized, so exactly one of them sees
        its write make the last part."""

    def parts(self, plan: RebuildPlan, worker: int | None = None) -> list[RebuildPart]:
        """The parts of ``plan`` (only ``worker``'s, given one), in the order of the
        workers; each checked against the digest written with it."""

    def complete(self, plan: RebuildPlan) -> bool:
        """In one transaction: make ``plan``'s generation current (as ``switch`` does) and
        close the plan, its parts deleted. False (nothing done) when it is not open."""


class Backend(Protocol):
    """Where an application's store lives; see the module's docstring."""

    name: str  # "file" or "postgres": shown, and given to worker processes
    state_dir: str  # this machine's working files (the store itself, for the file backend)
    tracking_recorder_class: type[TrackingRecorder]  # base of custom views

    def snapshot_documents(self, projection: str, keep: int) -> SnapshotDocuments: ...

    def projection_names(self) -> list[str]: ...

    def tracking_positions(self) -> dict[str, int]: ...

    def event_count(self) -> int | None:
        """How many events the store holds, where notification ids may skip (a database's
        sequence after a rolled-back insert); None where they do not: the last id."""

    def tracked_originators(self, originator_of: Callable[[str], UUID | None]) -> list[UUID] | None:
        """The originators that tracking records name, in the order of their first events.

        ``originator_of`` reads a tracking record's name: the originator it names, or
        None. Originators with no event are left out. None when this backend could only
        tell by reading every event (the caller then reads the notifications itself).
        """

    def insert(
        self,
        recorder: ProcessRecorder,
        events: EventColumns,
        tracking: Tracking,
        by_field: ByFields | None = None,
    ) -> list[int]:
        """Append ``events`` with ``tracking`` in one transaction; their notification ids.
        ``by_field``: the states of some topics already split by field, which a backend
        that keeps states so may take (others ignore it)."""

    def last_versions(
        self, recorder: ProcessRecorder, originator_ids: Sequence[UUID]
    ) -> dict[UUID, int]:
        """The version of the last event of each stream that has any (absent: none).

        What ingest asks of every category a run meets first: only versions are
        read, never an event.
        """

    def positions(self, recorder: ProcessRecorder, originator_id: UUID) -> list[tuple[int, int]]:
        """(version, notification id) of each event of one stream, in version order.

        What a fold asks of the one stream of reconstructions: where in the store
        each of its events stands.
        """

    def worker_env(self) -> dict[str, str]: ...

    def rebuild_plans(self, projection: str) -> RebuildPlans | None:
        """The shared rebuild plans of ``projection``, or None where the store is not
        shared by several machines (a file store)."""

    def describe(self) -> str: ...

    @property
    def checks_files(self) -> bool:
        """Whether the store is files that ``eventfold check`` reads (the file backend)."""


def insert_stored_events(
    recorder: ProcessRecorder, events: EventColumns, tracking: Tracking
) -> list[int]:
    """Append ``events`` with ``tracking`` as the library's ``StoredEvent`` objects, through
    its process recorder, in one transaction; their notification ids, in order."""
    stored = [StoredEvent(*columns) for columns in zip(*events, strict=True)]
    nids = recorder.insert_events(stored, tracking=tracking)
    assert nids is not None and len(nids) == len(stored)
    return list(nids)


def last_versions_one_by_one(
    recorder: ProcessRecorder, originator_ids: Sequence[UUID]
) -> dict[UUID, int]:
    """``Backend.last_versions`` through the library's recorder: each stream's newest
    event (``select_events(desc=True, limit=1)``)."""
    found: dict[UUID, int] = {}
    for originator_id in originator_ids:
        last = recorder.select_events(originator_id, desc=True, limit=1)
        if last:
            found[originator_id] = last[0].originator_version
    return found


def positions_by_reading(recorder: ProcessRecorder, originator_id: UUID) -> list[tuple[int, int]]:
    """``Backend.positions`` through the library's recorder alone: every notification
    read, a page at a time, and those of ``originator_id`` kept (for backends with no
    index to ask; the stores of tests and embedding)."""
    found: list[tuple[int, int]] = []
    start = 1
    while True:
        page = recorder.select_notifications(start, 1000)
        found.extend((n.originator_version, n.id) for n in page if n.originator_id == originator_id)
        if len(page) < 1000:
            return sorted(found)
        start = page[-1].id + 1
