"""The eventfold application: one eventsourcing ``Application`` over a store.

``open_store`` builds it over the file store in a directory (the embedded
default); ``open_app`` over either backend: ``file``, or ``postgres`` (the
library's ``eventsourcing.postgres`` module, configured by the library's
``POSTGRES_*`` environment keys). The recorder is a process recorder so that
ingest can commit its source position (a tracking record) atomically with
the events it produced.
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

DEFAULT_SNAPSHOT_INTERVAL = 10_000
SOURCE_SNAPSHOT_INTERVAL = 1_000  # at most: a source's stream gains an event per batch
BACKENDS = ("file", "postgres")
BACKEND_ENV = "EVENTFOLD_BACKEND"
POSTGRES_MODULE = "eventsourcing.postgres"
POSTGRES_REQUIRED = ("POSTGRES_DBNAME", "POSTGRES_HOST", "POSTGRES_USER", "POSTGRES_PASSWORD")


class BackendError(Exception):
    """A backend that is unknown, not configured or not installed (exit code 2)."""


class Eventfold(Application[UUID]):
    """Categories and sources, with the library's snapshotting of both."""

    name = "Eventfold"
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {
        Category: DEFAULT_SNAPSHOT_INTERVAL,
        Source: SOURCE_SNAPSHOT_INTERVAL,
    }

    def __init__(
        self, env: Mapping[str, str] | None = None, *, snapshot_interval: int | None = None
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
        self.state_dir = self.env.get("FILESTORE_PATH")
        postgres = self.env.get("PERSISTENCE_MODULE") == POSTGRES_MODULE
        self.backend = "postgres" if postgres else "file"
        if postgres:  # beside the library's tables: the projections' snapshots
            from eventfold.projections.pgsnapshots import create_tables

            create_tables(self.recorder.datastore)  # type: ignore[attr-defined]

    def construct_recorder(self) -> ProcessRecorder:
        return self.factory.process_recorder()

    @property
    def process_recorder(self) -> ProcessRecorder:
        recorder = self.recorder
        assert isinstance(recorder, ProcessRecorder)
        return recorder

    def snapshot_interval(self, aggregate_type: type[Any]) -> int | None:
        return self.snapshotting_intervals.get(aggregate_type)


def store_env(store: str) -> dict[str, str]:
    """The environment of the file store in directory ``store``."""
    return {
        "PERSISTENCE_MODULE": "eventfold.infra.filestore",
        "FILESTORE_PATH": os.path.abspath(store),
    }


def open_store(store: str, *, snapshot_interval: int | None = None) -> Eventfold:
    """The application over the file store in ``store`` (created if missing).

    Settings in the process environment (``FILESTORE_DURABILITY`` and the like)
    apply; ``PERSISTENCE_MODULE`` and ``FILESTORE_PATH`` are set here.
    """
    env = dict(os.environ)
    env.update(store_env(store))
    return Eventfold(env, snapshot_interval=snapshot_interval)


def backend_name(choice: str | None = None) -> str:
    """``choice``, else ``$EVENTFOLD_BACKEND``, else ``file``; checked."""
    name = choice or os.environ.get(BACKEND_ENV) or "file"
    if name not in BACKENDS:
        msg = f"unknown backend {name!r} (choose from {', '.join(BACKENDS)})"
        raise BackendError(msg)
    return name


def open_app(
    store: str, backend: str | None = None, *, snapshot_interval: int | None = None
) -> Eventfold:
    """The application over ``backend`` (see ``backend_name``).

    ``store`` is the store directory of the file backend; with ``postgres`` it
    holds only what is local to this machine (the dedup index, which the
    database can always rebuild, and copies of quarantined lines). The events,
    aggregate snapshots, tracking records and projection snapshots are in the
    database, in ``POSTGRES_SCHEMA`` (default ``public``).
    """
    name = backend_name(backend)
    if name == "file":
        return open_store(store, snapshot_interval=snapshot_interval)
    missing = [key for key in POSTGRES_REQUIRED if not os.environ.get(key)]
    if missing:
        msg = f"the postgres backend needs {', '.join(missing)} set (see README, PostgreSQL)"
        raise BackendError(msg)
    try:
        import psycopg  # noqa: F401  # installed by the postgres extra
    except ImportError:
        msg = "the postgres backend needs the postgres extra: pip install 'eventfold[postgres]'"
        raise BackendError(msg) from None
    env = dict(os.environ)
    env["PERSISTENCE_MODULE"] = POSTGRES_MODULE
    env.pop("FILESTORE_PATH", None)
    with _schema_lock(env):  # processes starting together must not create tables together
        app = Eventfold(env, snapshot_interval=snapshot_interval)
    app.state_dir = os.path.abspath(store)
    os.makedirs(app.state_dir, exist_ok=True)
    return app


@contextlib.contextmanager
def _schema_lock(env: Mapping[str, str]) -> Iterator[None]:
    """Hold a PostgreSQL advisory lock on the schema while tables are created."""
    import psycopg

    schema = env.get("POSTGRES_SCHEMA") or "public"
    with psycopg.connect(**postgres_settings(env), autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))",
                     (f"eventfold.schema:{schema}",))  # fmt: skip
        yield  # the lock ends with the session


def postgres_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """psycopg's connection arguments from the library's ``POSTGRES_*`` keys."""
    return {
        "dbname": env["POSTGRES_DBNAME"], "host": env["POSTGRES_HOST"],
        "port": env.get("POSTGRES_PORT") or "5432", "user": env["POSTGRES_USER"],
        "password": env["POSTGRES_PASSWORD"],
        "connect_timeout": int(env.get("POSTGRES_CONNECT_TIMEOUT") or 30),
    }  # fmt: skip
