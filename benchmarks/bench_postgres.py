"""Partitioned ingest and rebuild on PostgreSQL, next to the file store, and where the time goes.

The source: ``EVENTS`` generated events (``write_sample``, distinct ids) split
over 8 gzip files. Each configuration gets a fresh PostgreSQL schema (created
and dropped here) or directory; each command is a fresh process, and a
configuration's time runs from the start to the end of all the processes
started together (``pgmeasure.run_together``), so events/s is what users see.

1. **Ingest**: ``ingest FILES --partition k/W`` for W = 1, 2, 4, the W
   processes started together, each with its own ``--store`` directory (as on
   W machines); beside them one ``ingest FILES`` without ``--partition`` on
   PostgreSQL, and the file store's ingest (one writer). After a partitioned
   run, the partitions' ``join.events`` must add up to the events and
   ``status --json`` must show every planned file joined, nothing waiting.
2. **Rebuild** of ``category_totals`` with 1, 2, 4 workers: ``rebuild
   --workers W`` on the file store and on PostgreSQL (the store the 4
   partitions joined, vacuumed first: ``Schema.settle``), and W ``rebuild
   --worker k/W`` processes started together on PostgreSQL. Every one must
   give the file store's checksum.
3. **Where the time goes** in each PostgreSQL ingest: CPU seconds of the
   eventfold processes (``os.wait4``) and of the server's processes
   (``/proc``), WAL bytes (``pg_stat_wal``), the partitions' time spent
   joining, wall time, and the cores' idle share (``/proc/stat``).
4. **A partition's parse rate alone**: 2 of the 8 files (a partition's share
   of 4) through the ingest's reading half (``read_batches`` behind the
   ``HashingReader`` a gzip source is read through), in this process, no
   store; and the join's rate in the 1-partition run. From them, an estimate
   of N partitions on N machines (``estimate``'s docstring).

With ``--repeats R`` each configuration runs R times and the run of median
wall time is the one reported (all its figures). Progress goes to stderr.

    eval "$(.ci/postgres-up)"
    python benchmarks/bench_postgres.py [EVENTS] [--repeats R]   # default 1,000,000, 1
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, cast

from common import machine
from pgmeasure import CommandFailed, Server, ServerUnavailable, Together, run_together
from rich.console import Console
from rich.table import Table

from eventfold.application.demo.sample import write_sample
from eventfold.application.ingest.reading import read_batches
from eventfold.application.ingest.resuming import HashingReader, new_hasher
from eventfold.application.recorded import RecordedCodec
from eventfold.infra.sourcefile import open_source

EVENTS = 1_000_000
FILES = 8
WORKERS = (1, 2, 4)
GOAL = 1.5  # 2 partitions against 1
MACHINES = (1, 2, 4, 8)  # partitions on as many machines, in the estimate
SETTINGS = ("POSTGRES_DBNAME", "POSTGRES_HOST", "POSTGRES_USER", "POSTGRES_PASSWORD")


class BenchmarkFailed(RuntimeError):
    """A configuration gave a wrong result: the benchmark stops and says which."""


@dataclass
class Results:
    """Every run of the benchmark, by configuration."""

    events: int
    repeats: int = 1  # runs of each configuration; the median is kept
    ingest: dict[str, Together] = field(default_factory=dict)  # "1".."4", "plain", "file"
    rebuild: dict[tuple[str, int], Together] = field(default_factory=dict)  # (kind, W)
    checksum: str = ""  # the file store's category_totals
    parsed: int = 0  # events of a partition's share, read alone
    parse_seconds: float = 0.0
    parse_cpu: float = 0.0

    def ingested(self, key: str, runs: list[Together]) -> None:
        """Keep the run of median wall time of an ingest configuration."""
        self.ingest[key] = _median(runs, f"ingest ({key})")

    def rebuilt(self, kind: str, w: int, runs: list[Together]) -> None:
        """Keep the run of median wall time of a rebuild configuration."""
        self.rebuild[kind, w] = _median(runs, f"rebuild ({kind} {w})")

    def joins(self, key: str) -> float:
        """Seconds the partitions of ``ingest[key]`` spent joining, all added up."""
        return sum(float(out["join"]["elapsed_seconds"]) for out in self.ingest[key].outputs)


def _median(runs: list[Together], what: str) -> Together:
    """The run of median wall time (the lower middle one of an even number); says so."""
    ordered = sorted(runs, key=lambda run: run.wall)
    walls = ", ".join(f"{run.wall:.2f}" for run in runs)
    print(f"  {what}: {walls} s", file=sys.stderr, flush=True)
    return ordered[(len(ordered) - 1) // 2]


class Schema:
    """A fresh PostgreSQL schema for one configuration, dropped when it is done."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.name = f"bench_pg_{uuid.uuid4().hex[:10]}"

    def __enter__(self) -> Schema:
        self.server.execute(f'CREATE SCHEMA "{self.name}"')
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.execute(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE')

    def env(self) -> dict[str, str]:
        return dict(os.environ, EVENTFOLD_BACKEND="postgres", POSTGRES_SCHEMA=self.name)

    def settle(self) -> None:
        """``VACUUM (ANALYZE)`` every table of the schema, as autovacuum would in time.

        The first scan of freshly written rows sets their hint bits (writing the
        pages again), and tables not yet analyzed are planned without statistics:
        without this, the rebuilds right after the ingest ran 1.5 to 1.8 times
        slower, the first one most.
        """
        tables = self.server.rows(
            "SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = %s", (self.name,)
        )
        for (table,) in tables:
            self.server.execute(f'VACUUM (ANALYZE) "{self.name}"."{table}"')


def file_env() -> dict[str, str]:
    return dict(os.environ, EVENTFOLD_BACKEND="file")


# -- the source --------------------------------------------------------------------


def write_files(directory: str, events: int) -> list[str]:
    """``events`` generated events over ``FILES`` gzip files, ids distinct across them."""
    paths = []
    per_file, extra = divmod(events, FILES)
    first = 1
    for i in range(FILES):
        count = per_file + (i < extra)
        path = os.path.join(directory, f"events-{i + 1}.jsonl.gz")
        with gzip.open(path, "wb") as out:
            write_sample(cast(BinaryIO, out), count, seed=7 + i, first_id=first)
        paths.append(path)
        first += count
    return paths


# -- 1. ingest ---------------------------------------------------------------------


def ingest_file_store(files: list[str], store: str, results: Results) -> None:
    """The file store's ingest (one writer); the last run's store is left for rebuilds."""
    runs = []
    for _ in range(results.repeats):
        shutil.rmtree(store, ignore_errors=True)
        run = run_together([["ingest", *files, "--store", store]], file_env())
        _check_ingested(run, results.events, "file store ingest")
        runs.append(run)
    results.ingested("file", runs)


def ingest_plain(files: list[str], work: str, server: Server, results: Results) -> None:
    """One ``ingest FILES`` without ``--partition`` on PostgreSQL, in a fresh schema."""
    runs = []
    store = os.path.join(work, "pg-plain")
    for _ in range(results.repeats):
        try:
            with Schema(server) as schema:
                run = run_together([["ingest", *files, "--store", store]], schema.env(), server)
                _check_ingested(run, results.events, "PostgreSQL ingest without --partition")
        finally:
            shutil.rmtree(store, ignore_errors=True)
        runs.append(run)
    results.ingested("plain", runs)


@contextlib.contextmanager
def partitioned(
    files: list[str], w: int, work: str, server: Server, events: int
) -> Iterator[tuple[Together, list[str], Schema]]:
    """``ingest FILES --partition k/W`` for every k at once in a fresh schema, each with its
    own store directory, checked (``check_joined``); the schema and directories are removed
    after the ``with`` block."""
    stores = [os.path.join(work, f"pg-{w}-{k}") for k in range(1, w + 1)]
    commands = [
        ["ingest", *files, "--partition", f"{k}/{w}", "--store", stores[k - 1]]
        for k in range(1, w + 1)
    ]
    try:
        with Schema(server) as schema:
            run = run_together(commands, schema.env(), server)
            check_joined(run, w, events, schema, stores[0])
            yield run, stores, schema
    finally:
        for store in stores:
            shutil.rmtree(store, ignore_errors=True)


def check_joined(run: Together, w: int, events: int, schema: Schema, store: str) -> None:
    """The partitions joined every event, and ``status`` shows nothing waiting."""
    joined = sum(int(out["join"]["events"]) for out in run.outputs)
    if joined != events:
        msg = f"{w} partitions joined {joined:,} events, not {events:,}"
        raise BenchmarkFailed(msg)
    status = run_together([["status", "--store", store]], schema.env()).outputs[0]
    parts = status.get("partitions") or {}
    whole = (
        parts.get("count") == w
        and parts.get("files_planned") == FILES
        and parts.get("files_joined") == FILES
        and parts.get("events_waiting") == 0
        and parts.get("waiting_file") is None
    )
    if not whole:
        msg = f"after {w} partitions, status shows the join unfinished: {parts}"
        raise BenchmarkFailed(msg)


def _check_ingested(run: Together, events: int, what: str) -> None:
    ingested = int(run.outputs[0]["ingested"])
    if ingested != events:
        msg = f"{what} ingested {ingested:,} events, not {events:,}"
        raise BenchmarkFailed(msg)


# -- 2. rebuild --------------------------------------------------------------------


def rebuild_file_store(store: str, results: Results) -> None:
    """``rebuild --workers W``; the first one's checksum is the one every rebuild must give."""
    for w in WORKERS:
        runs = []
        for _ in range(results.repeats):
            command = ["rebuild", "--store", store, "--workers", str(w)]
            run = run_together([command], file_env())
            results.checksum = results.checksum or _checksum(run.outputs[0])
            _check_rebuilt(run.outputs[0], results, f"file store rebuild --workers {w}")
            runs.append(run)
        results.rebuilt("file", w, runs)


def rebuild_postgres(stores: list[str], schema: Schema, results: Results) -> None:
    """``rebuild --workers W``, then W ``rebuild --worker k/W`` at once, on one store
    (its schema settled first)."""
    started = time.perf_counter()
    schema.settle()
    print(f"  vacuum: {time.perf_counter() - started:.2f} s", file=sys.stderr, flush=True)
    for w in WORKERS:
        command = ["rebuild", "--store", stores[0], "--workers", str(w)]
        runs = [run_together([command], schema.env()) for _ in range(results.repeats)]
        for run in runs:
            _check_rebuilt(run.outputs[0], results, f"PostgreSQL rebuild --workers {w}")
        results.rebuilt("workers", w, runs)
    for w in WORKERS:
        commands = [
            ["rebuild", "--store", stores[k - 1], "--worker", f"{k}/{w}"] for k in range(1, w + 1)
        ]
        runs = [run_together(commands, schema.env()) for _ in range(results.repeats)]
        for run in runs:
            merged = [out for out in run.outputs if out.get("merged")]
            if len(merged) != 1:
                msg = f"rebuild --worker k/{w}: {len(merged)} workers merged, not 1"
                raise BenchmarkFailed(msg)
            _check_rebuilt(merged[0], results, f"PostgreSQL rebuild --worker k/{w}")
        results.rebuilt("worker", w, runs)


def _checksum(out: dict[str, Any]) -> str:
    return str(out["checksum"])


def _check_rebuilt(out: dict[str, Any], results: Results, what: str) -> None:
    applied = int(out["events_applied"])
    if _checksum(out) != results.checksum or applied != results.events:
        msg = (
            f"{what}: checksum {_checksum(out)} over {applied:,} events; the file store's "
            f"is {results.checksum} over {results.events:,}"
        )
        raise BenchmarkFailed(msg)


# -- 4. a partition's parse rate alone ---------------------------------------------


def parse_alone(paths: list[str]) -> tuple[int, float, float]:
    """The ingest's reading half over ``paths`` (decompress, hash, parse, encode), no
    store: events, seconds, CPU seconds."""
    codec = RecordedCodec.plain()
    events = 0
    started, cpu = time.perf_counter(), time.process_time()
    for path in paths:
        with open_source(path) as source:
            tee = HashingReader(source.stream, new_hasher(), 0)
            stream = cast(BinaryIO, tee)
            for batch in read_batches(stream, 0, 0, 1000, codec, source.real, growing=True):
                tee.hash_to(batch.position)
                events += len(batch.ids)
    return events, time.perf_counter() - started, time.process_time() - cpu


# -- the whole run -----------------------------------------------------------------


def measure(files: list[str], work: str, server: Server, results: Results) -> None:
    file_store = os.path.join(work, "file-store")
    ingest_file_store(files, file_store, results)
    rebuild_file_store(file_store, results)
    shutil.rmtree(file_store, ignore_errors=True)
    ingest_plain(files, work, server, results)
    for w in WORKERS:
        runs: list[Together] = []
        for repeat in range(1, results.repeats + 1):
            with partitioned(files, w, work, server, results.events) as (run, stores, schema):
                runs.append(run)
                if repeat == results.repeats:
                    results.ingested(str(w), runs)
                    if w == WORKERS[-1]:
                        rebuild_postgres(stores, schema, results)
    share = files[: FILES // 4]
    parses = sorted((parse_alone(share) for _ in range(results.repeats)), key=lambda p: p[1])
    results.parsed, results.parse_seconds, results.parse_cpu = parses[(len(parses) - 1) // 2]


# -- the report --------------------------------------------------------------------


def _rate(events: int, seconds: float) -> str:
    return f"{events / seconds:,.0f}"


def _times(x: float) -> str:
    return f"{x:.2f}x"


def ingest_table(results: Results) -> Table:
    table = Table(title="1. Ingest of the 8 gzip files (wall time of the processes together)")
    for name in ("configuration", "processes", "seconds", "events/s", "vs 1 partition"):
        table.add_column(name, justify="left" if name == "configuration" else "right")
    one = results.ingest["1"].wall
    rows = [(f"PostgreSQL --partition k/{w}", str(w)) for w in WORKERS]
    rows += [("PostgreSQL, no --partition", "plain"), ("file store (one writer)", "file")]
    for label, key in rows:
        run = results.ingest[key]
        count = str(len(run.commands))
        table.add_row(
            label, count, f"{run.wall:.2f}", _rate(results.events, run.wall), _times(one / run.wall)
        )
    return table


def rebuild_table(results: Results) -> Table:
    table = Table(title="2. Rebuild of category_totals (events/s, and against 1 worker)")
    table.add_column("workers", justify="right")
    kinds = {
        "file": "file store\n--workers W",
        "workers": "PostgreSQL\n--workers W",
        "worker": "PostgreSQL\n--worker k/W (W processes)",
    }
    for heading in kinds.values():
        table.add_column(heading, justify="right")
    for w in WORKERS:
        cells = []
        for kind in kinds:
            wall, first = results.rebuild[kind, w].wall, results.rebuild[kind, 1].wall
            cells.append(f"{_rate(results.events, wall)}  {_times(first / wall)}")
        table.add_row(str(w), *cells)
    return table


def cost_table(results: Results) -> Table:
    table = Table(title="3. Where the time goes in the PostgreSQL ingests")
    headings = (
        "configuration",
        "wall s",
        "eventfold\nCPU s",
        "PostgreSQL\nCPU s",
        "WAL MB",
        "joins s, all\npartitions (waits\nfor another's in)",
        "joins' share of\npartitions' time",
        "cores\nidle",
    )
    for name in headings:
        table.add_column(name, justify="left" if name == "configuration" else "right")
    rows = [("no --partition", "plain")]
    rows += [(f"{w} partition{'s' * (w > 1)}", str(w)) for w in WORKERS]
    for label, key in rows:
        run = results.ingest[key]
        joins = results.joins(key) if key != "plain" else None
        table.add_row(
            label,
            f"{run.wall:.2f}",
            f"{run.cpu:.2f}",
            "n/a" if run.server_cpu is None else f"{run.server_cpu:.2f}",
            "n/a" if run.wal_bytes is None else f"{run.wal_bytes / 1e6:,.0f}",
            "-" if joins is None else f"{joins:.2f}",
            "-" if joins is None else f"{joins / sum(run.walls):.0%}",
            f"{run.idle:.0%}",
        )
    return table


@dataclass(frozen=True)
class Estimate:
    """N partitions on N machines ~ min(N x parse rate x parsing share, join rate)."""

    parse_rate: float  # events/s of the reading half alone, one core
    parsing_share: float  # of a partition's whole time (1-partition run), 0 to 1
    joining_share: float  # ... spent joining
    join_rate: float  # events/s the join maps into the log (1-partition run)

    @property
    def one(self) -> float:
        """One partition's rate: what parsing alone would give, times parsing's share."""
        return self.parse_rate * self.parsing_share

    def partitions(self, n: int) -> float:
        return min(n * self.one, self.join_rate)


def estimate(results: Results) -> Estimate:
    """The estimate's terms, from the 1-partition run and the parse rate alone.

    In the 1-partition run the process has a core to itself (the server takes
    the other), as a partition would on a machine of its own. It parses its
    files, writes them to its tables and, between files, joins them to the log.
    Its parsing share is the time parsing its events takes at the parse rate
    alone over its whole time, so ``parse rate x share`` is its own rate, and
    the rest of its time (writing, joining, waiting on the server) scales with
    its share of the events. With N partitions on N machines each has 1/N of
    the events and joins about 1/N of the files, so they go N times as fast,
    until the join, serial in the files' order (it maps each event into the one
    log: its id claimed, a few rows a step; no copy), is the limit:
    ``min(N x parse rate x share, join rate)``. The server's own CPU (table 3) is
    a further limit that this does not model.
    """
    run = results.ingest["1"]
    wall = max(run.wall, 1e-9)
    joins = max(results.joins("1"), 1e-9)
    parse_rate = results.parsed / max(results.parse_seconds, 1e-9)
    return Estimate(
        parse_rate=parse_rate,
        parsing_share=(results.events / parse_rate) / wall,
        joining_share=joins / wall,
        join_rate=results.events / joins,
    )


def print_estimate(console: Console, results: Results) -> None:
    guess = estimate(results)
    lines = [
        "[bold]4. A partition's parse rate alone, and the join's[/bold]",
        f"parse rate: {results.parsed:,} events (2 of the 8 files) read, decompressed, hashed "
        f"and parsed in {results.parse_seconds:.2f} s ({results.parse_cpu:.2f} s CPU, one "
        f"core): {guess.parse_rate:,.0f} events/s",
        f"join rate: {results.events:,} events joined in {results.joins('1'):.2f} s in the "
        f"1-partition run: {guess.join_rate:,.0f} events/s",
        f"the 1-partition run's {results.ingest['1'].wall:.2f} s: parsing "
        f"{guess.parsing_share:.0%}, joining {guess.joining_share:.0%}, the rest starting, "
        f"writing its tables and waiting on the server; one partition ~ {guess.one:,.0f} "
        "events/s",
        "estimate: N partitions on N machines ~ min(N x parse rate x parsing share, join rate): "
        "each machine parses, writes and joins its 1/N of the events; the join into the one "
        "log is serial, so it caps the whole; the server's own capacity is not in it",
        "  " + "; ".join(f"{n} on {n}: {guess.partitions(n):,.0f} events/s" for n in MACHINES),
    ]
    server = results.ingest["1"].server_cpu
    if server:
        lines.append(
            f"the server: {server:.2f} CPU s in the 1-partition run, "
            f"{server / results.events * 1e6:.0f} µs per event (writes and join): one server "
            f"core keeps up with ~{results.events / server:,.0f} events/s of partitioned ingest"
        )
    for line in lines:
        console.print(line, highlight=False)


def report(console: Console, results: Results) -> None:
    console.print(ingest_table(results))
    ratio = results.ingest["1"].wall / results.ingest["2"].wall
    console.print(
        f"[bold]2 partitions: {ratio:.2f} times 1 partition (goal >= {GOAL})[/bold]",
        highlight=False,
    )
    console.print(rebuild_table(results))
    console.print(f"every rebuild gave the file store's checksum {results.checksum}")
    console.print(cost_table(results))
    console.print(
        "eventfold CPU: the processes' rusage (children included); PostgreSQL CPU: the "
        "server's processes (/proc); both, and WAL, count any other client of the server too",
        highlight=False,
    )
    print_estimate(console, results)
    console.print(f"load average at the end: {machine().load}", highlight=False)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("events", nargs="?", type=int, default=EVENTS)
    parser.add_argument("--repeats", type=int, default=1, help="runs of each configuration")
    args = parser.parse_args()
    if args.events < FILES or args.repeats < 1:
        parser.error(f"at least {FILES} events and 1 repeat")
    return args


def _terminated(signum: int, frame: object) -> None:
    sys.exit(128 + signum)


def main() -> None:
    args = arguments()
    events = args.events
    missing = [k for k in SETTINGS if not os.environ.get(k)]
    if missing:
        sys.exit(f'set {", ".join(missing)} first: eval "$(.ci/postgres-up)"')
    signal.signal(signal.SIGTERM, _terminated)  # clean up (children, schemas) as on ^C
    console = Console(width=140)
    try:
        server = Server(os.environ)
    except ServerUnavailable as e:
        sys.exit(f"bench-postgres: {e}")
    console.print(
        f"[bold]Machine:[/bold] {machine().describe()}; PostgreSQL {server.version}",
        highlight=False,
    )
    console.print(
        f"{events:,} events over {FILES} gzip files; each configuration run "
        f"{args.repeats} time{'s' * (args.repeats > 1)}, the run of median wall time kept",
        highlight=False,
    )
    work = tempfile.mkdtemp(prefix="eventfold-bench-pg-")
    results = Results(events, args.repeats)
    try:
        files = write_files(work, events)
        measure(files, work, server, results)
    except (BenchmarkFailed, CommandFailed) as e:
        sys.exit(f"bench-postgres: FAILED: {e}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        server.close()
    report(console, results)


if __name__ == "__main__":
    main()
