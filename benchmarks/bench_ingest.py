"""Durable ingest: eventfold beside the plain eventsourcing way, on the same source.

The peer is what the library's documentation leads to: one ``Category``
aggregate per category (eventfold's own domain model), each line parsed with
``json.loads(parse_float=Decimal)``, ``Application.save()`` every 1,000 events,
on ``eventsourcing.sqlite`` (a durable file), with an in-memory set for dedup.
eventfold runs ``eventfold ingest``'s code path with its defaults (batches of
1,000 lines, fsync on every commit). Each side runs in a fresh process, so
peak RSS is its own.

    python benchmarks/bench_ingest.py [N ...]     # default 200000 (peer side by side,
                                                  # median of 3 interleaved runs each)
    python benchmarks/bench_ingest.py --scale N ...  # eventfold alone: 1M, 10M
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from common import peak_rss_mb
from eventsourcing.application import AggregateNotFoundError, Application
from rich.console import Console
from rich.table import Table

from eventfold.application.app import open_store
from eventfold.application.demo.sample import write_sample
from eventfold.application.ingest import Ingestor
from eventfold.domain.model import Category

REPEATS = 3  # runs of each side, interleaved; the median is reported


class PlainApp(Application[UUID]):
    name = "Plain"


def peer(source: str, directory: str) -> int:
    app = PlainApp(
        {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": os.path.join(directory, "peer.sqlite"),
        }
    )
    categories: dict[str, Category] = {}
    seen: set[str] = set()
    pending = 0
    offset = 0
    with open(source, "rb") as f:
        for line_number, raw in enumerate(f, 1):
            offset += len(raw)
            doc = json.loads(raw, parse_float=Decimal)
            event_id = str(doc["id"])
            if event_id in seen:
                continue
            seen.add(event_id)
            name = doc["category"]
            category = categories.get(name)
            if category is None:
                try:
                    category = app.repository.get(Category.create_id(name))
                except AggregateNotFoundError:
                    category = Category(name)
                categories[name] = category
            stamp = doc.get("timestamp")
            occurred_at = None if stamp is None else datetime.fromisoformat(stamp)
            category.record(
                event_id, name, Decimal(doc["value"]), occurred_at, source, line_number, offset
            )
            pending += 1
            if pending == 1000:
                app.save(*categories.values())
                pending = 0
    app.save(*categories.values())
    app.close()
    return len(seen)


def eventfold(source: str, directory: str) -> int:
    """What ``eventfold ingest`` does, closing included (the index is flushed then)."""
    store = os.path.join(directory, "store")
    app = open_store(store)
    try:
        with Ingestor(app, store) as ingestor:
            return ingestor.run(source).ingested
    finally:
        app.close()


def child(kind: str, source: str, directory: str) -> None:
    started = time.perf_counter()
    count = peer(source, directory) if kind == "peer" else eventfold(source, directory)
    elapsed = time.perf_counter() - started
    rss = peak_rss_mb()
    reader = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"events": count, "seconds": elapsed, "rss_mb": rss, "reader_rss_mb": reader}))


def measure(kind: str, source: str, keep: str | None = None) -> dict[str, Any]:
    """One side's ingest of ``source`` in a fresh process: events, seconds, peak RSS.

    The store (or the peer's database) is written under a temporary directory
    removed afterwards, or under ``keep``, left in place (eventfold's store is
    ``keep/store``; ingesting into an existing one adds to it).
    """
    directory = keep or tempfile.mkdtemp(prefix=f"eventfold-bench-{kind}-")
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--child", kind, source, directory],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        if keep is None:
            shutil.rmtree(directory, ignore_errors=True)
    return dict(json.loads(out.splitlines()[-1]))


def make_source(directory: str, lines: int) -> str:
    path = os.path.join(directory, f"source-{lines}.jsonl")
    with open(path, "wb") as f:
        write_sample(f, lines)
    return path


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["--child"]:
        child(args[1], args[2], args[3])
        return
    scale = args[:1] == ["--scale"]
    sizes = [int(a) for a in (args[1:] if scale else args)] or [200_000]
    kinds = ["eventfold"] if scale else ["eventfold", "peer"]
    cores = os.cpu_count()
    title = "durable ingest, eventfold alone"
    if not scale:
        title = f"durable ingest, side by side: median of {REPEATS} interleaved runs (range)"
    table = Table(title=f"{title} ({cores} cores)")
    table.add_column("events")
    for kind in kinds:
        label = "eventfold ingest" if kind == "eventfold" else "eventsourcing.sqlite, save/1,000"
        table.add_column(f"{label}\nevents/s", justify="right")
        table.add_column("peak RSS MB", justify="right")
        if kind == "eventfold":
            table.add_column("reader process\npeak RSS MB", justify="right")
    if not scale:
        table.add_column("speed-up", justify="right")
    work = tempfile.mkdtemp(prefix="eventfold-bench-source-")
    repeats = 1 if scale else REPEATS
    try:
        for size in sizes:
            source = make_source(work, size)
            row = [f"{size:,}"]
            runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
            for _ in range(repeats):  # interleaved, so that load on the machine hits both
                for kind in kinds:
                    result = measure(kind, source)
                    assert result["events"] == size, result
                    runs[kind].append(result)
            rates = []
            for kind in kinds:
                seconds = sorted(r["seconds"] for r in runs[kind])
                rates.append(size / statistics.median(seconds))
                rate = f"{rates[-1]:,.0f}"
                if repeats > 1:
                    rate += f"\n({size / seconds[-1]:,.0f}-{size / seconds[0]:,.0f})"
                row += [rate, f"{max(r['rss_mb'] for r in runs[kind]):.0f}"]
                if kind == "eventfold":
                    row.append(f"{max(r['reader_rss_mb'] for r in runs[kind]):.0f}")
            if not scale:
                row.append(f"{rates[0] / rates[1]:.1f}x")
            table.add_row(*row)
            os.unlink(source)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
