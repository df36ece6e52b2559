"""A partitioned store on PostgreSQL: each partition's own tables, and the join into one log.

Partition ``K`` of ``N`` ingests into the library's tables of its own application
(``eventfold_pKofN_events``, ``..._tracking``, ``..._snapshots``), so partitions
never wait on each other's table lock. The store's log stays the library's one
``eventfold_events`` table, which every reader reads; partitions' events *join*
it in the documented order of the source files. Beside them, in the schema::

    eventfold_partitioning     the store's number of partitions (one row)
    eventfold_partition_files  the plan: each file of an ingest, its ordinal (the
                               documented order), its partition, whether that
                               partition has finished it (and where its tables
                               ended then) and whether it has joined
    eventfold_partition_joined per partition, the last notification id of its
                               tables that has joined the log
    eventfold_event_ids        each event id in the log, with its stream and version

A join is one transaction on the log (the library's ``EXCLUSIVE`` lock on it, and
its notification): the rows of one file's range are copied with their stream
versions renumbered after the log's, a stream's opening event dropped when the
log has the stream, and an id the log holds already left out (handed to the
caller, which records it as a duplicate or a conflict). The partition's cursor
and the file's ``joined`` mark move in the same transaction.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ProcessRecorder, StoredEvent, Tracking
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg import sql

from eventfold.infra import failpoints
from eventfold.infra.backends.postgres import (
    PostgresBackend,
    lock_holder_pid,
    schema_lock_key,
    session_lock,
    xact_lock,
)
from eventfold.infra.filestore.format import EventColumns
from eventfold.infra.filestore.shapes import ByFields

LAYOUT = "eventfold_partitioning"
FILES = "eventfold_partition_files"
JOINED = "eventfold_partition_joined"
IDS = "eventfold_event_ids"
_TABLES = (
    "CREATE TABLE IF NOT EXISTS {schema}.{layout} ("
    " one boolean PRIMARY KEY DEFAULT true CHECK (one), partitions integer NOT NULL)",
    "CREATE TABLE IF NOT EXISTS {schema}.{files} ("
    " ordinal bigint PRIMARY KEY, plan text NOT NULL, identity text NOT NULL,"
    " partition integer NOT NULL, done boolean NOT NULL DEFAULT false,"
    " staged_end bigint, joined boolean NOT NULL DEFAULT false)",
    "CREATE INDEX IF NOT EXISTS {files_open} ON {schema}.{files} (ordinal) WHERE NOT joined",
    "CREATE TABLE IF NOT EXISTS {schema}.{joined} ("
    " partition integer PRIMARY KEY, staged bigint NOT NULL)",
    "CREATE TABLE IF NOT EXISTS {schema}.{ids} ("
    " event_id text PRIMARY KEY, originator_id uuid NOT NULL, originator_version bigint NOT NULL)",
)


class PartitionBackend(PostgresBackend):
    """A partition's own tables: the postgres backend, with three differences.

    - Only its partition writes to them (``lock`` holds that, across machines), so an
      insert takes no table lock: the one writer commits in notification id order.
    - Events are written with ``COPY`` from the columns, not as the library's
      composite values, which cost the client most of an ingest. The tracking record
      goes in the same transaction, through the library.
    - Its events table has one more column, ``event_id``, generated from a
      ``Category.Recorded`` state (``recorded_topic``) as it is written: the
      partition's session does that work, in parallel, not the join.
    """

    def __init__(self, base: PostgresBackend, recorded_topic: str) -> None:
        self.__dict__.update(base.__dict__)
        recorder: Any = self.recorder
        schema, table = self.datastore.schema, recorder.events_table_name
        names = {"schema": sql.Identifier(schema), "table": sql.Identifier(table)}
        with self.datastore.transaction(commit=True) as cursor:
            xact_lock(cursor, schema_lock_key(schema))  # one creator at a time
            cursor.execute(
                sql.SQL(
                    "CREATE OR REPLACE FUNCTION {schema}.eventfold_event_id("
                    "topic text, state bytea) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS"
                    " $$ SELECT CASE WHEN topic = {recorded}"
                    " THEN convert_from(state, 'UTF8')::json->>'event_id' END $$"
                ).format(recorded=sql.Literal(recorded_topic), **names)
            )
            cursor.execute(
                sql.SQL(
                    "ALTER TABLE {schema}.{table} ADD COLUMN IF NOT EXISTS event_id text"
                    " GENERATED ALWAYS AS ({schema}.eventfold_event_id(topic, state)) STORED"
                ).format(**names)
            )
            cursor.execute(
                "SELECT pg_get_serial_sequence(%s, 'notification_id') AS sequence",
                (f'"{schema}"."{table}"',),
            )
            row = cursor.fetchone()
            self._sequence = row["sequence"] if row else None
        self._copy_statement = sql.SQL(
            "COPY {schema}.{table} (originator_id, originator_version, topic, state) FROM STDIN"
        ).format(**names)

    def insert(
        self,
        recorder: ProcessRecorder,
        events: EventColumns,
        tracking: Tracking,
        by_field: ByFields | None = None,
    ) -> list[int]:
        """Append ``events`` with ``tracking`` in one transaction; their notification ids
        (consecutive: one writer, and one ``COPY``)."""
        oids, versions, topics, states = events
        for topic in set(topics):
            if any(c in topic for c in "\\\t\n\r"):
                msg = f"topic {topic!r}: not written by COPY's text format"
                raise ValueError(msg)
        rows = "".join(
            f"{o}\t{v}\t{t}\t\\\\x{s.hex()}\n"
            for o, v, t, s in zip(oids, versions, topics, states, strict=True)
        )
        with self.datastore.transaction(commit=True) as cursor:
            recorder._insert_tracking(cursor, tracking=tracking)  # type: ignore[attr-defined]
            with cursor.copy(self._copy_statement) as copy:
                copy.write(rows)
            failpoints.reach("partition.inside-commit")
            cursor.execute("SELECT currval(%s) AS last", (self._sequence,))
            row = cursor.fetchone()
        last = int(row["last"]) if row else 0
        return list(range(last - len(oids) + 1, last + 1))

    def lock(self, index: int, count: int) -> Callable[[], None] | None:
        """Hold partition ``index`` of ``count`` (an advisory lock of this schema) on a
        connection of its own; the function that releases it, or None when another
        session holds it."""
        return session_lock(self.settings, partition_lock_key(index, count, self.datastore.schema))


def partition_lock_key(index: int, count: int, schema: str) -> str:
    """The advisory lock that one process at a time holds to run a partition."""
    return f"eventfold.partition:{index}/{count}:{schema}"


def partition_app_name(index: int, count: int) -> str:
    """The application name of partition ``index`` of ``count``, and so its tables' prefix."""
    return f"Eventfold_p{index}of{count}"


def partition_table(index: int, count: int) -> str:
    """The events table of partition ``index`` of ``count`` (the library's naming)."""
    return f"{partition_app_name(index, count).lower()}_events"


@dataclass(frozen=True)
class PlannedFile:
    """One file of an ingest plan."""

    ordinal: int
    plan: str
    identity: str
    partition: int
    done: bool
    staged_end: int | None
    joined: bool


@dataclass(frozen=True)
class Repeat:
    """A row of a partition's tables whose event id the log holds already."""

    staged: int  # its notification id in the partition's tables
    state: bytes  # its stored state (a ``Category.Recorded``)
    first_state: bytes  # the state of the log's event with that id
    first_position: int  # that event's notification id in the log


@dataclass(frozen=True)
class JoinStep:
    """What one join step did: the file it joined from (None: every file has joined),
    the source events copied, and whether the file has joined whole (the repeats left
    out are the ``corrections`` callback's to count)."""

    planned: PlannedFile | None
    copied: int
    finished: bool = False


# Stored events to append after a join's rows (the repeats recorded on their source):
# given the repeats and the next version of a stream in the log.
Corrections = Callable[[list[Repeat], Callable[[UUID], int]], Sequence[StoredEvent]]


def recorded_partitions(log: PostgresApplicationRecorder) -> int | None:
    """The number of partitions recorded in the log's schema (None: not partitioned),
    read without creating anything."""
    schema = log.datastore.schema
    with log.datastore.transaction() as cursor:
        if not _exists(cursor, schema, LAYOUT):
            return None
        cursor.execute(
            sql.SQL("SELECT partitions FROM {}.{}").format(
                sql.Identifier(schema), sql.Identifier(LAYOUT)
            )
        )
        found = cursor.fetchone()
    return None if found is None else int(found["partitions"])


def _exists(cursor: Any, schema: str, table: str) -> bool:
    """Whether ``table`` exists in ``schema``."""
    cursor.execute("SELECT to_regclass(%s) AS found", (f'"{schema}"."{table}"',))
    row = cursor.fetchone()
    return bool(row and row["found"] is not None)


class PartitionTables:
    """The partition tables of one schema, over the log's recorder (``log``)."""

    def __init__(self, log: PostgresApplicationRecorder, *, create: bool = True) -> None:
        """``create``: create the tables that are missing (a reader that found them,
        through ``recorded_partitions``, passes False)."""
        self.log = log
        self.datastore: PostgresDatastore = log.datastore
        self.schema = self.datastore.schema
        if not create:
            return
        with self.datastore.transaction(commit=True) as cursor:
            xact_lock(cursor, schema_lock_key(self.schema))  # one creator at a time
            for text in _TABLES:
                cursor.execute(self._sql(text))

    def _sql(self, text: str, **more: str) -> sql.Composed:
        return sql.SQL(text).format(
            schema=sql.Identifier(self.schema),
            layout=sql.Identifier(LAYOUT),
            files=sql.Identifier(FILES),
            files_open=sql.Identifier(FILES + "_open"),
            joined=sql.Identifier(JOINED),
            ids=sql.Identifier(IDS),
            log=sql.Identifier(self.log.events_table_name),
            **{k: sql.Identifier(v) for k, v in more.items()},
        )

    # -- the layout ------------------------------------------------------------

    def partitions(self, cursor: Any | None = None) -> int | None:
        """The store's number of partitions, or None when none was recorded."""
        row = self._one("SELECT partitions FROM {schema}.{layout}", cursor)
        return None if row is None else int(row["partitions"])

    def log_has_events(self, cursor: Any | None = None) -> bool:
        row = self._one("SELECT EXISTS (SELECT 1 FROM {schema}.{log}) AS any", cursor)
        return bool(row and row["any"])

    def _one(self, text: str, cursor: Any | None) -> Any:
        rows = self._rows(text, cursor)
        return rows[0] if rows else None

    def _rows(self, text: str, cursor: Any | None) -> list[Any]:
        """The rows of ``text``, read through ``cursor`` or a transaction of its own."""
        if cursor is not None:
            cursor.execute(self._sql(text))
            return list(cursor.fetchall())
        with self.datastore.transaction() as own:
            own.execute(self._sql(text))
            return list(own.fetchall())

    @contextlib.contextmanager
    def locked(self, what: str) -> Iterator[Any]:
        """A transaction holding the advisory lock ``what`` of this schema until it ends."""
        with self.datastore.transaction(commit=True) as cursor:
            xact_lock(cursor, f"eventfold.{what}:{self.schema}")
            yield cursor

    def record_partitions(self, cursor: Any, count: int) -> None:
        cursor.execute(
            self._sql("INSERT INTO {schema}.{layout} (partitions) VALUES (%s)"), (count,)
        )

    # -- the plan --------------------------------------------------------------

    def files(self, cursor: Any | None = None, *, open_only: bool = False) -> list[PlannedFile]:
        """The planned files in ordinal order (those not joined yet, with ``open_only``)."""
        text = "SELECT * FROM {schema}.{files}"
        text += " WHERE NOT joined" if open_only else ""
        text += " ORDER BY ordinal"
        return [
            PlannedFile(
                int(r["ordinal"]),
                r["plan"],
                r["identity"],
                int(r["partition"]),
                bool(r["done"]),
                None if r["staged_end"] is None else int(r["staged_end"]),
                bool(r["joined"]),
            )
            for r in self._rows(text, cursor)
        ]

    def add_plan(self, cursor: Any, plan: str, files: Sequence[tuple[str, int]]) -> None:
        """Append a plan's files (identity, partition) after every planned one, in order."""
        cursor.execute(self._sql("SELECT COALESCE(MAX(ordinal), 0) AS last FROM {schema}.{files}"))
        row = cursor.fetchone()
        first = int(row["last"]) + 1
        cursor.executemany(
            self._sql(
                "INSERT INTO {schema}.{files} (ordinal, plan, identity, partition)"
                " VALUES (%s, %s, %s, %s)"
            ),
            [(first + i, plan, identity, part) for i, (identity, part) in enumerate(files)],
        )

    def finish(self, ordinal: int, staged_end: int) -> None:
        """The file's partition has finished it; its rows end at ``staged_end``."""
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(
                self._sql(
                    "UPDATE {schema}.{files} SET done = true, staged_end = %s"
                    " WHERE ordinal = %s AND NOT done"
                ),
                (staged_end, ordinal),
            )

    # -- joining ---------------------------------------------------------------

    def joined_positions(self) -> dict[int, int]:
        """Per partition, the last notification id of its tables that has joined the log."""
        with self.datastore.transaction() as cursor:
            cursor.execute(self._sql("SELECT partition, staged FROM {schema}.{joined}"))
            return {int(r["partition"]): int(r["staged"]) for r in cursor.fetchall()}

    def partition_running(self, index: int, count: int) -> bool:
        """Whether a process holds partition ``index`` of ``count`` (its advisory lock)."""
        with self.datastore.transaction() as cursor:
            key = partition_lock_key(index, count, self.schema)
            return lock_holder_pid(cursor, key) is not None

    def exists(self, table: str) -> bool:
        """Whether ``table`` exists in the schema (a partition that never ran has none)."""
        with self.datastore.transaction() as cursor:
            return _exists(cursor, self.schema, table)

    def waiting_events(self, table: str, after: int, recorded_topic: str) -> int:
        """The source events of partition table ``table`` after ``after``: not joined yet."""
        with self.datastore.transaction() as cursor:
            cursor.execute(
                self._sql(
                    "SELECT COUNT(*) AS n FROM {schema}.{t}"
                    " WHERE notification_id > %s AND topic = %s",
                    t=table,
                ),
                (after, recorded_topic),
            )
            row = cursor.fetchone()
        return int(row["n"]) if row else 0

    def staged_end(self, table: str) -> int:
        """The last notification id committed to a partition's events table ``table``."""
        with self.datastore.transaction() as cursor:
            return self._last_id(cursor, table)

    def _last_id(self, cursor: Any, table: str) -> int:
        cursor.execute(
            self._sql("SELECT COALESCE(MAX(notification_id), 0) AS last FROM {schema}.{t}", t=table)
        )
        row = cursor.fetchone()
        return int(row["last"]) if row else 0

    def join_step(
        self,
        count: int,
        corrections: Corrections,
        tracking_prefix: Callable[[str], str],
        *,
        wait: bool,
    ) -> JoinStep | None:
        """Join what is ready of the first file not joined yet, in one transaction that
        holds the schema's join lock; None when another process holds it and not ``wait``.

        The rows of that file's partition (its tables, of ``count``) after its
        cursor, up to where the partition finished the file (or, while it has not, up
        to its last commit: its rows after its earlier files are all of this file) are
        copied with their stream versions renumbered after the log's; a stream's
        opening event is dropped when the log has the stream; a row whose event id the
        log holds already is left out and handed to ``corrections`` with the log's
        first event of that id. The cursor and the file's ``joined`` mark move in the
        same transaction; with the mark, the file's tracking records (named by
        ``tracking_prefix(identity)``) are copied to the log's, as one ingest of the file
        would have left them."""
        with self.datastore.transaction(commit=True) as cursor:
            if not xact_lock(cursor, f"eventfold.join:{self.schema}", wait=wait):
                return None
            pending = self.files(cursor, open_only=True)
            if not pending:
                return JoinStep(None, 0)
            planned = pending[0]
            table = partition_table(planned.partition, count)
            cursor.execute(
                self._sql("SELECT staged FROM {schema}.{joined} WHERE partition = %s"),
                (planned.partition,),
            )
            found = cursor.fetchone()
            low = int(found["staged"]) if found else 0
            if planned.done:
                high = planned.staged_end or 0
            elif not _exists(cursor, self.schema, table):  # its partition has not started
                high = 0
            else:
                high = self._last_id(cursor, table)
            copied = 0
            if high > low:
                copied = self._copy(cursor, table, low, high, corrections)
                failpoints.reach("join.before-commit")  # inside the join's transaction
                cursor.execute(
                    self._sql(
                        "INSERT INTO {schema}.{joined} (partition, staged) VALUES (%s, %s)"
                        " ON CONFLICT (partition) DO UPDATE SET staged = EXCLUDED.staged"
                    ),
                    (planned.partition, high),
                )
            if planned.done and high >= (planned.staged_end or 0):
                self._copy_tracking(cursor, planned, count, tracking_prefix(planned.identity))
                cursor.execute(
                    self._sql("UPDATE {schema}.{files} SET joined = true WHERE ordinal = %s"),
                    (planned.ordinal,),
                )
                return JoinStep(planned, copied, finished=True)
            return JoinStep(planned, copied)

    def _copy(
        self,
        cursor: Any,
        table: str,
        low: int,
        high: int,
        corrections: Corrections,
    ) -> int:
        """Copy rows ``low < notification_id <= high`` of ``table`` to the log, but for the
        repeats (handed to ``corrections``); the source events copied."""
        self.log._lock_table(cursor)  # the library's own ordering of inserts
        self.log._notify_channel(cursor)  # wakes the library's subscribers
        cursor.execute(  # which rows repeat an id: an earlier row here, or the log, has it
            self._sql(
                "CREATE TEMP TABLE eventfold_joining ON COMMIT DROP AS"
                " SELECT r.*, r.event_id IS NOT NULL AND (r.staged > MIN(r.staged)"
                " OVER (PARTITION BY r.event_id) OR EXISTS (SELECT 1 FROM {schema}.{ids} i"
                " WHERE i.event_id = r.event_id)) AS repeat"
                " FROM (SELECT notification_id AS staged, originator_id, originator_version,"
                " event_id FROM {schema}.{t}"
                " WHERE notification_id > %s AND notification_id <= %s) r",
                t=table,
            ),
            (low, high),
        )
        # The log is read for the step's streams only (their last versions: a stream the
        # log has loses its opening event here), and the partition's table for the step's
        # rows only, so that a small step stays cheap however large the log has grown.
        cursor.execute(  # the others, after the log's versions of their streams
            self._sql(
                "WITH base AS MATERIALIZED (SELECT s.originator_id,"
                " COALESCE(m.version, 0) AS version"
                " FROM (SELECT DISTINCT originator_id FROM eventfold_joining) s"
                " LEFT JOIN LATERAL (SELECT MAX(l.originator_version) AS version"
                " FROM {schema}.{log} l WHERE l.originator_id = s.originator_id) m ON true),"
                " kept AS MATERIALIZED (SELECT j.staged, j.originator_id, j.event_id,"
                " b.version AS base FROM eventfold_joining j JOIN base b USING (originator_id)"
                " WHERE NOT j.repeat AND NOT (j.originator_version = 1 AND b.version > 0)),"
                " numbered AS MATERIALIZED (SELECT staged, originator_id, event_id,"
                " base + row_number() OVER (PARTITION BY originator_id ORDER BY staged)"
                " AS version FROM kept),"
                " copied AS (INSERT INTO {schema}.{log}"
                " (originator_id, originator_version, topic, state)"
                " SELECT n.originator_id, n.version, p.topic, p.state FROM numbered n"
                " JOIN {schema}.{t} p ON p.notification_id = n.staged"
                " AND p.notification_id > %s AND p.notification_id <= %s ORDER BY n.staged"
                " RETURNING 1)"
                " INSERT INTO {schema}.{ids} (event_id, originator_id, originator_version)"
                " SELECT event_id, originator_id, version FROM numbered"
                " WHERE event_id IS NOT NULL",
                t=table,
            ),
            (low, high),
        )
        copied = int(cursor.rowcount)  # an id a Recorded row copied
        cursor.execute(
            self._sql(
                "SELECT j.staged, p.state, l.state AS first_state,"
                " l.notification_id AS first_position FROM eventfold_joining j"
                " JOIN {schema}.{t} p ON p.notification_id = j.staged"
                " AND p.notification_id > %s AND p.notification_id <= %s"
                " JOIN {schema}.{ids} i ON i.event_id = j.event_id"
                " JOIN {schema}.{log} l ON l.originator_id = i.originator_id"
                " AND l.originator_version = i.originator_version"
                " WHERE j.repeat ORDER BY j.staged",
                t=table,
            ),
            (low, high),
        )
        repeats = [
            Repeat(
                int(r["staged"]),
                bytes(r["state"]),
                bytes(r["first_state"]),
                int(r["first_position"]),
            )
            for r in cursor.fetchall()
        ]
        if repeats:
            self._append(cursor, corrections(repeats, self._next_version(cursor)))
        return copied

    def _copy_tracking(self, cursor: Any, planned: PlannedFile, count: int, prefix: str) -> None:
        own = partition_app_name(planned.partition, count).lower() + "_tracking"
        cursor.execute(
            self._sql(
                "INSERT INTO {schema}.{log_tracking} (application_name, notification_id)"
                " SELECT application_name, MAX(notification_id) FROM {schema}.{own}"
                " WHERE starts_with(application_name, %s) GROUP BY application_name"
                " ON CONFLICT DO NOTHING",
                own=own,
                log_tracking=self.log.tracking_table_name,  # type: ignore[attr-defined]
            ),
            (prefix,),
        )

    def _next_version(self, cursor: Any) -> Callable[[UUID], int]:
        taken: dict[UUID, int] = {}

        def next_version(originator_id: UUID) -> int:
            version = taken.get(originator_id)
            if version is None:
                cursor.execute(
                    self._sql(
                        "SELECT COALESCE(MAX(originator_version), 0) AS v FROM {schema}.{log}"
                        " WHERE originator_id = %s"
                    ),
                    (originator_id,),
                )
                row = cursor.fetchone()
                version = int(row["v"]) if row else 0
            taken[originator_id] = version + 1
            return version + 1

        return next_version

    def _append(self, cursor: Any, events: Sequence[StoredEvent]) -> None:
        if not events:
            return
        cursor.executemany(
            self._sql(
                "INSERT INTO {schema}.{log} (originator_id, originator_version, topic, state)"
                " VALUES (%s, %s, %s, %s)"
            ),
            [(e.originator_id, e.originator_version, e.topic, e.state) for e in events],
        )
