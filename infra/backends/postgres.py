"""The postgres backend: the library's ``eventsourcing.postgres`` module, and four tables.

Several machines share one database, so they share the projections too. Beside
the library's tables, four in the application's schema (``POSTGRES_SCHEMA``)::

    eventfold_projections            projection, current generation, next number
    eventfold_projection_snapshots   projection, generation, position, document
    eventfold_rebuild_plans          projection, workers, generation, until, version
    eventfold_rebuild_parts          projection, generation, worker, range, applied, state

A snapshot document is one row: its state and its position are written in
one transaction. A rebuild writes a new generation and switches ``current``
only at the end (one transaction that also drops the other generations), so a
crash mid-rebuild leaves the previous generation in use. Starting a generation
also drops an open plan of a rebuild shared by several machines (the last two
tables: ``postgres_plans.py``). A projection's lock is a session-level advisory
lock held on a connection of its own. Connection settings come from the
library's ``POSTGRES_*`` keys, read in one place (``connection_settings``).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import ProcessRecorder, Tracking, TrackingRecorder
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from psycopg import Cursor, sql
from psycopg.rows import DictRow, dict_row

from eventfold.infra.backends.base import (
    StoredDocument,
    insert_stored_events,
    last_versions_one_by_one,
)
from eventfold.infra.filestore.format import EventColumns
from eventfold.infra.filestore.shapes import ByFields

if TYPE_CHECKING:
    from eventfold.infra.backends.postgres_plans import PostgresRebuildPlans

MODULE = "eventsourcing.postgres"
REQUIRED = ("POSTGRES_DBNAME", "POSTGRES_HOST", "POSTGRES_USER", "POSTGRES_PASSWORD")
RECORDERS = {
    "PROCESS_RECORDER_TOPIC": "eventfold.infra.backends.mapped:MappedProcessRecorder",
    "APPLICATION_RECORDER_TOPIC": "eventfold.infra.backends.mapped:MappedApplicationRecorder",
}
PROJECTIONS = "eventfold_projections"
SNAPSHOTS = "eventfold_projection_snapshots"
PLANS = "eventfold_rebuild_plans"
PARTS = "eventfold_rebuild_parts"
_TABLES = (
    "CREATE TABLE IF NOT EXISTS {schema}.{projections} ("
    " projection text PRIMARY KEY, current text, next_generation bigint NOT NULL)",
    "CREATE TABLE IF NOT EXISTS {schema}.{snapshots} ("
    " projection text NOT NULL, generation text NOT NULL, position bigint NOT NULL,"
    " document bytea NOT NULL, PRIMARY KEY (projection, generation, position))",
    "CREATE TABLE IF NOT EXISTS {schema}.{plans} ("
    " projection text PRIMARY KEY, workers integer NOT NULL, generation text NOT NULL,"
    " until_id bigint NOT NULL, version bigint NOT NULL,"
    " opened timestamptz NOT NULL DEFAULT now())",
    "CREATE TABLE IF NOT EXISTS {schema}.{parts} ("
    " projection text NOT NULL, generation text NOT NULL, worker integer NOT NULL,"
    " after_id bigint NOT NULL, last_id bigint NOT NULL, applied bigint NOT NULL,"
    " state bytea NOT NULL, digest text NOT NULL, PRIMARY KEY (projection, worker))",
)


def statement(text: str, schema: str) -> sql.Composed:
    """``text`` with ``{schema}`` and the four tables' names (``{projections}``,
    ``{snapshots}``, ``{plans}``, ``{parts}``) filled in as identifiers."""
    return sql.SQL(text).format(
        schema=sql.Identifier(schema),
        projections=sql.Identifier(PROJECTIONS),
        snapshots=sql.Identifier(SNAPSHOTS),
        plans=sql.Identifier(PLANS),
        parts=sql.Identifier(PARTS),
    )


def _create_tables(datastore: PostgresDatastore) -> None:
    """Create the four tables if they are missing (with the application: ``Eventfold``)."""
    with datastore.transaction(commit=True) as cursor:
        for text in _TABLES:
            cursor.execute(statement(text, datastore.schema))


def _projection_names(datastore: PostgresDatastore) -> list[str]:
    """Names of the projections that the database has generations of."""
    with datastore.transaction() as cursor:
        cursor.execute(
            statement(
                "SELECT projection FROM {schema}.{projections} ORDER BY projection",
                datastore.schema,
            )
        )
        return [row["projection"] for row in cursor.fetchall()]


def connection_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """psycopg's connection arguments from the library's ``POSTGRES_*`` keys."""
    return {
        "dbname": env["POSTGRES_DBNAME"],
        "host": env["POSTGRES_HOST"],
        "port": env.get("POSTGRES_PORT") or "5432",
        "user": env["POSTGRES_USER"],
        "password": env["POSTGRES_PASSWORD"],
        "connect_timeout": int(env.get("POSTGRES_CONNECT_TIMEOUT") or 30),
    }


# Advisory locks: each is named by a text key, hashed the same way by every function here.


def schema_lock_key(schema: str) -> str:
    """The lock held by whoever creates tables in ``schema``: one creator at a time."""
    return f"eventfold.schema:{schema}"


def xact_lock(cursor: Any, key: str, *, wait: bool = True) -> bool:
    """Take the advisory lock ``key`` until the transaction of ``cursor`` ends (``wait``:
    for another session to release it); whether it is held."""
    function = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
    cursor.execute(f"SELECT {function}(hashtextextended(%s, 0)) AS locked", (key,))
    row = cursor.fetchone()
    return wait or bool(row and row["locked"])


def session_lock(settings: Mapping[str, Any], key: str) -> Callable[[], None] | None:
    """Hold the advisory lock ``key`` on a connection of its own; the function that
    releases it, or None when another session holds it."""
    conn = psycopg.connect(**settings, autocommit=True, row_factory=dict_row)
    row = conn.execute(
        "SELECT pg_try_advisory_lock(hashtextextended(%s, 0)) AS locked", (key,)
    ).fetchone()
    if not row or not row["locked"]:
        conn.close()
        return None
    return conn.close  # ending the session releases the lock


def serial_sequence(cursor: Any, schema: str, table: str) -> str:
    """The sequence that numbers ``table``'s ``notification_id`` (the library's bigserial)."""
    cursor.execute(
        "SELECT pg_get_serial_sequence(%s, 'notification_id') AS sequence",
        (f'"{schema}"."{table}"',),
    )
    row = cursor.fetchone()
    return str(row["sequence"])


def lock_holder_pid(cursor: Any, key: str) -> int | None:
    """The server process whose session holds the advisory lock ``key``, or None."""
    cursor.execute(
        "SELECT l.pid FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted"
        " AND ((l.classid::bigint << 32) | l.objid::bigint)"
        " = hashtextextended(%s, 0)::bigint LIMIT 1",
        (key,),
    )
    row = cursor.fetchone()
    return None if row is None else int(row["pid"])


@contextlib.contextmanager
def schema_lock(env: Mapping[str, str]) -> Iterator[None]:
    """Hold a PostgreSQL advisory lock on the schema (while tables are created)."""
    schema = env.get("POSTGRES_SCHEMA") or "public"
    with psycopg.connect(**connection_settings(env), autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (schema_lock_key(schema),))
        yield  # the lock ends with the session


class PostgresBackend:
    """The store is the database of ``POSTGRES_*``; ``state_dir`` holds this machine's files."""

    name = "postgres"
    tracking_recorder_class: type[TrackingRecorder] = PostgresTrackingRecorder
    checks_files = False

    def __init__(self, recorder: ProcessRecorder, env: Mapping[str, str], state_dir: str) -> None:
        self.recorder = recorder
        self.datastore: PostgresDatastore = recorder.datastore  # type: ignore[attr-defined]
        self.env = {k: str(v) for k, v in env.items() if k.startswith("POSTGRES_")}
        self.settings = connection_settings(self.env)
        self.state_dir = state_dir
        _create_tables(self.datastore)

    def snapshot_documents(self, projection: str, keep: int) -> PostgresSnapshotDocuments:
        return PostgresSnapshotDocuments(self.datastore, self.settings, projection, keep)

    def projection_names(self) -> list[str]:
        return _projection_names(self.datastore)

    def event_count(self) -> int | None:
        """A count of the events table, and of the rows partitions' joins mapped into it
        (``mapped.py``): its sequence skips ids a rolled-back insert took."""
        statement = sql.SQL("SELECT COUNT(*) AS n FROM {}.{}").format(
            sql.Identifier(self.datastore.schema),
            sql.Identifier(self.recorder.events_table_name),  # type: ignore[attr-defined]
        )
        with self.datastore.transaction() as cursor:
            cursor.execute(statement)
            row = cursor.fetchone()
        mapped = getattr(self.recorder, "mapped_count", None)
        return (int(row["n"]) if row else 0) + (mapped() if mapped is not None else 0)

    def tracking_positions(self) -> dict[str, int]:
        statement = sql.SQL(
            "SELECT application_name, MAX(notification_id) AS position FROM {}.{}"
            " GROUP BY application_name"
        ).format(
            sql.Identifier(self.datastore.schema),
            sql.Identifier(self.recorder.tracking_table_name),  # type: ignore[attr-defined]
        )
        with self.datastore.transaction() as cursor:
            cursor.execute(statement)
            return {row["application_name"]: int(row["position"]) for row in cursor.fetchall()}

    def tracked_originators(self, originator_of: Callable[[str], UUID | None]) -> list[UUID] | None:
        return None  # no index of streams to ask: the caller reads the notifications

    def insert(
        self,
        recorder: ProcessRecorder,
        events: EventColumns,
        tracking: Tracking,
        by_field: ByFields | None = None,
    ) -> list[int]:
        """The library's ``StoredEvent`` objects, through its process recorder."""
        return insert_stored_events(recorder, events, tracking)

    def last_versions(
        self, recorder: ProcessRecorder, originator_ids: Sequence[UUID]
    ) -> dict[UUID, int]:
        """Through the library's recorder, one stream at a time."""
        return last_versions_one_by_one(recorder, originator_ids)

    def positions(self, recorder: ProcessRecorder, originator_id: UUID) -> list[tuple[int, int]]:
        """One query of the events table (its primary key leads with the originator)."""
        statement = sql.SQL(
            "SELECT originator_version, notification_id FROM {}.{}"
            " WHERE originator_id = %s ORDER BY originator_version"
        ).format(
            sql.Identifier(self.datastore.schema),
            sql.Identifier(self.recorder.events_table_name),  # type: ignore[attr-defined]
        )
        with self.datastore.transaction() as cursor:
            cursor.execute(statement, (originator_id,))
            return [
                (int(row["originator_version"]), int(row["notification_id"]))
                for row in cursor.fetchall()
            ]

    def worker_env(self) -> dict[str, str]:
        return dict(self.env)

    def rebuild_plans(self, projection: str) -> PostgresRebuildPlans:
        from eventfold.infra.backends.postgres_plans import PostgresRebuildPlans

        return PostgresRebuildPlans(self.datastore, projection)

    def describe(self) -> str:
        s = self.settings
        return f"postgres://{s['host']}:{s['port']}/{s['dbname']}/{self.datastore.schema}"


def environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The application's environment for the postgres backend, or ``BackendError``."""
    from eventfold.infra.backends.base import DatabaseUnavailableError

    missing = [key for key in REQUIRED if not environ.get(key)]
    if missing:
        msg = f"the postgres backend needs {', '.join(missing)} set (see README, PostgreSQL)"
        raise DatabaseUnavailableError(msg)
    env = dict(environ)
    env["PERSISTENCE_MODULE"] = MODULE
    env.pop("FILESTORE_PATH", None)
    for key, recorder in RECORDERS.items():  # the library's, reading partitions' mapped rows
        env.setdefault(key, recorder)
    return env


def number_generation(cursor: Cursor[DictRow], schema: str, name: str) -> str:
    """In the caller's transaction: number projection ``name``'s next generation, and drop
    the snapshots of generations other than the current one and any open shared plan
    with its parts (what a crashed or unfinished rebuild left)."""
    cursor.execute(
        statement(
            "INSERT INTO {schema}.{projections} (projection, current, next_generation)"
            " VALUES (%s, NULL, 2) ON CONFLICT (projection) DO UPDATE"
            " SET next_generation = {schema}.{projections}.next_generation + 1"
            " RETURNING next_generation - 1 AS number, current",
            schema,
        ),
        (name,),
    )
    row = cursor.fetchone()
    assert row is not None
    cursor.execute(
        statement(
            "DELETE FROM {schema}.{snapshots} WHERE projection = %s"
            " AND generation IS DISTINCT FROM %s",
            schema,
        ),
        (name, row["current"]),
    )
    for table in ("{plans}", "{parts}"):
        cursor.execute(
            statement(f"DELETE FROM {{schema}}.{table} WHERE projection = %s", schema), (name,)
        )
    return f"gen-{row['number']:08d}"


def switch_generation(cursor: Cursor[DictRow], schema: str, name: str, generation: str) -> None:
    """In the caller's transaction: make ``generation`` current, drop the others' snapshots."""
    cursor.execute(
        statement("UPDATE {schema}.{projections} SET current = %s WHERE projection = %s", schema),
        (generation, name),
    )
    cursor.execute(
        statement(
            "DELETE FROM {schema}.{snapshots} WHERE projection = %s AND generation <> %s", schema
        ),
        (name, generation),
    )


class PostgresSnapshotDocuments:
    """The snapshot documents of one projection in the application's database."""

    def __init__(
        self, datastore: PostgresDatastore, settings: dict[str, Any], name: str, keep: int
    ) -> None:
        self.datastore = datastore
        self.settings = settings
        self.name = name
        self.keep = keep

    def _sql(self, text: str) -> sql.Composed:
        return statement(text, self.datastore.schema)

    def _where(self, generation: str, position: int) -> str:
        return f"postgres:{self.datastore.schema}.{SNAPSHOTS}/{self.name}/{generation}/{position}"

    # -- the lock ----------------------------------------------------------------

    def _lock_key(self) -> str:
        return f"eventfold.projection:{self.datastore.schema}:{self.name}"

    def try_lock(self) -> Callable[[], None] | None:
        """Take the projection's advisory lock; the function that releases it, or None."""
        return session_lock(self.settings, self._lock_key())

    def lock_holder(self) -> str:
        with self.datastore.transaction() as cursor:
            pid = lock_holder_pid(cursor, self._lock_key())
        return f" (PostgreSQL session of server process {pid})" if pid is not None else ""

    # -- generations -----------------------------------------------------------

    def current(self) -> str | None:
        """The generation in use, or None before the first rebuild."""
        with self.datastore.transaction() as cursor:
            cursor.execute(
                self._sql("SELECT current FROM {schema}.{projections} WHERE projection = %s"),
                (self.name,),
            )
            row = cursor.fetchone()
        return None if row is None else row["current"]

    def new_generation(self) -> str:
        """Number the next generation (dropping what a crashed or unfinished rebuild left:
        the snapshots of other generations than the current one, an open shared plan)."""
        with self.datastore.transaction(commit=True) as cursor:
            return number_generation(cursor, self.datastore.schema, self.name)

    def switch(self, generation: str) -> None:
        """Make ``generation`` current and drop the others, in one transaction."""
        with self.datastore.transaction(commit=True) as cursor:
            switch_generation(cursor, self.datastore.schema, self.name, generation)

    def generations(self) -> list[str]:
        """Every generation with a snapshot kept, and the current one, oldest first."""
        with self.datastore.transaction() as cursor:
            cursor.execute(
                self._sql(
                    "SELECT DISTINCT generation FROM {schema}.{snapshots} WHERE projection = %s"
                ),
                (self.name,),
            )
            names = {row["generation"] for row in cursor.fetchall()}
        current = self.current()
        return sorted(names | ({current} if current else set()))

    # -- snapshots -------------------------------------------------------------

    def put(self, generation: str, position: int, document: bytes) -> str:
        """Store a document (its state and position in one row), keep the newest ``keep``."""
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(
                self._sql(
                    "INSERT INTO {schema}.{snapshots} (projection, generation, position, document)"
                    " VALUES (%s, %s, %s, %s) ON CONFLICT (projection, generation, position)"
                    " DO UPDATE SET document = EXCLUDED.document"
                ),
                (self.name, generation, position, document),
            )
            cursor.execute(
                self._sql(
                    "DELETE FROM {schema}.{snapshots} WHERE projection = %s AND generation = %s"
                    " AND position NOT IN (SELECT position FROM {schema}.{snapshots}"
                    " WHERE projection = %s AND generation = %s ORDER BY position DESC LIMIT %s)"
                ),
                (self.name, generation, self.name, generation, self.keep),
            )
        return self._where(generation, position)

    def documents(self, generation: str) -> list[StoredDocument]:
        """Where and document of each snapshot of a generation, newest first."""
        with self.datastore.transaction() as cursor:
            cursor.execute(
                self._sql(
                    "SELECT position, document FROM {schema}.{snapshots}"
                    " WHERE projection = %s AND generation = %s ORDER BY position DESC"
                ),
                (self.name, generation),
            )
            rows = cursor.fetchall()
        return [
            StoredDocument(
                self._where(generation, r["position"]),
                int(r["position"]),
                functools.partial(bytes, r["document"]),
            )
            for r in rows
        ]
