"""Backends: where an application's store lives, chosen once (``open_application``).

``file`` (the default): the file store in a directory. ``postgres``: the
library's ``eventsourcing.postgres`` module, configured by its ``POSTGRES_*``
keys. Everything else asks the application's ``backend`` (``base.Backend``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from eventsourcing.application import Application

from eventfold.infra import storepath
from eventfold.infra.backends.base import (
    Backend,
    BackendError,
    DatabaseUnavailableError,
    SnapshotDocuments,
    StoredDocument,
)

NAMES = ("file", "postgres")
BACKEND_ENV = "EVENTFOLD_BACKEND"
A = TypeVar("A", bound=Application)  # type: ignore[type-arg]

__all__ = [
    "NAMES",
    "Backend",
    "BackendError",
    "SnapshotDocuments",
    "StoredDocument",
    "backend_name",
    "backend_of",
    "open_application",
    "store_env",
]


def backend_name(choice: str | None = None) -> str:
    """``choice``, else ``$EVENTFOLD_BACKEND``, else ``file``; checked."""
    name = choice or os.environ.get(BACKEND_ENV) or "file"
    if name not in NAMES:
        msg = f"unknown backend {name!r} (choose from {', '.join(NAMES)})"
        raise BackendError(msg)
    return name


def store_env(store: str) -> dict[str, str]:
    """The environment of the file store in directory ``store``."""
    return {
        "PERSISTENCE_MODULE": "eventfold.infra.filestore",
        "FILESTORE_PATH": os.path.abspath(store),
    }


def open_application(name: str, store: str, build: Callable[[dict[str, str]], A]) -> A:
    """``build(env)`` over backend ``name``; ``store`` is the file store's directory, or
    (``postgres``) this machine's working directory. Settings in the process
    environment apply (``FILESTORE_*``, ``POSTGRES_*``)."""
    if name == "file":
        return build(dict(os.environ) | store_env(store))
    try:
        from eventfold.infra.backends import postgres
    except ImportError:
        msg = "the postgres backend needs the postgres extra: pip install 'eventfold[postgres]'"
        raise DatabaseUnavailableError(msg) from None
    env = postgres.environment(os.environ)
    os.makedirs(store, exist_ok=True)
    with postgres.schema_lock(env):  # processes starting together must not create tables together
        return build(env)


def backend_of(
    app: Application[Any],
    env: Mapping[str, str],
    state_dir: str | None,
) -> Backend:
    """The backend of an application, by the persistence module it was built with.

    ``state_dir``: this machine's working directory with ``postgres`` (default: the
    current one); the file backend's is its store directory.
    """
    from eventfold.infra.filestore import FileStoreFactory

    recorder: Any = app.recorder
    if isinstance(app.factory, FileStoreFactory):
        from eventfold.infra.backends.file import FileBackend

        return FileBackend(recorder, app.factory.path)
    workdir = os.path.abspath(state_dir or os.curdir)
    module = type(app.factory).__module__
    if module == "eventsourcing.postgres":
        from eventfold.infra.backends.postgres import PostgresBackend

        return PostgresBackend(recorder, env, workdir)
    from eventsourcing.persistence import TrackingRecorder

    from eventfold.infra.backends.library import LibraryBackend

    base = getattr(type(app.factory), "tracking_recorder_class", None) or TrackingRecorder
    return LibraryBackend(module, base, workdir)


def holds_store(name: str, store: str, log: str) -> str | None:
    """Why ``store`` holds no store of backend ``name`` whose main log is ``log``, or None.

    A database always holds one (its tables are created on use); a directory holds
    a file store when ``log`` is in it.
    """
    if name != "file":
        return None
    if not os.path.isdir(store):
        problem = storepath.path_problem(store) or storepath.creation_problem(store)
        if problem is not None:
            return problem
        return f"{store}: no such store (eventfold ingest creates one)"
    if not os.path.isdir(os.path.join(store, log)):
        if not os.listdir(store):
            return (
                f"{store}: not an eventfold store (an empty directory; "
                "eventfold ingest creates one)"
            )
        return (
            f"{store}: not an eventfold store (no {log}/ in it; it holds "
            f"{storepath.contents(store)}); nothing was changed in it"
        )
    return None


def checks_files(name: str) -> bool:
    """Whether the store of backend ``name`` is files that ``eventfold check`` can read."""
    return name == "file"


def is_shared(name: str) -> bool:
    """Whether backend ``name`` is one database that every machine shares."""
    return name != "file"
