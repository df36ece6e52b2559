"""A large store: write N events, then reopen it and read it all, in fresh processes.

Reports, for eventfold's file store and eventsourcing.sqlite side by side, the
write rate, the time to reopen (the file store must not re-read its log), the
full scan rate and each process's peak memory (it must not grow with the log).
Every event has its own originator: the worst case for the index.
``make bench-scale`` (N = 2,000,000; about two minutes on 2 cores).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from uuid import uuid4

from common import peak_rss_mb
from eventsourcing.persistence import ApplicationRecorder, InfrastructureFactory, StoredEvent
from rich.console import Console
from rich.table import Table

STATE = b'{"category":"groceries","value":"12.50","id":"evt-000001"}'


def env_for(kind: str, directory: str) -> dict[str, str]:
    if kind == "file":
        return {
            "PERSISTENCE_MODULE": "eventfold.infra.filestore",
            "FILESTORE_PATH": os.path.join(directory, "filestore"),
        }
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": os.path.join(directory, "events.sqlite"),
    }


def child(kind: str, directory: str, phase: str, events: int) -> None:
    started = time.perf_counter()
    factory = InfrastructureFactory.construct(env_for(kind, directory))
    recorder = factory.application_recorder()
    assert isinstance(recorder, ApplicationRecorder)
    result: dict[str, float] = {}
    if phase == "write":
        for _ in range(events // 1000):
            recorder.insert_events(
                [StoredEvent(uuid4(), 1, "Recorded", STATE) for _ in range(1000)]
            )
        result["rate"] = events / (time.perf_counter() - started)
    else:
        recorder.max_notification_id()
        result["open"] = time.perf_counter() - started
        started, count, start = time.perf_counter(), 0, 0
        while page := recorder.select_notifications(start, 1000, inclusive_of_start=False):
            count += len(page)
            start = page[-1].id
        assert count == events, count
        result["rate"] = count / (time.perf_counter() - started)
    factory.close()
    result["rss_mb"] = peak_rss_mb()
    print(json.dumps(result))


def run(kind: str, directory: str, phase: str, events: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, directory, phase, str(events)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(json.loads(out.splitlines()[-1]))


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
        return
    events = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000
    table = Table(title=f"{events:,} events, one originator each ({os.cpu_count()} cores)")
    table.add_column("measure")
    table.add_column("eventfold file store", justify="right")
    table.add_column("eventsourcing.sqlite", justify="right")
    rows: dict[str, list[str]] = {
        k: []
        for k in (
            "write, 1,000 events/call (events/s)",
            "writer peak RSS (MB)",
            "reopen (s)",
            "full scan, pages of 1,000 (events/s)",
            "reader peak RSS (MB)",
        )
    }
    for kind in ("file", "sqlite"):
        directory = tempfile.mkdtemp(prefix=f"eventfold-scale-{kind}-")
        try:
            w = run(kind, directory, "write", events)
            r = run(kind, directory, "read", events)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        values = [
            f"{w['rate']:,.0f}",
            f"{w['rss_mb']:.0f}",
            f"{r['open']:.3f}",
            f"{r['rate']:,.0f}",
            f"{r['rss_mb']:.0f}",
        ]
        for key, value in zip(rows, values, strict=True):
            rows[key].append(value)
    for key, values in rows.items():
        table.add_row(key, *values)
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
