"""Projection snapshots in PostgreSQL: the postgres backend's ``SnapshotStore``.

Several machines share one database, so they share the projections too. Two
tables in the application's schema (``POSTGRES_SCHEMA``)::

    eventfold_projections            projection, current generation, next number
    eventfold_projection_snapshots   projection, generation, position, document

A snapshot is the same JSON document as in the file store (both checksums,
the projection's code version, the position of the last event applied), in
one row: its state and its position are written in one transaction. A
rebuild writes a new generation and switches ``current`` only at the end
(one transaction that also drops the other generations), so a crash
mid-rebuild leaves the previous generation in use. The projection's lock is a
session-level advisory lock held on a connection of its own.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import psycopg
from eventsourcing.postgres import PostgresDatastore
from psycopg import sql

from eventfold.projections.base import Projection, canonical_bytes
from eventfold.projections.snapshots import DocumentSnapshots, SnapshotInfo, snapshot_document

PROJECTIONS = "eventfold_projections"
SNAPSHOTS = "eventfold_projection_snapshots"
_TABLES = (
    "CREATE TABLE IF NOT EXISTS {schema}.{projections} ("
    " projection text PRIMARY KEY, current text, next_generation bigint NOT NULL)",
    "CREATE TABLE IF NOT EXISTS {schema}.{snapshots} ("
    " projection text NOT NULL, generation text NOT NULL, position bigint NOT NULL,"
    " document bytea NOT NULL, PRIMARY KEY (projection, generation, position))",
)


def _statement(text: str, schema: str) -> sql.Composed:
    return sql.SQL(text).format(
        schema=sql.Identifier(schema),
        projections=sql.Identifier(PROJECTIONS),
        snapshots=sql.Identifier(SNAPSHOTS),
    )


def create_tables(datastore: PostgresDatastore) -> None:
    """Create the two tables if they are missing (with the application: ``Eventfold``)."""
    with datastore.transaction(commit=True) as cursor:
        for text in _TABLES:
            cursor.execute(_statement(text, datastore.schema))


def projection_names(datastore: PostgresDatastore) -> list[str]:
    """Names of the projections that the database has generations of."""
    with datastore.transaction() as cursor:
        cursor.execute(_statement("SELECT projection FROM {schema}.{projections}"
                                  " ORDER BY projection", datastore.schema))  # fmt: skip
        return [row["projection"] for row in cursor.fetchall()]


class PostgresSnapshotStore(DocumentSnapshots):
    """The snapshots of one projection in the application's database."""

    def __init__(
        self, datastore: PostgresDatastore, projection: Projection[Any], keep: int = 3
    ) -> None:
        self.datastore = datastore
        self.projection = projection
        self.keep = keep
        self.name = projection.name

    def _sql(self, text: str) -> sql.Composed:
        return _statement(text, self.datastore.schema)

    def _where(self, generation: str, position: int) -> str:
        return f"postgres:{self.datastore.schema}.{SNAPSHOTS}/{self.name}/{generation}/{position}"

    # -- the lock ----------------------------------------------------------------

    def _lock_key(self) -> str:
        return f"eventfold.projection:{self.datastore.schema}:{self.name}"

    def try_lock(self) -> Callable[[], None] | None:
        """Take the projection's advisory lock; the function that releases it, or None."""
        kwargs = self.datastore.pool.kwargs
        assert isinstance(kwargs, dict)  # the library passes its connection settings so
        conn = psycopg.connect(**kwargs, autocommit=True)
        row = conn.execute(
            "SELECT pg_try_advisory_lock(hashtextextended(%s, 0)) AS locked", (self._lock_key(),)
        ).fetchone()
        if not row or not row["locked"]:
            conn.close()
            return None
        return conn.close  # ending the session releases the lock

    def lock_holder(self) -> str:
        with self.datastore.transaction() as cursor:
            cursor.execute(
                "SELECT l.pid FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted"
                " AND ((l.classid::bigint << 32) | l.objid::bigint)"
                " = hashtextextended(%s, 0)::bigint LIMIT 1",
                (self._lock_key(),),
            )
            row = cursor.fetchone()
        return f" (PostgreSQL session of server process {row['pid']})" if row else ""

    # -- generations -----------------------------------------------------------

    def current(self) -> str | None:
        """The generation in use, or None before the first rebuild."""
        with self.datastore.transaction() as cursor:
            cursor.execute(self._sql("SELECT current FROM {schema}.{projections}"
                                     " WHERE projection = %s"), (self.name,))  # fmt: skip
            row = cursor.fetchone()
        return None if row is None else row["current"]

    def new_generation(self) -> str:
        """Number the next generation (dropping one a crashed rebuild left behind)."""
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(
                self._sql(
                    "INSERT INTO {schema}.{projections} (projection, current, next_generation)"
                    " VALUES (%s, NULL, 2) ON CONFLICT (projection) DO UPDATE"
                    " SET next_generation = {schema}.{projections}.next_generation + 1"
                    " RETURNING next_generation - 1 AS number, current"
                ),
                (self.name,),
            )
            row = cursor.fetchone()
            assert row is not None
            cursor.execute(
                self._sql("DELETE FROM {schema}.{snapshots} WHERE projection = %s"
                          " AND generation IS DISTINCT FROM %s"),
                (self.name, row["current"]),
            )  # fmt: skip
        return f"gen-{row['number']:08d}"

    def switch(self, generation: str) -> None:
        """Make ``generation`` current and drop the others, in one transaction."""
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(
                self._sql("UPDATE {schema}.{projections} SET current = %s WHERE projection = %s"),
                (generation, self.name),
            )
            cursor.execute(
                self._sql("DELETE FROM {schema}.{snapshots}"
                          " WHERE projection = %s AND generation <> %s"),
                (self.name, generation),
            )  # fmt: skip

    # -- snapshots -------------------------------------------------------------

    def write(
        self, generation: str, state: Any, position: int, events_applied: int
    ) -> SnapshotInfo:
        """Write a snapshot (state and position in one row), keep the newest ``keep``."""
        doc = snapshot_document(self.projection, state, position, events_applied)
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(
                self._sql(
                    "INSERT INTO {schema}.{snapshots} (projection, generation, position, document)"
                    " VALUES (%s, %s, %s, %s) ON CONFLICT (projection, generation, position)"
                    " DO UPDATE SET document = EXCLUDED.document"
                ),
                (self.name, generation, position, canonical_bytes(doc)),
            )
            cursor.execute(
                self._sql(
                    "DELETE FROM {schema}.{snapshots} WHERE projection = %s AND generation = %s"
                    " AND position NOT IN (SELECT position FROM {schema}.{snapshots}"
                    " WHERE projection = %s AND generation = %s ORDER BY position DESC LIMIT %s)"
                ),
                (self.name, generation, self.name, generation, self.keep),
            )
        where = self._where(generation, position)
        return SnapshotInfo(where, position, doc["state_checksum"], doc["created"], events_applied)

    def documents(self, generation: str) -> list[tuple[str, Callable[[], bytes]]]:
        """Where and document of each snapshot of a generation, newest first."""
        with self.datastore.transaction() as cursor:
            cursor.execute(
                self._sql("SELECT position, document FROM {schema}.{snapshots}"
                          " WHERE projection = %s AND generation = %s ORDER BY position DESC"),
                (self.name, generation),
            )  # fmt: skip
            rows = cursor.fetchall()
        return [(self._where(generation, r["position"]), functools.partial(bytes, r["document"]))
                for r in rows]  # fmt: skip
