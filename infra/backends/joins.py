"""One join step's mapping: a range of a partition's rows given the log's ids, in SQL.

Run inside the join's transaction (``PartitionTables.join_step``), which holds the
join's advisory lock and, from here on, the library's lock on the log: the rows
``low < id <= high`` of a partition's events table take the next ``high - low``
ids of the log's sequence, their streams' versions continue the log's
(``mapped.py`` says how a reader renumbers them), and no row is copied. Left
out (``eventfold_partition_aside``): a row whose event id an earlier row holds
(``eventfold_event_ids``: its partition claimed it after committing, for its
file), handed to the caller as a ``Repeat``; and a stream's opening event when
the log has the stream already.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from psycopg import sql

from eventfold.infra.backends.mapped import names, partition_table
from eventfold.infra.backends.postgres import serial_sequence


@dataclass(frozen=True)
class Repeat:
    """A row of a partition's tables whose event id an earlier row holds already."""

    staged: int  # its notification id in the partition's tables
    state: bytes  # its stored state (a ``Category.Recorded``)
    first_state: bytes  # the state of the first event of that id
    first_position: int  # that event's notification id in the log


# Stored events to append after a join's rows (the repeats recorded on their source):
# given the repeats and the next version of a stream in the log.
Corrections = Callable[[list[Repeat], Callable[[UUID], int]], Sequence[StoredEvent]]

# The range's rows, each with what its id's claim (``eventfold_event_ids``) says: the
# partitions claim their commits' ids, so that once every earlier file has joined an
# id's claim is its earliest occurrence; a row whose id is claimed by an earlier row is a
# repeat. A row no partition has claimed yet (its claim still to come, lost with a
# killed process, or never made by an earlier release), or whose id a later row holds
# (a later file's, or a later one of this file's whose claim came first), is claimed
# here, as a partition claims; a row of the range whose claim it takes over (a later
# row of this file) is then a repeat. A partition's claim of the same row that commits
# meanwhile is the same claim: the row stays the id's.
_RANGE = (
    "CREATE TEMP TABLE eventfold_joining (staged bigint, originator_id uuid,"
    " originator_version bigint, event_id text, reason text) ON COMMIT DROP"
)
# (A lateral probe a row: a join of the whole claims table would read all of it.)
_CLAIMS = (
    "INSERT INTO eventfold_joining SELECT p.notification_id, p.originator_id,"
    " p.originator_version, p.event_id, CASE WHEN p.event_id IS NULL THEN NULL"
    " WHEN i.found IS NULL OR i.ordinal > %(ordinal)s"
    " OR (i.ordinal = %(ordinal)s AND i.staged > p.notification_id) THEN 'unclaimed'"
    " WHEN i.partition = %(partition)s AND i.staged = p.notification_id THEN NULL"
    " ELSE 'repeat' END FROM {schema}.{part} p LEFT JOIN LATERAL (SELECT true AS found,"
    " c.ordinal, c.partition, c.staged FROM {schema}.{ids} c"
    " WHERE c.event_id = p.event_id LIMIT 1) i ON true"
    " WHERE p.notification_id > %(low)s AND p.notification_id <= %(high)s"
)
_UNCLAIMED = (
    "WITH claimed AS (INSERT INTO {schema}.{ids} AS c (event_id, originator_id, ordinal,"
    " partition, staged) SELECT DISTINCT ON (event_id) event_id, originator_id, %(ordinal)s,"
    " %(partition)s, staged FROM eventfold_joining WHERE reason = 'unclaimed'"
    " ORDER BY event_id, staged ON CONFLICT (event_id) DO UPDATE SET"
    " originator_id = EXCLUDED.originator_id, originator_version = NULL, notification_id = NULL,"
    " ordinal = EXCLUDED.ordinal, partition = EXCLUDED.partition, staged = EXCLUDED.staged"
    " WHERE c.ordinal > EXCLUDED.ordinal"
    " OR (c.ordinal = EXCLUDED.ordinal AND c.staged >= EXCLUDED.staged)"
    " RETURNING event_id, staged)"
    " UPDATE eventfold_joining j SET reason = CASE WHEN j.staged IN (SELECT staged FROM claimed)"
    " THEN NULL ELSE 'repeat' END WHERE j.reason = 'unclaimed'"
    " OR (j.reason IS NULL AND j.event_id IN (SELECT event_id FROM claimed))"
)
# Each stream's last version in the log (its own rows, then the mapped ones) and the
# partition's versions of its rows in the range.
_RUNS = (
    "CREATE TEMP TABLE eventfold_runs ON COMMIT DROP AS"
    " SELECT s.originator_id, s.local_first, s.local_last,"
    " GREATEST(COALESCE(l.v, 0), COALESCE(m.v, 0)) AS base"
    " FROM (SELECT originator_id, MIN(originator_version) AS local_first,"
    " MAX(originator_version) AS local_last FROM eventfold_joining GROUP BY originator_id) s"
    " LEFT JOIN LATERAL (SELECT MAX(originator_version) AS v FROM {schema}.{log}"
    " WHERE originator_id = s.originator_id) l ON true"
    " LEFT JOIN LATERAL (SELECT first_version + kept - 1 AS v FROM {schema}.{streams}"
    " WHERE originator_id = s.originator_id ORDER BY first_version DESC LIMIT 1) m ON true"
)
_OPENINGS = (
    "UPDATE eventfold_joining j SET reason = 'opening' FROM eventfold_runs b"
    " WHERE j.originator_id = b.originator_id AND j.originator_version = 1"
    " AND b.base > 0 AND j.reason IS NULL"
)
_ASIDE = (
    "INSERT INTO {schema}.{aside} (partition, staged, originator_id, local_version, reason)"
    " SELECT %(partition)s, staged, originator_id, originator_version, reason"
    " FROM eventfold_joining WHERE reason IS NOT NULL"
)
_STEP = (
    "INSERT INTO {schema}.{steps} (first_id, last_id, partition, low, high, kept)"
    " SELECT %(first)s, %(first)s + %(high)s - %(low)s - 1, %(partition)s, %(low)s, %(high)s,"
    " COUNT(*) FROM eventfold_joining WHERE reason IS NULL"
)
_STREAMS = (
    "INSERT INTO {schema}.{streams}"
    " (step, originator_id, first_version, local_first, local_last, kept)"
    " SELECT %(first)s, b.originator_id, b.base + 1, b.local_first, b.local_last, k.kept"
    " FROM eventfold_runs b JOIN (SELECT originator_id, COUNT(*) AS kept"
    " FROM eventfold_joining WHERE reason IS NULL GROUP BY originator_id) k USING (originator_id)"
)
_KEPT = "SELECT COUNT(*) AS n FROM eventfold_joining WHERE event_id IS NOT NULL AND reason IS NULL"
_REPEATS = (
    "SELECT j.staged, p.state, i.partition AS first_partition, i.staged AS first_staged,"
    " i.notification_id AS first_id, i.originator_id, i.originator_version"
    " FROM eventfold_joining j JOIN {schema}.{part} p ON p.notification_id = j.staged"
    " AND p.notification_id > %(low)s AND p.notification_id <= %(high)s"
    " JOIN {schema}.{ids} i ON i.event_id = j.event_id WHERE j.reason = 'repeat' ORDER BY j.staged"
)


class StepMap:
    """The statements of a join step over the log ``log`` (the library's recorder) of a
    store of ``count`` partitions, in ``schema``."""

    def __init__(self, log: Any, schema: str, count: int, ids: str) -> None:
        self.log = log
        self.schema = schema
        self.count = count
        self.ids = ids

    def _sql(self, text: str, **more: str) -> sql.Composed:
        return sql.SQL(text).format(
            **names(self.schema, log=self.log.events_table_name, ids=self.ids, **more)
        )

    def map(
        self,
        cursor: Any,
        planned: tuple[int, int],
        low: int,
        high: int,
        corrections: Corrections,
    ) -> int:
        """Map rows ``low < id <= high`` of the table of the partition of ``planned`` (plan
        ordinal, partition) into the log, but for the rows set aside (repeats handed to
        ``corrections``, whose events are appended to the log); the source events kept."""
        ordinal, partition = planned
        self.log._lock_table(cursor)  # the library's own ordering of the log's ids
        self.log._notify_channel(cursor)  # wakes the library's subscribers
        table = partition_table(partition, self.count)
        first = self._reserve(cursor, high - low)
        values = {"low": low, "high": high, "first": first, "partition": partition}
        values["ordinal"] = ordinal
        cursor.execute(self._sql(_RANGE))
        cursor.execute(self._sql(_CLAIMS, part=table), values)
        for text in (_UNCLAIMED, _RUNS, _OPENINGS, _ASIDE):
            cursor.execute(self._sql(text), values)
        aside = int(cursor.rowcount)
        for text in (_STEP, _STREAMS, _KEPT):
            cursor.execute(self._sql(text), values)
        kept = int(cursor.fetchone()["n"])  # the source events kept
        if aside:
            cursor.execute(self._sql(_REPEATS, part=table), values)
            repeats = self._repeats(cursor, list(cursor.fetchall()))
            if repeats:
                self._append(cursor, corrections(repeats, self._next_version(cursor)))
        return kept

    def _reserve(self, cursor: Any, n: int) -> int:
        """The first of the next ``n`` ids of the log's sequence, taken."""
        sequence = serial_sequence(cursor, self.schema, self.log.events_table_name)
        cursor.execute("SELECT nextval(%s) AS first", (sequence,))
        first = int(cursor.fetchone()["first"])
        if n > 1:
            cursor.execute("SELECT setval(%s, %s)", (sequence, first + n - 1))
        return first

    def _repeats(self, cursor: Any, rows: list[Any]) -> list[Repeat]:
        """Each repeat with the state and log id of its id's first event: claimed by a
        partition's row (its log id found by its step), or, by a release before that,
        by its log id, or (joins that copied) by its stream and version in the log."""
        owned = [r for r in rows if r["first_partition"] is not None]
        if owned:
            cursor.execute(
                self._sql(
                    "SELECT x.partition, x.staged, t.first_id + x.staged - t.low - 1 AS id"
                    " FROM unnest(%s::integer[], %s::bigint[]) AS x(partition, staged)"
                    " JOIN LATERAL (SELECT first_id, low FROM {schema}.{steps}"
                    " WHERE partition = x.partition AND low < x.staged AND high >= x.staged"
                    " LIMIT 1) t ON true"
                ),
                ([r["first_partition"] for r in owned], [r["first_staged"] for r in owned]),
            )
            ids = {(int(r["partition"]), int(r["staged"])): int(r["id"]) for r in cursor}
            for r in owned:
                owner = (int(r["first_partition"]), int(r["first_staged"]))
                if owner not in ids:  # claims are in plan order: the owner has joined
                    msg = f"an id's claim names partition {owner[0]}'s row {owner[1]}, not joined"
                    raise RuntimeError(msg)
                r["first_id"] = ids[owner]
        firsts = self._states_at(cursor, [int(r["first_id"]) for r in rows if r["first_id"]])
        old = [r for r in rows if r["first_id"] is None]  # claimed when joins copied rows
        if old:
            cursor.execute(
                self._sql(
                    "SELECT l.originator_id, l.originator_version, l.notification_id, l.state"
                    " FROM {schema}.{log} l JOIN unnest(%s::uuid[], %s::bigint[])"
                    " AS k(originator_id, originator_version) USING (originator_id,"
                    " originator_version)"
                ),
                ([r["originator_id"] for r in old], [r["originator_version"] for r in old]),
            )
            at = {
                (r["originator_id"], int(r["originator_version"])): (
                    int(r["notification_id"]),
                    bytes(r["state"]),
                )
                for r in cursor.fetchall()
            }
            for r in old:
                position, state = at[(r["originator_id"], int(r["originator_version"]))]
                firsts[position] = state
                r["first_id"] = position
        return [
            Repeat(
                int(r["staged"]),
                bytes(r["state"]),
                firsts[int(r["first_id"])],
                int(r["first_id"]),
            )
            for r in rows
        ]

    def _states_at(self, cursor: Any, log_ids: list[int]) -> dict[int, bytes]:
        """The states of the mapped rows of ``log_ids``."""
        if not log_ids:
            return {}
        cursor.execute(
            self._sql(
                "SELECT x.id, t.partition, x.id - t.first_id + t.low + 1 AS staged"
                " FROM unnest(%s::bigint[]) AS x(id) JOIN LATERAL (SELECT * FROM"
                " {schema}.{steps} WHERE first_id <= x.id ORDER BY first_id DESC LIMIT 1) t"
                " ON x.id <= t.last_id"
            ),
            (sorted(set(log_ids)),),
        )
        by_partition: dict[int, dict[int, int]] = {}
        for r in cursor.fetchall():
            by_partition.setdefault(int(r["partition"]), {})[int(r["staged"])] = int(r["id"])
        states: dict[int, bytes] = {}
        for partition, staged in sorted(by_partition.items()):
            cursor.execute(
                self._sql(
                    "SELECT notification_id, state FROM {schema}.{part}"
                    " WHERE notification_id = ANY(%s)",
                    part=partition_table(partition, self.count),
                ),
                (list(staged),),
            )
            for r in cursor.fetchall():
                states[staged[int(r["notification_id"])]] = bytes(r["state"])
        return states

    def _next_version(self, cursor: Any) -> Callable[[UUID], int]:
        """The next version of a stream in the log, one after another."""
        taken: dict[UUID, int] = {}

        def next_version(originator_id: UUID) -> int:
            version = taken.get(originator_id)
            if version is None:
                cursor.execute(
                    self._sql(
                        "SELECT GREATEST(COALESCE((SELECT MAX(originator_version)"
                        " FROM {schema}.{log} WHERE originator_id = %(id)s), 0),"
                        " COALESCE((SELECT first_version + kept - 1 FROM {schema}.{streams}"
                        " WHERE originator_id = %(id)s ORDER BY first_version DESC LIMIT 1), 0))"
                        " AS v"
                    ),
                    {"id": originator_id},
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
