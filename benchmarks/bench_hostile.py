"""Ingest under hostile but legal input: all duplicates, and resuming into a large store.

1. **Duplicates**: a store holding N generated events takes a renamed copy of its
   source (every id already recorded) beside N new ids, each in a fresh process
   on a copy of the same store. Goal: duplicates at least as fast as new events
   (a duplicate is decided from the dedup index's content digest, without
   reading its first occurrence back from the store).
2. **Resume**: a run of 5,000 new lines killed at its first commit
   (``EVENTFOLD_FAILPOINT=ingest.after-commit@1``), timed from the start of the
   process, into stores of growing size. Goal: the first commit within a second,
   whatever the store's size (categories are not replayed before it).

    python benchmarks/bench_hostile.py [N]     # default 300000; resume on 10% of N and N
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from rich.console import Console
from rich.table import Table

from eventfold.application.app import open_store
from eventfold.application.demo.sample import write_sample
from eventfold.application.ingest import Ingestor


def child(source: str, store: str) -> None:
    app = open_store(store)
    try:
        with Ingestor(app, store) as ingestor:
            started = time.perf_counter()
            report = ingestor.run(source)
            elapsed = time.perf_counter() - started
    finally:
        app.close()
    print(
        json.dumps(
            {
                "read": report.read,
                "ingested": report.ingested,
                "duplicates": report.duplicates,
                "seconds": elapsed,
            }
        )
    )


def timed_ingest(source: str, store: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", source, store],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(json.loads(out.splitlines()[-1]))


def prepared(work: str, name: str, lines: int, first_id: int = 1, seed: int = 7) -> str:
    path = os.path.join(work, name)
    with open(path, "wb") as f:
        write_sample(f, lines, first_id=first_id, seed=seed)
    return path


def store_of(work: str, source: str) -> str:
    store = os.path.join(work, f"store-{os.path.basename(source)}")
    subprocess.run(
        [sys.executable, "-m", "eventfold", "ingest", source, "--store", store, "--quiet"],
        check=True,
        capture_output=True,
    )
    return store


def copy_of(store: str) -> str:
    copy = tempfile.mkdtemp(prefix="eventfold-bench-copy-")
    shutil.rmtree(copy)
    shutil.copytree(store, copy)
    return copy


def first_commit_seconds(source: str, store: str) -> float:
    """Wall time of ``eventfold ingest`` from its start to its first commit."""
    env = os.environ | {"EVENTFOLD_FAILPOINT": "ingest.after-commit@1"}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "eventfold", "ingest", source, "--store", store],
        env=env,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    assert "failpoint ingest.after-commit@1 reached" in done.stderr, done.stderr
    return elapsed


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["--child"]:
        child(args[1], args[2])
        return
    lines = int(args[0]) if args else 300_000
    work = tempfile.mkdtemp(prefix="eventfold-bench-hostile-")
    console = Console(width=120)
    try:
        source = prepared(work, "events.jsonl", lines)
        store = store_of(work, source)
        renamed = os.path.join(work, "renamed.jsonl")
        shutil.copy(source, renamed)
        new = prepared(work, "new.jsonl", lines, first_id=10 * lines, seed=8)
        table = Table(title=f"ingest into a store of {lines:,} events ({os.cpu_count()} cores)")
        for column in ("source", "lines", "ingested", "duplicates", "events/s"):
            table.add_column(column, justify="left" if column == "source" else "right")
        rates = {}
        for label, path in (("new ids", new), ("a renamed copy: all duplicates", renamed)):
            copy = copy_of(store)
            try:
                r = timed_ingest(path, copy)
            finally:
                shutil.rmtree(copy, ignore_errors=True)
            rates[label] = r["read"] / r["seconds"]
            table.add_row(
                label,
                f"{r['read']:,}",
                f"{r['ingested']:,}",
                f"{r['duplicates']:,}",
                f"{rates[label]:,.0f}",
            )
        ratio = rates["a renamed copy: all duplicates"] / rates["new ids"]
        table.caption = f"duplicates at {ratio:.2f}x the rate of new ids (goal: at least 1.00x)"
        console.print(table)

        resume = Table(title=f"a resumed run's first commit ({os.cpu_count()} cores)")
        for column in ("store", "seconds to the first commit"):
            resume.add_column(column, justify="right")
        more = prepared(work, "more.jsonl", 5000, first_id=100 * lines, seed=9)
        small = store_of(work, prepared(work, "small.jsonl", lines // 10, seed=10))
        for label, base in (
            ("empty", None),
            (f"{lines // 10:,} events", small),
            (f"{lines:,} events", store),
        ):
            target = copy_of(base) if base else os.path.join(work, "empty-store")
            try:
                resume.add_row(label, f"{first_commit_seconds(more, target):.2f}")
            finally:
                shutil.rmtree(target, ignore_errors=True)
        resume.caption = "goal: within a second, whatever the store's size"
        console.print(resume)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
