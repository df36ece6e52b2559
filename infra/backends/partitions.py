"""A partitioned store on PostgreSQL: each partition's own tables, and the join into one log.

Partition ``K`` of ``N`` ingests into the library's tables of its own application
(``eventfold_pKofN_events``, ``..._tracking``, ``..._snapshots``), so partitions
never wait on each other's table lock. The store's log stays the library's one
``eventfold_events`` table; partitions' events *join* it in the documented order
of the source files, mapped into its notification ids rather than copied
(``joins.py``), and every reader reads both (``mapped.py``). Beside them, in the
schema::

    eventfold_partitioning     the store's number of partitions (one row)
    eventfold_partition_files  the plan: each file of an ingest, its ordinal (the
                               documented order), its partition, whether that
                               partition has finished it (and where its tables
                               ended then) and whether it has joined
    eventfold_partition_joined per partition, the last notification id of its
                               tables that has joined the log
    eventfold_event_ids        each event id in the log, with its stream and its
                               notification id (or, claimed by a release whose
                               joins copied events, its version)
    eventfold_partition_steps, _streams, _aside   the mapping (``mapped.py``)

A join step is one transaction on the log (the library's ``EXCLUSIVE`` lock on it,
and its notification): the rows of one file's range take the log's next ids, with
their streams' versions after the log's, a stream's opening event set aside when
the log has the stream, and an id an earlier row holds set aside too (handed to
the caller, which records it as a duplicate or a conflict). The partition's cursor
and the file's ``joined`` mark move in the same transaction.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from eventsourcing.persistence import ProcessRecorder, Tracking
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg import sql

from eventfold.infra import failpoints
from eventfold.infra.backends.joins import Corrections, Repeat, StepMap
from eventfold.infra.backends.mapped import (
    LAYOUT,
    TABLES,
    names,
    partition_app_name,
    partition_table,
    recorded_count,
    table_exists,
)
from eventfold.infra.backends.postgres import (
    PostgresBackend,
    lock_holder_pid,
    schema_lock_key,
    serial_sequence,
    session_lock,
    xact_lock,
)
from eventfold.infra.filestore.format import EventColumns
from eventfold.infra.filestore.shapes import ByFields

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
    ' event_id text COLLATE "C" PRIMARY KEY, originator_id uuid NOT NULL,'
    " originator_version bigint NOT NULL)",
    "ALTER TABLE {schema}.{ids} ADD COLUMN IF NOT EXISTS notification_id bigint",
    "ALTER TABLE {schema}.{ids} ALTER COLUMN originator_version DROP NOT NULL",
    "ALTER TABLE {schema}.{ids} ADD COLUMN IF NOT EXISTS ordinal bigint,"
    " ADD COLUMN IF NOT EXISTS partition integer, ADD COLUMN IF NOT EXISTS staged bigint",
    *TABLES,
)
__all__ = ["Corrections", "Repeat", "partition_app_name", "partition_table"]


class _Recorded(msgspec.Struct):
    """The one field of a ``Category.Recorded`` state a partition's table keeps apart."""

    event_id: str


_EVENT_ID = msgspec.json.Decoder(_Recorded).decode
_COPY_TEXT = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


# A commit's ids claimed, after it, for the file of plan ordinal ``ordinal``: an id
# claimed by a later row (of a later file, or later in this one: ``staged`` follows the
# file's order) is taken over, one claimed by an earlier row kept, so that once every
# earlier file has joined (the join claims what its partition has not yet), an id's
# claim is its earliest occurrence, in whatever order the claims were made. Rows in one
# order (by id), and one claiming statement a transaction, on every partition and in the
# join: claims that wait on each other cannot deadlock (two statements in a transaction,
# each in id order, lock ids out of order).
CLAIM = (
    "INSERT INTO {schema}.{ids} AS i (event_id, originator_id, ordinal, partition, staged)"
    " SELECT DISTINCT ON (event_id) event_id, originator_id, %(ordinal)s, %(partition)s,"
    " notification_id FROM {schema}.{table} WHERE notification_id > %(low)s"
    " AND notification_id <= %(high)s AND event_id IS NOT NULL"
    " ORDER BY event_id, notification_id ON CONFLICT (event_id) DO UPDATE SET"
    " originator_id = EXCLUDED.originator_id, originator_version = NULL, notification_id = NULL,"
    " ordinal = EXCLUDED.ordinal, partition = EXCLUDED.partition, staged = EXCLUDED.staged"
    " WHERE i.ordinal > EXCLUDED.ordinal"
    " OR (i.ordinal = EXCLUDED.ordinal AND i.staged > EXCLUDED.staged)"
)


class PartitionBackend(PostgresBackend):
    """A partition's own tables: the postgres backend, with three differences.

    - Only its partition writes to them (``lock`` holds that, across machines), so an
      insert takes no table lock: the one writer commits in notification id order.
    - Events are written with ``COPY`` from the columns, not as the library's
      composite values, which cost the client most of an ingest. The tracking record
      goes in the same transaction, through the library.
    - Its events table has one more column, ``event_id``: a ``Category.Recorded``
      state's (``recorded_topic``) event id, read by the partition and written with
      the row. In tables made by a release that had the server compute it (a
      generated column) the server still does.
    - Its commits' ids are claimed (``eventfold_event_ids``) for their file
      (``claim_for``) after the commit, off the partition's path (``claim_committed``,
      from the partition's join thread): the partitions claim in parallel, and the join
      reads the claims, claiming itself any row whose claim has not been made yet.
    """

    def __init__(self, base: PostgresBackend, recorded_topic: str, partition: int) -> None:
        self.__dict__.update(base.__dict__)
        recorder: Any = self.recorder
        schema, table = self.datastore.schema, recorder.events_table_name
        names = {"schema": sql.Identifier(schema), "table": sql.Identifier(table)}
        self._recorded_topic = recorded_topic
        self._partition = partition
        self._ordinal: int | None = None
        self._committed: list[tuple[int, int, int]] = []  # unclaimed: (ordinal, low, high)
        self._committed_lock = threading.Lock()
        self.on_commit: Callable[[], None] = lambda: None
        self._claim = sql.SQL(CLAIM).format(ids=sql.Identifier(IDS), **names)
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
                ).format(**names)
            )
            cursor.execute(
                "SELECT attgenerated <> '' AS generated FROM pg_attribute"
                " WHERE attrelid = %s::regclass AND attname = 'event_id'",
                (f'"{schema}"."{table}"',),
            )
            row = cursor.fetchone()
            self._server_ids = bool(row and row["generated"])
            self._sequence = serial_sequence(cursor, schema, table)
        columns = "originator_id, originator_version, topic, state"
        columns += "" if self._server_ids else ", event_id"
        self._copy_statement = sql.SQL("COPY {schema}.{table} (" + columns + ") FROM STDIN").format(
            **names
        )

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
        names = {o: str(o) for o in set(oids)}  # a batch's events share a few streams
        heads = [
            f"{names[o]}\t{v}\t{t}\t\\\\x" for o, v, t in zip(oids, versions, topics, strict=True)
        ]
        if self._server_ids:
            rows = "".join([f"{h}{s.hex()}\n" for h, s in zip(heads, states, strict=True)])
        else:
            recorded = self._recorded_topic
            found = [
                _EVENT_ID(s).event_id if t == recorded else None
                for t, s in zip(topics, states, strict=True)
            ]
            text = "".join(filter(None, found))
            escape = any(c in text for c in "\\\t\n\r")  # rare: COPY's text format escapes
            ids = ["\\N" if i is None else i.translate(_COPY_TEXT) if escape else i for i in found]
            rows = "".join(
                [f"{h}{s.hex()}\t{i}\n" for h, s, i in zip(heads, states, ids, strict=True)]
            )
        ordinal = self._ordinal
        claimed = self._recorded_topic in topics
        if claimed and ordinal is None:
            msg = "a partition's source events are written for a file of the plan"
            raise RuntimeError(msg)
        with self.datastore.transaction(commit=True) as cursor:
            recorder._insert_tracking(cursor, tracking=tracking)  # type: ignore[attr-defined]
            with cursor.copy(self._copy_statement) as copy:
                copy.write(rows)
            cursor.execute("SELECT currval(%s) AS last", (self._sequence,))
            row = cursor.fetchone()
            last = int(row["last"]) if row else 0
            failpoints.reach("partition.inside-commit")
        if claimed and ordinal is not None:
            self.committed(ordinal, last - len(oids), last)
        return list(range(last - len(oids) + 1, last + 1))

    def committed(self, ordinal: int, low: int, high: int) -> None:
        """Rows ``low < id <= high`` of this partition's table, of the plan's file
        ``ordinal``, have committed: their ids are to be claimed (``claim_committed``)."""
        with self._committed_lock:
            self._committed.append((ordinal, low, high))
        self.on_commit()

    def claim_for(self, ordinal: int) -> None:
        """The commits from now on are of the plan's file ``ordinal``: their ids are claimed
        for it."""
        self._ordinal = ordinal

    def claim_committed(self, least: int = 1) -> int:
        """Claim the ids of the commits made since the last claim, each for its file (a
        transaction a file), once they hold at least ``least`` rows; the rows claimed. Claims
        are only a head start: a row whose claim is missing (not made yet, or the process
        died first) is claimed by its join, the same way."""
        with self._committed_lock:
            rows = sum(high - low for _, low, high in self._committed)
            if rows < least:
                return 0
            ranges, self._committed = self._committed, []
        merged: list[list[int]] = []
        for ordinal, low, high in ranges:
            if merged and merged[-1][0] == ordinal and merged[-1][2] == low:
                merged[-1][2] = high
            else:
                merged.append([ordinal, low, high])
        for ordinal, low, high in merged:  # one statement a transaction: see ``CLAIM``
            with self.datastore.transaction(commit=True) as cursor:
                values = {"ordinal": ordinal, "partition": self._partition}
                cursor.execute(self._claim, values | {"low": low, "high": high})
        return rows

    def lock(self, index: int, count: int) -> Callable[[], None] | None:
        """Hold partition ``index`` of ``count`` (an advisory lock of this schema) on a
        connection of its own; the function that releases it, or None when another
        session holds it."""
        return session_lock(self.settings, partition_lock_key(index, count, self.datastore.schema))


def partition_lock_key(index: int, count: int, schema: str) -> str:
    """The advisory lock that one process at a time holds to run a partition."""
    return f"eventfold.partition:{index}/{count}:{schema}"


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
class JoinStep:
    """What one join step did: the file it joined from (None: every file has joined),
    the source events it joined, and whether the file has joined whole (the repeats left
    out are the ``corrections`` callback's to count)."""

    planned: PlannedFile | None
    copied: int
    finished: bool = False


def recorded_partitions(log: PostgresApplicationRecorder) -> int | None:
    """The number of partitions recorded in the log's schema (None: not partitioned),
    read without creating anything."""
    schema = log.datastore.schema
    with log.datastore.transaction() as cursor:
        if not table_exists(cursor, schema, LAYOUT):
            return None
        return recorded_count(cursor, schema)


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
        tables = {
            "files": FILES,
            "files_open": FILES + "_open",
            "joined": JOINED,
            "ids": IDS,
            "log": self.log.events_table_name,
        }
        return sql.SQL(text).format(**names(self.schema, **(tables | more)))

    # -- the layout ------------------------------------------------------------

    def partitions(self, cursor: Any) -> int | None:
        """The store's number of partitions, or None when none was recorded."""
        return recorded_count(cursor, self.schema)

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
            return table_exists(cursor, self.schema, table)

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
        mapped into the log (``joins.StepMap``): they take the log's next ids, their
        streams' versions after the log's; a stream's opening event is set aside when
        the log has the stream; a row whose event id an earlier row holds is set aside
        and handed to ``corrections`` with the first event of that id. The cursor and
        the file's ``joined`` mark move in the same transaction; with the mark, the
        file's tracking records (named by ``tracking_prefix(identity)``) are copied to
        the log's, as one ingest of the file would have left them."""
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
            elif not table_exists(cursor, self.schema, table):  # its partition has not started
                high = 0
            else:
                high = self._last_id(cursor, table)
            joined = 0
            if high > low:
                mapping = StepMap(self.log, self.schema, count, IDS)
                step = (planned.ordinal, planned.partition)
                joined = mapping.map(cursor, step, low, high, corrections)
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
                return JoinStep(planned, joined, finished=True)
            return JoinStep(planned, joined)

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
