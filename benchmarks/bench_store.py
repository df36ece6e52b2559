"""Insert and select throughput: eventfold's file store beside the library's peers.

Runs the same workload on eventfold.infra.filestore (durable, fsync per call),
eventsourcing.sqlite (a durable file database) and eventsourcing.popo (memory),
in one run, and prints one table. ``make bench``; ``--batches`` scales it.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from uuid import UUID, uuid4

from eventsourcing.persistence import ApplicationRecorder, InfrastructureFactory, StoredEvent
from rich.console import Console
from rich.table import Table

STATE = b'{"category":"groceries","value":"12.50","id":"evt-000001"}'


def factory_for(kind: str, directory: str) -> InfrastructureFactory:
    env = {
        "file": {
            "PERSISTENCE_MODULE": "eventfold.infra.filestore",
            "FILESTORE_PATH": os.path.join(directory, "filestore"),
        },
        "sqlite": {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": os.path.join(directory, "events.sqlite"),
        },
        "popo": {"PERSISTENCE_MODULE": "eventsourcing.popo"},
    }[kind]
    return InfrastructureFactory.construct(env)


def timed(run: Callable[[], int]) -> float:
    started = time.perf_counter()
    count = run()
    return count / (time.perf_counter() - started)


def bench(kind: str, singles: int, batches: int) -> dict[str, float]:
    directory = tempfile.mkdtemp(prefix=f"eventfold-bench-{kind}-")
    try:
        factory = factory_for(kind, directory)
        recorder = factory.application_recorder()
        assert isinstance(recorder, ApplicationRecorder)
        results: dict[str, float] = {}

        def single_inserts() -> int:
            for _ in range(singles):
                recorder.insert_events([StoredEvent(uuid4(), 1, "Recorded", STATE)])
            return singles

        originators: list[UUID] = []

        def batch_inserts() -> int:
            for _ in range(batches):
                batch = []
                for _ in range(10):
                    originator = uuid4()
                    originators.append(originator)
                    batch += [StoredEvent(originator, v, "Recorded", STATE) for v in range(100)]
                recorder.insert_events(batch)
            return batches * 1000

        def select_all() -> int:
            count, start = 0, 0
            while True:
                page = recorder.select_notifications(start, 500, inclusive_of_start=False)
                if not page:
                    return count
                count += len(page)
                start = page[-1].id

        sample = random.Random(1)

        def select_streams() -> int:
            count = 0
            for originator in sample.sample(originators, min(300, len(originators))):
                count += len(recorder.select_events(originator))
            return count

        results["insert 1 event/call"] = timed(single_inserts)
        results["insert 1,000 events/call"] = timed(batch_inserts)
        results["select_notifications (pages of 500)"] = timed(select_all)
        results["select_events (streams of 100)"] = timed(select_streams)
        factory.close()
        if kind != "popo":
            started = time.perf_counter()
            reopened = factory_for(kind, directory)
            recorder = reopened.application_recorder()
            assert isinstance(recorder, ApplicationRecorder)
            recorder.max_notification_id()
            results["reopen (seconds)"] = time.perf_counter() - started
            reopened.close()
        return results
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--singles", type=int, default=2000, help="single-event calls")
    parser.add_argument("--batches", type=int, default=100, help="calls of 1,000 events")
    args = parser.parse_args()
    kinds = ["file", "sqlite", "popo"]
    results = {kind: bench(kind, args.singles, args.batches) for kind in kinds}
    table = Table(
        title=f"events per second ({os.cpu_count()} cores; "
        f"{args.singles} single inserts, {args.batches} x 1,000-event batches)"
    )
    table.add_column("workload")
    for label in ("eventfold file store", "eventsourcing.sqlite", "eventsourcing.popo"):
        table.add_column(label, justify="right")
    for workload in results["file"]:
        row = [workload]
        for kind in kinds:
            value = results[kind].get(workload)
            if value is None:
                row.append("-")
            elif workload.endswith("(seconds)"):
                row.append(f"{value:.3f}")
            else:
                row.append(f"{value:,.0f}")
        table.add_row(*row)
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
