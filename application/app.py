"""The eventfold application: one eventsourcing ``Application`` over a store.

``open_store`` builds it over the file store in a directory (the embedded
default); ``open_app`` over the backend a user chose (``infra/backends``:
``file``, or ``postgres`` through the library's ``eventsourcing.postgres``).
The backend is chosen there, once: the application carries it (``backend``)
and nothing else asks which one it is. The recorder is a process recorder so
that ingest can commit its source position (a tracking record) atomically
with the events it produced.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import ProcessRecorder

from eventfold.domain.model import Category, Source
from eventfold.infra import storepath
from eventfold.infra.backends import (
    Backend,
    BackendError,
    backend_name,
    backend_of,
    is_shared,
    open_application,
    store_env,
)
from eventfold.infra.errors import EventfoldError, StoreReadOnlyError

DEFAULT_SNAPSHOT_INTERVAL = 10_000
SOURCE_SNAPSHOT_INTERVAL = 1_000  # at most: a source's stream gains an event per batch

__all__ = [
    "BackendError",
    "Eventfold",
    "StoreNotFoundError",
    "StorePathError",
    "open_app",
    "open_store",
    "require_writable",
    "store_env",
    "undone_on_failure",
]


class StoreNotFoundError(BackendError):
    """No eventfold store in the directory given (exit code 2); nothing was created."""

    label = "unusable store"


class StorePathError(EventfoldError):
    """The path given as the store cannot be one: a file, a path through a file, or a
    directory that cannot be created (exit code 2); nothing was created."""

    label = "unusable store"


class Eventfold(Application[UUID]):
    """Categories and sources, with the library's snapshotting of both."""

    name = "Eventfold"
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {
        Category: DEFAULT_SNAPSHOT_INTERVAL,
        Source: SOURCE_SNAPSHOT_INTERVAL,
    }

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        snapshot_interval: int | None = None,
        state_dir: str | None = None,
    ) -> None:
        super().__init__(env)
        if snapshot_interval is not None:
            if snapshot_interval < 1:
                msg = f"snapshot interval must be at least 1, not {snapshot_interval}"
                raise ValueError(msg)
            # The library reads the intervals through the instance.
            self.snapshotting_intervals = {  # type: ignore[misc]
                Category: snapshot_interval,
                Source: min(snapshot_interval, SOURCE_SNAPSHOT_INTERVAL),
            }
        self.backend: Backend = backend_of(self, self.env, state_dir)

    @property
    def state_dir(self) -> str:
        """This machine's files: the store directory, or (postgres) the working directory."""
        return self.backend.state_dir

    def construct_recorder(self) -> ProcessRecorder:
        return self.factory.process_recorder()

    @property
    def process_recorder(self) -> ProcessRecorder:
        recorder = self.recorder
        assert isinstance(recorder, ProcessRecorder)
        return recorder

    def snapshot_interval(self, aggregate_type: type[Any]) -> int | None:
        return self.snapshotting_intervals.get(aggregate_type)


STORE_LOG = f"{Eventfold.name.lower()}_events"  # the log that makes a directory a store


def open_store(store: str, *, snapshot_interval: int | None = None) -> Eventfold:
    """The application over the file store in ``store`` (created if missing).

    Settings in the process environment (``FILESTORE_DURABILITY`` and the like)
    apply; ``PERSISTENCE_MODULE`` and ``FILESTORE_PATH`` are set here.
    """
    return Eventfold(dict(os.environ) | store_env(store), snapshot_interval=snapshot_interval)


def open_app(
    store: str,
    backend: str | None = None,
    *,
    snapshot_interval: int | None = None,
    create: bool = True,
    writes: str | None = None,
    application: type[Eventfold] | None = None,
) -> Eventfold:
    """The application over ``backend`` (``--backend``, ``$EVENTFOLD_BACKEND``, or ``file``).

    ``store`` is the store directory of the file backend; with ``postgres`` it
    holds only what is local to this machine (the dedup index, which the
    database can always rebuild, and copies of quarantined lines). The events,
    aggregate snapshots, tracking records and projection snapshots are in the
    database, in ``POSTGRES_SCHEMA`` (default ``public``). Unless ``create``, a
    file store must already exist (``StoreNotFoundError``), and nothing is
    created where there is none; with ``create``, a file store is created only in a
    new or empty directory (never among another application's files). A path that
    cannot be a store directory is a ``StorePathError``. ``writes``: the command that
    will write to the store (``ingest``), refused with ``StoreReadOnlyError`` when it
    cannot be written here. ``application``: a subclass of ``Eventfold`` with a name of
    its own, and so tables of its own (a partition's, on PostgreSQL).
    """
    name = backend_name(backend)
    problem = storepath.path_problem(store)
    if problem:
        raise StorePathError(problem)
    if not create:
        problem = missing_store(name, store)
        if problem:
            raise StoreNotFoundError(problem)
    else:
        problem = (
            foreign_directory(name, store)
            or storepath.creation_problem(store)
            or storepath.create(store)
        )
        if problem:
            raise StorePathError(problem)
    if writes is not None and not is_shared(name):  # a database keeps its own permissions
        require_writable(store, writes)

    cls = Eventfold if application is None else application

    def build(env: dict[str, str]) -> Eventfold:
        return cls(env, snapshot_interval=snapshot_interval, state_dir=store)

    return open_application(name, store, build)


def require_writable(store: str, command: str) -> None:
    """Raise ``StoreReadOnlyError`` naming ``store`` when ``command`` could not write to it
    here (a read-only file system or no write permission); reading commands never call it."""
    part = storepath.unwritable_part(store)
    if part is None:
        return
    where = os.path.abspath(store)
    detail = "" if os.path.abspath(part) == where else f"; {part} is not writable"
    msg = f"{where} ({command} writes to it{detail})"
    raise StoreReadOnlyError(msg)


@contextlib.contextmanager
def undone_on_failure(store: str, backend: str | None = None) -> Iterator[None]:
    """Run a command that may create the file store ``store``; if it fails before its
    first commit, the store it created is removed again (a store that existed, or one
    that holds commits, is left as it is)."""
    if backend_name(backend) != "file":
        yield
        return
    with storepath.undone_on_failure(store, STORE_LOG):
        yield


def foreign_directory(backend: str, store: str) -> str | None:
    """Why a file store cannot be created in ``store`` for ``backend`` (a name already
    chosen): a directory that holds files but no eventfold store; None when it is
    missing, empty or a store already, or when the backend is not files."""
    if backend != "file" or not os.path.isdir(store) or not os.listdir(store):
        return None
    return missing_store("file", store)


def missing_store(backend: str, store: str) -> str | None:
    """Why there is no eventfold store at ``store`` for ``backend``, or None."""
    from eventfold.infra.backends import holds_store

    return holds_store(backend, store, STORE_LOG)
