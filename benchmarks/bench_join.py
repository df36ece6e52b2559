"""A partitioned ingest's join step: as it maps rows now, beside the copy it replaced.

Tables of the shapes a partitioned store has (the library's events table for the
log and for one partition, the partition's ``event_id``, ``eventfold_event_ids``
and the mapping's tables of ``infra/backends/mapped.py``) are made in a schema of
their own and filled with ``generate_series``: a log of ``--log`` events with
their ids, and a partition's table of the next ``--rows`` (20 streams), whose
ids the partition claimed after committing them. Then, each three times in a
transaction rolled back (medians):

- the join step as ``infra/backends/joins.py`` runs it, serially: the claims
  read (which rows repeat an id), the rows mapped into the log's ids (steps,
  streams): no row copied, no id claimed;
- the partition's claims of the same rows (``partitions.CLAIM``), which each
  partition makes after its commits, in parallel with the others;
- the join step of the releases that copied, serially: the repeats found, every
  row copied to the log renumbered, the ids claimed (the peer).

    make bench-join            # starts the throwaway server of .ci/postgres-up
    python benchmarks/bench_join.py [--log N] [--rows N]   # POSTGRES_* set
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from eventfold.infra.backends.joins import StepMap
from eventfold.infra.backends.mapped import TABLES, names, partition_table
from eventfold.infra.backends.partitions import CLAIM
from eventfold.infra.backends.postgres import connection_settings

SCHEMA = "eventfold_bench_join"
PART = partition_table(1, 1)  # the one partition's table, as the join names it
STREAMS = 20
RUNS = 3
STATE = (  # a Recorded state of about 295 bytes, as ingest writes them
    "convert_to(json_build_object('event_id', 'evt-' || lpad(g::text, 9, '0'),"
    " 'category', 'cat-' || (g % 20), 'value', (g % 1000) || '.25',"
    " 'occurred_at', '2026-01-01T00:00:00+00:00', 'source', '/data/source-file-0000.jsonl',"
    " 'line', g, 'offset', g * 95, 'originator_topic', 'eventfold.domain.model:Category',"
    " 'timestamp', '2026-12-03T07:00:00+00:00')::text, 'UTF8')"
)
STREAM = f"md5('cat-' || (g % {STREAMS}))::uuid"
TOPIC = "'eventfold.domain.model:Category.Recorded'"
REPEATS = f"""CREATE TEMP TABLE eventfold_joining ON COMMIT DROP AS
 SELECT r.*, r.event_id IS NOT NULL AND (r.staged > MIN(r.staged) OVER (PARTITION BY r.event_id)
 OR EXISTS (SELECT 1 FROM {SCHEMA}.ids i WHERE i.event_id = r.event_id)) AS repeat
 FROM (SELECT notification_id AS staged, originator_id, originator_version, event_id
 FROM {SCHEMA}.{PART} WHERE notification_id > %s AND notification_id <= %s) r"""
COPY = f"""WITH base AS MATERIALIZED (SELECT s.originator_id, COALESCE(m.version, 0) AS version
 FROM (SELECT DISTINCT originator_id FROM eventfold_joining) s
 LEFT JOIN LATERAL (SELECT MAX(l.originator_version) AS version FROM {SCHEMA}.log l
 WHERE l.originator_id = s.originator_id) m ON true),
 kept AS MATERIALIZED (SELECT j.staged, j.originator_id, j.event_id, b.version AS base
 FROM eventfold_joining j JOIN base b USING (originator_id)
 WHERE NOT j.repeat AND NOT (j.originator_version = 1 AND b.version > 0)),
 numbered AS MATERIALIZED (SELECT staged, originator_id, event_id,
 base + row_number() OVER (PARTITION BY originator_id ORDER BY staged) AS version FROM kept),
 copied AS (INSERT INTO {SCHEMA}.log (originator_id, originator_version, topic, state)
 SELECT n.originator_id, n.version, p.topic, p.state FROM numbered n JOIN {SCHEMA}.{PART} p
 ON p.notification_id = n.staged AND p.notification_id > %s AND p.notification_id <= %s
 ORDER BY n.staged RETURNING 1)
 INSERT INTO {SCHEMA}.ids (event_id, originator_id, originator_version)
 SELECT event_id, originator_id, version FROM numbered WHERE event_id IS NOT NULL"""


def make_tables(conn: psycopg.Connection[Any], log: int, rows: int) -> None:
    """The log of ``log`` events and ids, and a partition's table of the next ``rows``."""
    conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    conn.execute(f"CREATE SCHEMA {SCHEMA}")
    for table, extra in (("log", ""), (PART, ", event_id text")):
        conn.execute(
            f"CREATE TABLE {SCHEMA}.{table} (notification_id bigserial,"
            " originator_id uuid NOT NULL, originator_version bigint NOT NULL,"
            f" topic text NOT NULL, state bytea{extra},"
            " PRIMARY KEY (originator_id, originator_version))"
        )
        conn.execute(f"CREATE UNIQUE INDEX ON {SCHEMA}.{table} (notification_id)")
    conn.execute(
        f"CREATE TABLE {SCHEMA}.ids (event_id text PRIMARY KEY,"
        " originator_id uuid NOT NULL, originator_version bigint, notification_id bigint,"
        " ordinal bigint, partition integer, staged bigint)"
    )
    for text in TABLES:
        conn.execute(sql.SQL(text).format(**names(SCHEMA)))
    conn.execute(
        f"INSERT INTO {SCHEMA}.log (originator_id, originator_version, topic, state)"
        f" SELECT {STREAM}, g / {STREAMS} + 1, {TOPIC}, {STATE}"
        f" FROM generate_series(1, {log}) g ORDER BY g"
    )
    conn.execute(
        f"INSERT INTO {SCHEMA}.ids SELECT 'evt-' || lpad(g::text, 9, '0'), {STREAM},"
        f" g / {STREAMS} + 1 FROM generate_series(1, {log}) g"
    )
    conn.execute(
        f"INSERT INTO {SCHEMA}.{PART} (originator_id, originator_version, topic, state, event_id)"
        f" SELECT {STREAM}, (g - {log}) / {STREAMS} + 1, {TOPIC}, {STATE},"
        f" 'evt-' || lpad(g::text, 9, '0') FROM generate_series({log + 1}, {log + rows}) g"
        " ORDER BY g"
    )
    conn.execute(
        f"INSERT INTO {SCHEMA}.ids (event_id, originator_id, ordinal, partition, staged)"
        f" SELECT event_id, originator_id, 2, 1, notification_id FROM {SCHEMA}.{PART}"
    )
    for table in ("log", "ids", PART):
        conn.execute(f"VACUUM ANALYZE {SCHEMA}.{table}")


class Log:
    """The log's table, as ``joins.StepMap`` asks it of the library's recorder."""

    events_table_name = "log"

    def _lock_table(self, cursor: Any) -> None:
        cursor.execute(f"LOCK TABLE {SCHEMA}.log IN EXCLUSIVE MODE")

    def _notify_channel(self, cursor: Any) -> None:
        cursor.execute("NOTIFY eventfold_bench_join")


def statements(*texts: str) -> Callable[[Any, int], None]:
    """A step that runs ``texts`` over the partition's first ``rows`` rows."""

    def run(cursor: Any, rows: int) -> None:
        for text in texts:
            cursor.execute(text, (0, rows))

    return run


def mapped(cursor: Any, rows: int) -> None:
    """The join step as ``joins.StepMap`` runs it (the data has no repeats)."""
    StepMap(Log(), SCHEMA, 1, "ids").map(cursor, (2, 1), 0, rows, lambda repeats, version: [])


def claims(cursor: Any, rows: int) -> None:
    """The partition's claims of its rows, as it makes them after its commits."""
    statement = sql.SQL(CLAIM).format(**names(SCHEMA, ids="ids", table=PART))
    cursor.execute(statement, {"ordinal": 2, "partition": 1, "low": 0, "high": rows})


def unclaimed(cursor: Any, rows: int) -> None:
    """The partition's claims taken away (a step's setup, not timed)."""
    cursor.execute(f"DELETE FROM {SCHEMA}.ids WHERE partition = 1")


def timed(
    conn: psycopg.Connection[Any],
    step: Callable[[Any, int], None],
    rows: int,
    setup: Callable[[Any, int], None] | None = None,
) -> list[float]:
    """Seconds of ``step`` over the partition's rows (after ``setup``, not timed), ``RUNS``
    times, rolled back."""
    runs = []
    for _ in range(RUNS):
        with conn.transaction(force_rollback=True), conn.cursor(row_factory=dict_row) as cursor:
            if setup is not None:
                setup(cursor, rows)
            started = time.perf_counter()
            step(cursor, rows)
            runs.append(time.perf_counter() - started)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", type=int, default=875_000, help="events in the log")
    parser.add_argument("--rows", type=int, default=125_000, help="rows of the partition")
    args = parser.parse_args()
    with psycopg.connect(**connection_settings(os.environ), autocommit=True) as conn:
        started = time.perf_counter()
        make_tables(conn, args.log, args.rows)
        print(f"tables made in {time.perf_counter() - started:.1f} s")
        try:
            for name, step, setup in (
                ("join step, mapped (claims read, steps and streams)", mapped, None),
                ("a partition's claims of its rows (after its commits)", claims, unclaimed),
                (
                    "join step, copied (repeats, rows copied to the log, ids claimed)",
                    statements(REPEATS, COPY),
                    unclaimed,
                ),
            ):
                runs = timed(conn, step, args.rows, setup)
                median = statistics.median(runs)
                each = ", ".join(f"{run:.2f}" for run in runs)
                print(
                    f"{name}: {median:.2f} s for {args.rows:,} rows,"
                    f" {median / args.rows * 1e6:.1f} µs a row (runs {each})"
                )
        finally:
            conn.execute(f"DROP SCHEMA {SCHEMA} CASCADE")


if __name__ == "__main__":
    main()
