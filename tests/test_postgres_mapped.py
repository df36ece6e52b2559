"""A partitioned store's join maps partitions' rows into the log and copies none: every
reader, the library's own recorders included, sees the log as if each row had been
copied (``infra/backends/mapped.py``). These tests need a PostgreSQL server."""

from __future__ import annotations

import gzip
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest
from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError, StoredEvent
from psycopg import sql
from test_postgres_partitions import (
    cli,
    figures,
    finished,
    killed,
    one_store_of,
    start,
    write_files,
)

from eventfold.application.app import Eventfold as EventfoldApp
from eventfold.application.app import open_app
from eventfold.application.proving.reference import expected_from_sources
from eventfold.application.recorded import RECORDED_TOPIC
from eventfold.cli import main
from eventfold.domain.model import Category
from eventfold.infra.backends.mapped import names
from eventfold.infra.backends.partitions import CLAIM, PartitionBackend
from eventfold.infra.backends.postgres import connection_settings
from ingesthelpers import store_totals
from processes import HANG, armed, wait_until

OPENED = "eventfold.domain.model:Category.Opened"
MAPPED = "eventfold.infra.backends.mapped:MappedApplicationRecorder"
CATEGORIES = [f"c{n}" for n in range(13)] + [f"other{n}" for n in range(3)]


class Eventfold(Application[Any]):
    """A plain library application over the store's log (its name gives the table)."""


def ingested(tmp_path: Path, count: int) -> list[Path]:
    """Six files ingested by ``count`` partitions, run together; the files."""
    paths = write_files(tmp_path, files=6, lines=120, seed=11)
    runs = [start(paths, tmp_path / f"m{k}", k, count) for k in range(1, count + 1)]
    for run in runs:
        finished(run)
    return paths


def log_rows(env: dict[str, str]) -> list[tuple[str, int]]:
    """The topics and notification ids of the log table's own rows."""
    schema = env["POSTGRES_SCHEMA"]
    with psycopg.connect(**connection_settings(os.environ)) as conn:
        rows = conn.execute(
            f'SELECT topic, notification_id FROM "{schema}".eventfold_events'
        ).fetchall()
    return [(str(topic), int(nid)) for topic, nid in rows]


def every_notification(recorder: Any, page: int, **options: Any) -> list[Any]:
    found: list[Any] = []
    start = 0
    while batch := recorder.select_notifications(start, page, inclusive_of_start=False, **options):
        found.extend(batch)
        start = batch[-1].id
    return found


def stream_ids(app: Any, name: str) -> list[tuple[int, str, str | None]]:
    """A category's stream: (version, topic, event id) of each event, read by the library."""
    events = app.recorder.select_events(Category.create_id(name))
    return [
        (e.originator_version, e.topic, getattr(app.mapper.to_domain_event(e), "event_id", None))
        for e in events
    ]


def test_the_join_maps_rows_and_every_reader_sees_one_log(
    postgres: dict[str, str], tmp_path: Path
) -> None:
    paths = ingested(tmp_path, 2)
    own = log_rows(postgres)
    app = open_app(str(tmp_path / "m1"))
    try:
        everything = every_notification(app.recorder, 1000)
        recorded = [n for n in everything if n.topic == RECORDED_TOPIC]
        assert len(recorded) > 300 and not any(t == RECORDED_TOPIC for t, _ in own)
        assert {t.rsplit(".", 1)[-1] for t, _ in own} <= {"Conflicted", "Recounted"}
        assert app.recorder.max_notification_id() >= everything[-1].id
        assert app.backend.event_count() == len(everything)
        ids = [n.id for n in everything]
        assert ids == sorted(set(ids))
        for page in (1, 7, 333):  # any paging reads the same
            assert [n.id for n in every_notification(app.recorder, page)] == ids
        assert [n.id for n in every_notification(app.recorder, 50, topics=[RECORDED_TOPIC])] == [
            n.id for n in recorded
        ]
        middle = ids[len(ids) // 2]
        window = app.recorder.select_notifications(middle, 40, stop=ids[len(ids) // 2 + 30])
        assert [n.id for n in window] == ids[len(ids) // 2 : len(ids) // 2 + 31]
        by_stream: dict[Any, list[tuple[int, bytes]]] = {}
        for n in everything:  # a notification's version is its event's in its stream
            by_stream.setdefault(n.originator_id, []).append((n.originator_version, n.state))
        for originator_id, seen in by_stream.items():
            events = app.recorder.select_events(originator_id)
            assert seen == [(e.originator_version, e.state) for e in events]
        for name in CATEGORIES:
            stream = app.recorder.select_events(Category.create_id(name))
            versions = [e.originator_version for e in stream]
            assert versions == list(range(1, len(versions) + 1)), name
            by_version = {e.originator_version: e for e in stream}
            for gt, lte, desc, limit in ((None, None, True, 1), (3, 9, False, 4), (2, 8, True, 3)):
                picked = app.recorder.select_events(
                    Category.create_id(name), gt=gt, lte=lte, desc=desc, limit=limit
                )
                wanted = [
                    v for v in versions if (gt is None or v > gt) and (lte is None or v <= lte)
                ]
                wanted = (wanted[::-1] if desc else wanted)[:limit]
                assert [e.originator_version for e in picked] == wanted, (name, gt, lte, desc)
                assert all(e.state == by_version[e.originator_version].state for e in picked)
            assert len(versions) > 1 or name.startswith("other"), name
    finally:
        app.close()
    files = tmp_path / "one-file-store"
    names = [str(p) for p in paths]
    assert main(["ingest", *names, "--store", str(files), "--backend", "file", "--quiet"]) == 0
    one = open_app(str(files), "file")
    library = Eventfold(env=postgres | {"APPLICATION_RECORDER_TOPIC": MAPPED})
    try:
        for name in CATEGORIES:  # the same streams, event for event, read by a plain library app
            expected = stream_ids(one, name)
            if not expected:  # opened by a partition for an id another partition held first
                assert [t for _, t, _ in stream_ids(library, name)] in ([], [OPENED]), name
                continue
            assert stream_ids(library, name) == expected, name
            aggregate: Any = library.repository.get(Category.create_id(name))
            assert aggregate.version == len(expected)
    finally:
        one.close()
        library.close()


def test_an_append_at_a_version_the_mapped_rows_hold_is_refused(
    postgres: dict[str, str], tmp_path: Path
) -> None:
    ingested(tmp_path, 2)
    app = open_app(str(tmp_path / "m1"))
    try:
        stream = Category.create_id("c1")
        last = app.recorder.select_events(stream, desc=True, limit=1)[0]
        stale = StoredEvent(stream, last.originator_version, last.topic, last.state)
        with pytest.raises(IntegrityError, match="a version its partitions' rows hold"):
            app.recorder.insert_events([stale])
        after = StoredEvent(stream, last.originator_version + 1, last.topic, last.state)
        positions = app.recorder.insert_events([after])
        assert positions is not None and len(positions) == 1
        assert positions[0] == app.recorder.max_notification_id()
        assert app.recorder.select_events(stream, desc=True, limit=1)[0] == after
    finally:
        app.close()


def test_event_ids_that_copy_s_text_format_escapes_are_kept_as_they_are(
    postgres: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = ["tab\there", "back\\slash", "new\nline", "cr\rhere", "\\N", "plain"]
    early, late = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    early.write_text(
        "".join(json.dumps({"id": i, "category": "c", "value": 1}) + "\n" for i in ids)
    )
    again = [{"id": i, "category": "c", "value": 1} for i in reversed(ids)] + [
        {"id": "tab\there", "category": "c", "value": 2}
    ]
    late.write_text("".join(json.dumps(line) + "\n" for line in again))
    paths = [early, late]
    for k in (1, 2):
        finished(start(paths, tmp_path / f"m{k}", k, 2))
    schema = postgres["POSTGRES_SCHEMA"]
    with psycopg.connect(**connection_settings(os.environ)) as conn:
        kept = {
            table: sorted(str(r[0]) for r in conn.execute(
                f'SELECT event_id FROM "{schema}".{table} WHERE event_id IS NOT NULL'
            ).fetchall())
            for table in ("eventfold_p1of2_events", "eventfold_p2of2_events")
        }  # fmt: skip
    assert sorted(kept.values()) == [sorted(ids), sorted([*ids, "tab\there"])]
    assert figures(capsys, f"--store {tmp_path / 'm1'}") == one_store_of(paths, tmp_path, capsys)
    _, sources = cli(capsys, f"sources --store {tmp_path / 'm1'}")
    assert sources["totals"]["duplicates"] == len(ids) and sources["totals"]["conflicts"] == 1


# tests/fixtures/pg-copied-join: a partitioned store written by the release whose joins
# copied events into the log (ingest of a.jsonl and b.jsonl, then at /tmp/efx, with
# --partition 1/2 and then 2/2, then rebuild), dumped with pg_dump --inserts (its
# schema, eventfold_fixture, renamed on restore); and the checksum that release computed.
COPIED = Path(__file__).parent / "fixtures" / "pg-copied-join"
COPIED_CHECKSUM = "3d4ed73f185d071da92bc410d572df08f1aa1cc91f2a7417078ccde7abb6caf2"


def test_a_store_whose_joins_copied_events_opens_and_goes_on_mapping(
    postgres: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    schema = postgres["POSTGRES_SCHEMA"]
    dump = gzip.decompress((COPIED / "schema.sql.gz").read_bytes()).decode()
    dump = dump.replace("CREATE SCHEMA eventfold_fixture;", "")
    with psycopg.connect(**connection_settings(os.environ), autocommit=True) as conn:
        conn.execute(dump.replace("eventfold_fixture", schema).encode())
    store = f"--store {tmp_path / 'm1'}"
    _, rebuilt = cli(capsys, f"rebuild {store}")
    assert rebuilt["checksum"] == COPIED_CHECKSUM
    later = tmp_path / "c.jsonl"  # ids of both earlier files again (their events copied)
    later.write_text(
        '{"id": "e3", "category": "c0", "value": 3.5, "occurred_at": "2026-11-04T03:00:00Z"}\n'
        '{"id": "e21", "category": "c0", "value": 7}\n'
        '{"id": "e100", "category": "c1", "value": 2}\n'
        '{"id": "e101", "category": "c9", "value": 4}\n'
    )
    for k in (1, 2):
        finished(start([later], tmp_path / f"m{k}", k, 2))
    paths = [COPIED / "a.jsonl", COPIED / "b.jsonl", later]
    _, sources = cli(capsys, f"sources {store}")
    counts = {Path(s["path"]).name: (s["ingested"], s["duplicates"], s["conflicts"])
              for s in sources["sources"]}  # fmt: skip
    assert counts == {"a.jsonl": (20, 0, 0), "b.jsonl": (5, 5, 1), "c.jsonl": (2, 1, 1)}
    app = open_app(str(tmp_path / "m1"))
    try:
        assert app.backend.event_count() == len(every_notification(app.recorder, 100))
        assert app.recorder.mapped_count() > 0  # type: ignore[attr-defined]
        expected = expected_from_sources([str(p) for p in paths])
        assert store_totals(app) == {n: (c, t) for n, (c, t) in expected.totals.items()}
    finally:
        app.close()
    one = tmp_path / "one-file-store"
    names = [str(p) for p in paths]
    assert main(["ingest", *names, "--store", str(one), "--backend", "file", "--quiet"]) == 0
    capsys.readouterr()
    _, mapped = cli(capsys, f"rebuild {store}")
    _, single = cli(capsys, f"rebuild --store {one} --backend file")
    assert mapped["checksum"] == single["checksum"]


def test_rows_no_partition_claimed_are_claimed_by_the_join_in_their_order(
    postgres: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rows written without claims (by a release whose partitions did not claim) wait for
    the join, which claims them in the files' order: the store is still one ingest's."""
    paths = write_files(tmp_path, files=4, lines=80, seed=21)
    second = finished(start(paths, tmp_path / "m2", 2, 2))
    assert second["join"]["waiting_on"] == "1/2"  # its files wait for partition 1's first
    schema = postgres["POSTGRES_SCHEMA"]
    with psycopg.connect(**connection_settings(os.environ), autocommit=True) as conn:
        firsts = conn.execute(  # each id's first row, as partition 2 claimed them
            f'SELECT event_id, min(notification_id) FROM "{schema}".eventfold_p2of2_events'
            " WHERE event_id IS NOT NULL GROUP BY event_id ORDER BY event_id"
        ).fetchall()
        claimed = conn.execute(
            f'SELECT event_id, staged FROM "{schema}".eventfold_event_ids'
            " WHERE partition = 2 ORDER BY event_id"
        ).fetchall()
        assert claimed == firsts and len(firsts) > 0
        taken = conn.execute(f'DELETE FROM "{schema}".eventfold_event_ids WHERE partition = 2')
        assert taken.rowcount == len(firsts)
    finished(start(paths, tmp_path / "m1", 1, 2))
    assert figures(capsys, f"--store {tmp_path / 'm1'}") == one_store_of(paths, tmp_path, capsys)


def _claims_of_partition_2_made_latest_first(schema: str) -> int:
    """Partition 2's claims replaced by the ones it would leave if each id's later rows
    of a file had been claimed before its earlier one (their claims lost with a killed
    process); how many ids are then claimed by a row that is not their first."""
    tables = f'"{schema}".eventfold_p2of2_events p'
    with psycopg.connect(**connection_settings(os.environ), autocommit=True) as conn:
        conn.execute(f'DELETE FROM "{schema}".eventfold_event_ids WHERE partition = 2')
        conn.execute(
            f'INSERT INTO "{schema}".eventfold_event_ids'
            " (event_id, originator_id, ordinal, partition, staged)"
            " SELECT DISTINCT ON (p.event_id) p.event_id, p.originator_id, f.ordinal, 2,"
            f" p.notification_id FROM {tables} JOIN LATERAL (SELECT ordinal"
            f' FROM "{schema}".eventfold_partition_files WHERE partition = 2'
            " AND staged_end >= p.notification_id ORDER BY ordinal LIMIT 1) f ON true"
            " WHERE p.event_id IS NOT NULL"
            " ORDER BY p.event_id, f.ordinal, p.notification_id DESC"
        )
        row = conn.execute(
            f'SELECT count(*) FROM "{schema}".eventfold_event_ids i WHERE partition = 2'
            f" AND EXISTS (SELECT 1 FROM {tables} WHERE p.event_id = i.event_id"
            " AND p.notification_id < i.staged)"
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_claims_made_out_of_order_or_meanwhile_still_keep_each_id_s_first_row(
    postgres: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A partition claims its commits' ids after them, so the join may meet a file whose
    later rows' claims were made and earlier rows' were not (lost with a killed
    process), and a partition's claim still open on rows the join is claiming. Each id
    is still its first row's: the store is one ingest's."""
    schema = postgres["POSTGRES_SCHEMA"]
    paths = write_files(tmp_path, files=4, lines=160, seed=5)
    second = finished(start(paths, tmp_path / "m2", 2, 2))
    assert second["join"]["waiting_on"] == "1/2"
    assert _claims_of_partition_2_made_latest_first(schema) > 0  # ids repeated in a file
    point = "ingest.after-commit"
    killed(start(paths, tmp_path / "m1", 1, 2, armed(point, 2)), point, 2)
    claim = sql.SQL(CLAIM).format(
        **names(schema, ids="eventfold_event_ids", table="eventfold_p1of2_events")
    )
    with psycopg.connect(**connection_settings(os.environ)) as holder:
        holder.execute(f'DELETE FROM "{schema}".eventfold_event_ids WHERE partition = 1')
        holder.commit()
        high = holder.execute(
            f'SELECT max(notification_id) FROM "{schema}".eventfold_p1of2_events'
        ).fetchone()
        assert high is not None and high[0] > 0
        holder.execute(claim, {"ordinal": 1, "partition": 1, "low": 0, "high": high[0]})
        joining = start(paths, tmp_path / "m2", 2, 2)  # joins partition 1's rows so far
        wait_until(lambda: _waiting_on_a_claim(holder, schema), "the join waits on the claim")
        holder.commit()
    assert finished(joining)["join"]["events"] > 0
    finished(start(paths, tmp_path / "m1", 1, 2))
    assert figures(capsys, f"--store {tmp_path / 'm1'}") == one_store_of(paths, tmp_path, capsys)


def _waiting_on_a_claim(conn: psycopg.Connection[Any], schema: str) -> bool:
    """Another session's statement on the claims waits for this one's transaction."""
    with psycopg.connect(**connection_settings(os.environ), autocommit=True) as other:
        mine = conn.info.backend_pid
        row = other.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))"
            " AND query LIKE %s",
            (mine, "%eventfold_event_ids%"),
        ).fetchone()
    return row is not None and row[0] > 0


def test_a_partition_s_claims_of_two_files_cannot_deadlock_with_another_claim(
    postgres: dict[str, str], tmp_path: Path
) -> None:
    """A partition claims its commits of two files a transaction each. A session that
    holds a claim of an id of the second file and then claims one of the first waits on
    nothing; within one transaction the first file's ids would stay locked while the
    second's waited, and the two would deadlock."""
    schema = postgres["POSTGRES_SCHEMA"]
    paths = write_files(tmp_path, files=4, lines=80, seed=3)
    finished(start(paths, tmp_path / "m2", 2, 2))  # files 2 and 4, waiting on file 1
    ids, files = f'"{schema}".eventfold_event_ids', f'"{schema}".eventfold_partition_files'
    table = f'"{schema}".eventfold_p2of2_events'
    only_in = (
        f"SELECT event_id, originator_id FROM {table} p WHERE notification_id > %s"
        f" AND notification_id <= %s AND event_id IS NOT NULL AND NOT EXISTS (SELECT 1"
        f" FROM {table} q WHERE q.event_id = p.event_id AND NOT (q.notification_id > %s"
        " AND q.notification_id <= %s)) ORDER BY event_id LIMIT 1"
    )
    hold = (
        f"INSERT INTO {ids} (event_id, originator_id, ordinal, partition, staged)"
        " VALUES (%s, %s, 99, 1, 1) ON CONFLICT (event_id) DO NOTHING"
    )
    name = "Eventfold_p2of2"
    app = open_app(
        str(tmp_path / "m2"),
        "postgres",
        writes="ingest",
        application=type(name, (EventfoldApp,), {"name": name}),
    )
    claims = ThreadPoolExecutor(1)
    with psycopg.connect(**connection_settings(os.environ)) as holder:
        try:
            backend = PartitionBackend(app.backend, RECORDED_TOPIC, 2)  # type: ignore[arg-type]
            holder.execute(f"DELETE FROM {ids} WHERE partition = 2")
            (first, end), (second, last) = holder.execute(
                f"SELECT ordinal, staged_end FROM {files} WHERE partition = 2 ORDER BY ordinal"
            ).fetchall()
            x = holder.execute(only_in, (0, end, 0, end)).fetchone()  # of file 2 alone
            y = holder.execute(only_in, (end, last, end, last)).fetchone()  # of file 4 alone
            assert x is not None and y is not None
            holder.commit()
            holder.execute(hold, y)
            backend.committed(first, 0, end)
            backend.committed(second, end, last)
            claimed = claims.submit(backend.claim_committed)
            wait_until(lambda: _waiting_on_a_claim(holder, schema), "the claims wait on y")
            holder.execute(hold, x)  # file 2's claims have committed: nothing to wait for
            holder.commit()
            assert claimed.result(timeout=HANG) == last
        finally:
            claims.shutdown()
            app.close()
        rows = holder.execute(
            f"SELECT event_id, ordinal FROM {ids} WHERE event_id IN (%s, %s)", (x[0], y[0])
        ).fetchall()
    assert dict(rows) == {x[0]: first, y[0]: second}  # y taken over from the held claim
