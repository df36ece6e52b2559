"""A partitioned store's log as every reader sees it: its own rows and the mapped ones.

The join of a partitioned store (``partitions.py``) moves no event: it *maps* a
range of a partition's rows into the log's notification ids, one step at a
time, in three tables beside the library's::

    eventfold_partition_steps    a step: the log's ids first..last stand for the rows
                                 low < notification_id <= high of one partition's
                                 events table (id = first + row - low - 1), and how
                                 many of them are kept
    eventfold_partition_streams  per step and stream: the log's version of the
                                 stream's first kept row (first_version), the
                                 partition's versions of its rows in the step
                                 (local_first..local_last) and how many are kept
    eventfold_partition_aside    rows of a step left out: a repeat of an id that
                                 an earlier row holds, or a stream's opening event
                                 when the log had the stream already

A kept row of version ``v`` in its partition is version
``first_version + (v - local_first) - (rows of the stream set aside in the step
below v)`` in the log. The log's ids of rows set aside are never used.

``MappedProcessRecorder`` and ``MappedApplicationRecorder`` are the library's
PostgreSQL recorders reading both: ``select_notifications``,
``max_notification_id`` and ``select_events`` answer as if every mapped row had
been copied into the log. Over a store that is not partitioned, or over a
partition's own tables, they are the library's recorders. eventfold's
``postgres`` backend chooses them (``PROCESS_RECORDER_TOPIC``,
``APPLICATION_RECORDER_TOPIC``); any eventsourcing application reads a
partitioned store through them with the same two keys.
"""

from __future__ import annotations

import bisect
import contextlib
import heapq
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, Notification, StoredEvent
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresProcessRecorder,
)
from psycopg import sql

LAYOUT = "eventfold_partitioning"
STEPS = "eventfold_partition_steps"
STREAMS = "eventfold_partition_streams"
ASIDE = "eventfold_partition_aside"
TABLES = (
    "CREATE TABLE IF NOT EXISTS {schema}.{steps} ("
    " first_id bigint PRIMARY KEY, last_id bigint NOT NULL, partition integer NOT NULL,"
    " low bigint NOT NULL, high bigint NOT NULL, kept bigint NOT NULL)",
    "CREATE TABLE IF NOT EXISTS {schema}.{streams} ("
    " step bigint NOT NULL, originator_id uuid NOT NULL, first_version bigint NOT NULL,"
    " local_first bigint NOT NULL, local_last bigint NOT NULL, kept bigint NOT NULL,"
    " PRIMARY KEY (originator_id, first_version))",
    "CREATE INDEX IF NOT EXISTS {streams_step} ON {schema}.{streams} (step)",
    "CREATE INDEX IF NOT EXISTS {steps_rows} ON {schema}.{steps} (partition, high)",
    "CREATE TABLE IF NOT EXISTS {schema}.{aside} ("
    " partition integer NOT NULL, staged bigint NOT NULL, originator_id uuid NOT NULL,"
    " local_version bigint NOT NULL, reason text NOT NULL, PRIMARY KEY (partition, staged))",
)
CACHED_STEPS = 4  # steps whose stream versions a reader keeps (a scan reads one at a time)


def partition_app_name(index: int, count: int) -> str:
    """The application name of partition ``index`` of ``count``, and so its tables' prefix."""
    return f"Eventfold_p{index}of{count}"


def partition_table(index: int, count: int) -> str:
    """The events table of partition ``index`` of ``count`` (the library's naming)."""
    return f"{partition_app_name(index, count).lower()}_events"


def names(schema: str, **more: str) -> dict[str, sql.Identifier]:
    """The identifiers of the mapping's tables, for ``sql.SQL(...).format``."""
    found = {
        "schema": schema,
        "layout": LAYOUT,
        "steps": STEPS,
        "streams": STREAMS,
        "streams_step": STREAMS + "_step",
        "steps_rows": STEPS + "_rows",
        "aside": ASIDE,
    }
    return {k: sql.Identifier(v) for k, v in (found | more).items()}


@dataclass(frozen=True)
class Step:
    """The log's ids ``first..last`` for rows ``low < id <= high`` of ``table``."""

    first: int
    last: int
    partition: int
    low: int
    high: int
    table: str

    def log_id(self, staged: int) -> int:
        return self.first + staged - self.low - 1

    def staged(self, log_id: int) -> int:
        return log_id - self.first + self.low + 1


@dataclass
class StepVersions:
    """One step's stream versions: ``log_version`` of a kept row."""

    starts: dict[UUID, tuple[int, int]]  # stream -> (first_version, local_first)
    aside: set[int]  # staged ids of the rows set aside
    aside_versions: dict[UUID, list[int]] = field(default_factory=dict)  # sorted, per stream

    def log_version(self, originator_id: UUID, version: int) -> int:
        first, local_first = self.starts[originator_id]
        below = bisect.bisect_left(self.aside_versions.get(originator_id, ()), version)
        return first + version - local_first - below


class MappedLog:
    """What the mapped recorders add to the library's: reading the mapped rows too."""

    datastore: Any
    events_table_name: str

    def _mapping_init(self) -> None:
        self._count: int | None = None  # the store's partitions, once found to have steps
        self._steps: list[Step] = []
        self._versions: OrderedDict[int, StepVersions] = OrderedDict()
        self._lock = threading.Lock()  # a recorder is shared by threads (subscriptions)

    # -- what is mapped ---------------------------------------------------------

    def _sql(self, text: str, **more: str) -> sql.Composed:
        return sql.SQL(text).format(
            **names(self.datastore.schema, log=self.events_table_name, **more)
        )

    def _partitions(self, cursor: Any) -> int | None:
        """The store's number of partitions when this recorder's table is its log and the
        store is partitioned; else None (then the recorder is the library's). A log with
        events and no partitions recorded never gets them (a partitioned store starts
        empty), so the answer is kept from then on."""
        if self._count is not None:
            return self._count or None
        if _is_partition_table(self.events_table_name):
            self._count = 0
            return None
        schema = self.datastore.schema
        if table_exists(cursor, schema, LAYOUT):
            if not table_exists(cursor, schema, STEPS):  # partitioned before joins mapped
                return None  # all is in the log
            self._count = recorded_count(cursor, schema)
            return self._count
        cursor.execute(self._sql("SELECT EXISTS (SELECT 1 FROM {schema}.{log}) AS any"))
        found = cursor.fetchone()
        if found is not None and found["any"]:
            self._count = 0
        return None

    def _steps_after(self, cursor: Any, count: int, after: int) -> list[Step]:
        """The steps that map ids above ``after`` and that ``cursor``'s snapshot sees, in
        order (steps never change once made: each is read from the database once)."""
        cursor.execute(self._sql("SELECT COALESCE(MAX(first_id), 0) AS last FROM {schema}.{steps}"))
        row = cursor.fetchone()
        seen = int(row["last"]) if row else 0
        with self._lock:
            known = self._steps[-1].first if self._steps else 0
        if seen > known:
            cursor.execute(
                self._sql(
                    "SELECT first_id, last_id, partition, low, high FROM {schema}.{steps}"
                    " WHERE first_id > %s AND first_id <= %s ORDER BY first_id"
                ),
                (known, seen),
            )
            new = [
                Step(
                    int(r["first_id"]),
                    int(r["last_id"]),
                    int(r["partition"]),
                    int(r["low"]),
                    int(r["high"]),
                    partition_table(int(r["partition"]), count),
                )
                for r in cursor.fetchall()
            ]
            with self._lock:
                if (self._steps[-1].first if self._steps else 0) == known:
                    self._steps.extend(new)
        with self._lock:
            steps = self._steps
            firsts = [s.first for s in steps]
        lasts = [s.last for s in steps[: bisect.bisect_right(firsts, seen)]]
        return steps[bisect.bisect_right(lasts, after) : len(lasts)]

    def _step_versions(self, cursor: Any, step: Step) -> StepVersions:
        with self._lock:
            found = self._versions.get(step.first)
            if found is not None:
                self._versions.move_to_end(step.first)
                return found
        cursor.execute(
            self._sql(
                "SELECT originator_id, first_version, local_first FROM {schema}.{streams}"
                " WHERE step = %s"
            ),
            (step.first,),
        )
        starts = {
            r["originator_id"]: (int(r["first_version"]), int(r["local_first"]))
            for r in cursor.fetchall()
        }
        found = StepVersions(starts, set())
        cursor.execute(
            self._sql(
                "SELECT staged, originator_id, local_version FROM {schema}.{aside}"
                " WHERE partition = %s AND staged > %s AND staged <= %s ORDER BY local_version"
            ),
            (step.partition, step.low, step.high),
        )
        for r in cursor.fetchall():
            found.aside.add(int(r["staged"]))
            found.aside_versions.setdefault(r["originator_id"], []).append(int(r["local_version"]))
        with self._lock:
            self._versions[step.first] = found
            while len(self._versions) > CACHED_STEPS:
                self._versions.popitem(last=False)
        return found

    # -- the library's reading methods, over both ----------------------------------

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[tuple[Any, int | None]]:
        """A read-only transaction that sees one snapshot (the log's own rows and the
        mapped ones as of one instant: the library's lock commits the log's ids in
        order, so it sees a prefix of them), and the store's partitions (None: the
        recorder reads as the library's)."""
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            yield cursor, self._partitions(cursor)

    def _mapped_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None,
        topics: Sequence[str],
        inclusive_of_start: bool,
    ) -> list[Notification] | None:
        """``select_notifications`` over the log's own rows and the mapped ones; None when
        the store is not partitioned."""
        if self._count == 0:
            return None
        after = 0 if start is None else (start - 1 if inclusive_of_start else start)
        found: list[Notification] = []
        with self._snapshot() as (cursor, count):
            if count is None:
                return None
            rows = self._page(cursor, self.events_table_name, (after, stop), topics, limit)
            logged = [_notification(r, r["notification_id"], r["originator_version"]) for r in rows]
            for step in self._steps_after(cursor, count, after):
                if len(found) >= limit or (stop is not None and step.first > stop):
                    break
                low = max(step.low, step.staged(after + 1) - 1)
                high = step.high if stop is None else min(step.high, step.staged(stop))
                versions = self._step_versions(cursor, step)
                wanted = limit - len(found) + len(versions.aside)
                for r in self._page(cursor, step.table, (low, high), topics, wanted):
                    staged = int(r["notification_id"])
                    if staged in versions.aside:
                        continue
                    version = versions.log_version(r["originator_id"], r["originator_version"])
                    found.append(_notification(r, step.log_id(staged), version))
        return _merged(logged, found, key=lambda n: n.id, limit=limit)

    def _page(
        self,
        cursor: Any,
        table: str,
        bounds: tuple[int, int | None],
        topics: Sequence[str],
        limit: int,
    ) -> list[Any]:
        """The first ``limit`` rows of ``table`` with ``low < notification_id <= high``
        (``bounds``; no upper bound for None), of ``topics`` if given, in id order."""
        low, high = bounds
        text = "SELECT * FROM {schema}.{table} WHERE notification_id > %s"
        params: list[Any] = [low]
        if high is not None:
            text += " AND notification_id <= %s"
            params.append(high)
        if topics:
            text += " AND topic = ANY(%s)"
            params.append(list(topics))
        text += " ORDER BY notification_id LIMIT %s"
        cursor.execute(self._sql(text, table=table), [*params, limit])
        return list(cursor.fetchall())

    def mapped_count(self) -> int:
        """How many rows the steps keep (the events mapped into the log)."""
        if self._count == 0:
            return 0
        with self._snapshot() as (cursor, count):
            if count is None:
                return 0
            cursor.execute(self._sql("SELECT COALESCE(SUM(kept), 0) AS n FROM {schema}.{steps}"))
            row = cursor.fetchone()
        return int(row["n"]) if row else 0

    def _mapped_max(self) -> int | None:
        """``max_notification_id`` over both (0: no ids); None when not partitioned."""
        if self._count == 0:
            return None
        with self._snapshot() as (cursor, count):
            if count is None:
                return None
            cursor.execute(self._sql("SELECT MAX(notification_id) AS last FROM {schema}.{log}"))
            row = cursor.fetchone()
            steps = self._steps_after(cursor, count, 0)
        own = 0 if row is None or row["last"] is None else int(row["last"])
        return max(own, steps[-1].last if steps else 0)

    def _mapped_events(
        self,
        originator_id: UUID | str,
        gt: int | None,
        lte: int | None,
        desc: bool,
        limit: int | None,
    ) -> list[StoredEvent] | None:
        """``select_events`` over the log's own rows and the mapped ones; None when the
        store is not partitioned."""
        if self._count == 0:
            return None
        found: list[StoredEvent] = []
        order = " DESC" if desc else ""
        with self._snapshot() as (cursor, count):
            if count is None:
                return None
            text = "SELECT * FROM {schema}.{log} WHERE originator_id = %s"
            params: list[Any] = [originator_id]
            runs = (
                "SELECT s.first_version, s.local_first, s.local_last, s.kept, t.partition,"
                " t.low, t.high FROM {schema}.{streams} s JOIN {schema}.{steps} t"
                " ON t.first_id = s.step WHERE s.originator_id = %s"
            )
            if gt is not None:
                text += " AND originator_version > %s"
                runs += " AND s.first_version + s.kept - 1 > %s"
                params.append(gt)
            if lte is not None:
                text += " AND originator_version <= %s"
                runs += " AND s.first_version <= %s"
                params.append(lte)
            text += " ORDER BY originator_version" + order
            cursor.execute(self._sql(text), params)
            logged = [
                StoredEvent(
                    r["originator_id"], r["originator_version"], r["topic"], bytes(r["state"])
                )
                for r in cursor.fetchall()
            ]
            cursor.execute(self._sql(runs + " ORDER BY s.first_version" + order), params)
            for run in cursor.fetchall():
                if limit is not None and len(found) >= limit:
                    break
                wanted = None if limit is None else limit - len(found)
                bounds = (gt, lte, desc, wanted)
                events = self._run_events(cursor, count, originator_id, run, *bounds)
                found.extend(reversed(events) if desc else events)
        return _merged(logged, found, lambda e: e.originator_version, limit, reverse=desc)

    def _run_events(
        self,
        cursor: Any,
        count: int,
        originator_id: UUID | str,
        run: Any,
        gt: int | None,
        lte: int | None,
        desc: bool,
        wanted: int | None,
    ) -> list[StoredEvent]:
        """One stream's kept rows in one step with versions ``gt < v <= lte``, in version
        order, with the log's versions; from a run with nothing set aside, only those
        rows are read (the first ``wanted`` of them, or with ``desc`` the last)."""
        first, local_first = int(run["first_version"]), int(run["local_first"])
        low, high = local_first, int(run["local_last"])
        dense = int(run["kept"]) == high - low + 1
        order, limit = "", ""
        if dense:  # version v is the partition's local_first + (v - first)
            if gt is not None:
                low = max(low, local_first + gt - first + 1)
            if lte is not None:
                high = min(high, local_first + lte - first)
            order = " DESC" if desc else ""
            limit = "" if wanted is None else f" LIMIT {int(wanted)}"
        cursor.execute(
            self._sql(
                "SELECT p.originator_version, p.topic, p.state, a.staged IS NOT NULL AS aside"
                " FROM {schema}.{part} p LEFT JOIN {schema}.{aside} a"
                " ON a.partition = %s AND a.staged = p.notification_id"
                " WHERE p.originator_id = %s AND p.originator_version >= %s"
                " AND p.originator_version <= %s AND p.notification_id > %s"
                " AND p.notification_id <= %s ORDER BY p.originator_version" + order + limit,
                part=partition_table(int(run["partition"]), count),
            ),
            (run["partition"], originator_id, low, high, run["low"], run["high"]),
        )
        rows = cursor.fetchall()
        if dense:
            events = [
                StoredEvent(originator_id, first + v - local_first, r["topic"], bytes(r["state"]))
                for r in rows
                for v in (int(r["originator_version"]),)
            ]
            return events[::-1] if order else events
        events, version = [], first
        for r in rows:
            if not r["aside"]:
                events.append(StoredEvent(originator_id, version, r["topic"], bytes(r["state"])))
                version += 1
        return [
            e
            for e in events
            if (gt is None or e.originator_version > gt)
            and (lte is None or e.originator_version <= lte)
        ]

    def _refuse_mapped_versions(self, cursor: Any, stored_events: Sequence[StoredEvent]) -> None:
        """An ``IntegrityError`` when an event would take a version the mapped rows hold
        (the library's primary key sees the log's own rows only)."""
        if not stored_events or self._partitions(cursor) is None:
            return
        lowest: dict[Any, int] = {}
        for e in stored_events:
            known = lowest.get(e.originator_id, e.originator_version)
            lowest[e.originator_id] = min(known, e.originator_version)
        cursor.execute(
            self._sql(
                "SELECT s.originator_id FROM {schema}.{streams} s"
                " JOIN unnest(%s::uuid[], %s::bigint[]) AS e(originator_id, version)"
                " ON s.originator_id = e.originator_id"
                " AND s.first_version + s.kept - 1 >= e.version LIMIT 1"
            ),
            (list(lowest), list(lowest.values())),
        )
        taken = cursor.fetchone()
        if taken is not None:
            msg = f"stream {taken['originator_id']}: a version its partitions' rows hold"
            raise IntegrityError(msg)


def table_exists(cursor: Any, schema: str, table: str) -> bool:
    """Whether ``table`` exists in ``schema``."""
    cursor.execute("SELECT to_regclass(%s) AS found", (f'"{schema}"."{table}"',))
    row = cursor.fetchone()
    return bool(row and row["found"] is not None)


def recorded_count(cursor: Any, schema: str) -> int | None:
    """The number of partitions recorded in ``schema``'s layout table (which exists), or
    None while it has none."""
    cursor.execute(sql.SQL("SELECT partitions FROM {schema}.{layout}").format(**names(schema)))
    row = cursor.fetchone()
    return None if row is None else int(row["partitions"])


def _notification(row: Any, position: int, version: int) -> Notification:
    return Notification(
        id=position,
        originator_id=row["originator_id"],
        originator_version=version,
        topic=row["topic"],
        state=bytes(row["state"]),
    )


def _is_partition_table(table: str) -> bool:
    head, _, tail = table.removeprefix("eventfold_p").partition("of")
    return table.startswith("eventfold_p") and head.isdigit() and tail.endswith("_events")


def _merged(
    own: Iterable[Any], mapped: Iterable[Any], key: Any, limit: int | None, reverse: bool = False
) -> list[Any]:
    merged = list(heapq.merge(own, mapped, key=key, reverse=reverse))
    return merged if limit is None else merged[:limit]


class MappedApplicationRecorder(MappedLog, PostgresApplicationRecorder):
    """The library's application recorder, reading a partitioned store's mapped rows."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._mapping_init()

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        both = self._mapped_notifications(start, limit, stop, topics, inclusive_of_start)
        if both is not None:
            return both
        own: Sequence[Notification] = super().select_notifications(
            start, limit, stop, topics, inclusive_of_start=inclusive_of_start
        )
        return own

    def max_notification_id(self) -> int | None:
        both = self._mapped_max()
        if both is not None:
            return both or None
        own: int | None = super().max_notification_id()
        return own

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        both = self._mapped_events(originator_id, gt, lte, desc, limit)
        if both is not None:
            return both
        own: Sequence[StoredEvent] = super().select_events(
            originator_id, gt=gt, lte=lte, desc=desc, limit=limit
        )
        return own

    def _insert_stored_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        self._lock_table(curs)
        self._notify_channel(curs)
        self._refuse_mapped_versions(curs, stored_events)
        PostgresAggregateRecorder._insert_stored_events(self, curs, stored_events, **kwargs)


class MappedProcessRecorder(MappedApplicationRecorder, PostgresProcessRecorder):
    """The library's process recorder, reading a partitioned store's mapped rows."""
