"""Ingest and rebuild on PostgreSQL with 1, 2 and 4 processes, next to the file store.

Ingest on PostgreSQL runs W partitioned processes at once (``--partition k/W``,
each with its own working directory, as on W machines); the file store takes
one writer, so it is measured with one process. Rebuild runs ``--workers W``
on both backends. Each configuration gets a fresh schema (PostgreSQL) or
directory (file store), and each command is a fresh process timed from start
to end, so events/s is what a user sees.

    eval "$(.ci/postgres-up)"
    python benchmarks/bench_postgres.py [N]      # default 200000 events
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any

from rich.console import Console
from rich.table import Table

from eventfold.application.demo.sample import write_sample
from eventfold.infra.backends.postgres import connection_settings as postgres_settings

WORKERS = (1, 2, 4)


def eventfold(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "eventfold", *args, "--json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(json.loads(out))


def timed(commands: list[list[str]], env: dict[str, str]) -> float:
    """Run the commands at once; seconds until the last one ends."""
    started = time.perf_counter()
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "eventfold", *c, "--quiet"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for c in commands
    ]
    for child in children:
        _, err = child.communicate()
        if child.returncode != 0:
            raise RuntimeError(err.decode())
    return time.perf_counter() - started


class Schema:
    """A fresh PostgreSQL schema for one configuration."""

    def __init__(self) -> None:
        import psycopg

        self.name = f"bench_{uuid.uuid4().hex[:10]}"
        self.settings = postgres_settings(os.environ)
        with psycopg.connect(**self.settings, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{self.name}"')

    def env(self) -> dict[str, str]:
        return dict(os.environ, EVENTFOLD_BACKEND="postgres", POSTGRES_SCHEMA=self.name)

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(**self.settings, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE')


def measure_file(source: str, work: str, events: int) -> dict[str, float]:
    store = os.path.join(work, "file-store")
    env = dict(os.environ, EVENTFOLD_BACKEND="file")
    result = {"ingest": events / timed([["ingest", source, "--store", store]], env)}
    for w in WORKERS:
        seconds = timed([["rebuild", "--store", store, "--workers", str(w)]], env)
        result[f"rebuild-{w}"] = events / seconds
    shutil.rmtree(store, ignore_errors=True)
    return result


def measure_postgres(source: str, work: str, events: int) -> dict[str, float]:
    result: dict[str, float] = {}
    for w in WORKERS:
        schema = Schema()
        try:
            commands = [
                [
                    "ingest",
                    source,
                    "--partition",
                    f"{k}/{w}",
                    "--store",
                    os.path.join(work, f"pg-{w}-{k}"),
                ]
                for k in range(1, w + 1)
            ]
            result[f"ingest-{w}"] = events / timed(commands, schema.env())
            store = os.path.join(work, f"pg-{w}-1")
            stored = eventfold(["status", "--store", store], schema.env())
            assert stored["events"] >= events, stored
            seconds = timed([["rebuild", "--store", store, "--workers", str(w)]], schema.env())
            result[f"rebuild-{w}"] = events / seconds
        finally:
            schema.drop()
    return result


def main() -> None:
    events = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    missing = [
        k
        for k in ("POSTGRES_DBNAME", "POSTGRES_HOST", "POSTGRES_USER", "POSTGRES_PASSWORD")
        if not os.environ.get(k)
    ]
    if missing:
        sys.exit(f'set {", ".join(missing)} first: eval "$(.ci/postgres-up)"')
    work = tempfile.mkdtemp(prefix="eventfold-bench-pg-")
    try:
        source = os.path.join(work, "source.jsonl")
        with open(source, "wb") as f:
            write_sample(f, events)
        on_files = measure_file(source, work, events)
        on_postgres = measure_postgres(source, work, events)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    table = Table(
        title=f"{events:,} events, events/s, wall time of fresh processes ({os.cpu_count()} cores)"
    )
    table.add_column("processes")
    table.add_column("file store\ningest", justify="right")
    table.add_column("PostgreSQL\ningest --partition k/W", justify="right")
    table.add_column("file store\nrebuild --workers W", justify="right")
    table.add_column("PostgreSQL\nrebuild --workers W", justify="right")
    for w in WORKERS:
        table.add_row(
            str(w),
            f"{on_files['ingest']:,.0f}" if w == 1 else "(one writer)",
            f"{on_postgres[f'ingest-{w}']:,.0f}",
            f"{on_files[f'rebuild-{w}']:,.0f}",
            f"{on_postgres[f'rebuild-{w}']:,.0f}",
        )
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
