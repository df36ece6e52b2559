"""Ingest of many files: rotated gzip files beside one plain file, and many small files.

Both parts run ``eventfold ingest``'s code path over a list of files, as the
command does: ``resolve_sources`` (every file looked at first), then
``Ingestor`` and ``ingest_all`` on a durable file store (fsync on every
commit, batches of 1,000 lines). Each side runs in a fresh process, so its
peak RSS is its own; the time of a side is from ``resolve_sources`` to the
store closed.

1. The same ``write_sample`` lines (1,000,000 by default) as one plain file,
   as 200 files gzipped with the ``gzip`` module at its default level, and as
   the same 200 files uncompressed (many files without decompression). Three
   runs of each side, interleaved; the median events/s and the range.
   Target: the gzip files at 70% or more of the one file's events/s.
2. 10,000 files of 20 lines each. Opening is ``resolve_sources`` plus, in the
   ingest, each file's ``open_source`` and ``Ingestor.run`` up to the moment
   it knows where the file starts (the ``Source`` loaded, the fingerprint,
   the prefix checked). Reading is the rest of the ingest (parsing, deciding,
   committing). Timed by wrapping ``open_source`` (as ``ingest_all`` calls
   it), ``Ingestor.run`` and ``Ingestor._run``. A
   plain loop of ``open_source`` and ``close`` over the same files is timed
   too, for comparison. Target: opening takes no more time than reading.

    python benchmarks/bench_many.py [EVENTS [FILES]] [--small FILES LINES]
    python benchmarks/bench_many.py --profile DIRECTORY   # cProfile of one ingest
"""

from __future__ import annotations

import cProfile
import gzip
import json
import os
import pstats
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from common import peak_rss_mb
from rich.console import Console
from rich.table import Table

from eventfold.application.app import open_store
from eventfold.application.demo.sample import write_sample
from eventfold.application.ingest import Ingestor
from eventfold.application.ingest import many as many_module
from eventfold.application.ingest.many import ingest_all
from eventfold.application.sources import SourceList, resolve_sources
from eventfold.infra.sourcefile import SourceFile, open_source

REPEATS = 3  # runs of each side, interleaved; the median is reported
SIDES = {
    "one": "one plain file",
    "gzip": "gzip files",
    "plain": "plain files (same split)",
}


class Clock:
    """Time spent opening files inside an ingest (see the module's docstring)."""

    def __init__(self) -> None:
        self.opening = 0.0
        self.entered: float | None = None

    def install(self) -> None:
        names = vars(many_module)  # its globals: ``ingest_all`` calls open_source there
        names["open_source"] = self.timed(names["open_source"])
        run, started = Ingestor.run, Ingestor._run
        clock = self

        def timed_run(ingestor: Ingestor, *args: Any, **kwargs: Any) -> Any:
            clock.entered = time.perf_counter()
            try:
                return run(ingestor, *args, **kwargs)
            finally:
                if clock.entered is not None:  # it ended before asking for batches
                    clock.opening += time.perf_counter() - clock.entered
                    clock.entered = None

        def timed_start(ingestor: Ingestor, *args: Any, **kwargs: Any) -> Any:
            if clock.entered is not None:  # where the file starts is known: reading begins
                clock.opening += time.perf_counter() - clock.entered
                clock.entered = None
            return started(ingestor, *args, **kwargs)

        Ingestor.run = timed_run  # type: ignore[method-assign, assignment]
        Ingestor._run = timed_start  # type: ignore[method-assign, assignment]

    def timed(self, opener: Callable[[str], SourceFile]) -> Callable[[str], SourceFile]:
        def timed_open(path: str) -> SourceFile:
            started = time.perf_counter()
            try:
                return opener(path)
            finally:
                self.opening += time.perf_counter() - started

        return timed_open


def ingest(directory: str, store: str) -> tuple[list[str], int, float, float]:
    """``eventfold ingest DIRECTORY``'s code: the paths, events ingested, seconds in
    ``resolve_sources``, seconds in total (the store opened, ingested and closed)."""
    started = time.perf_counter()
    paths = resolve_sources(SourceList([directory]))
    resolved = time.perf_counter() - started
    app = open_store(store)
    try:
        with Ingestor(app, store) as ingestor:
            report = ingest_all(ingestor, paths)
    finally:
        app.close()
    assert not report.unread, report.unread
    return paths, report.total("ingested"), resolved, time.perf_counter() - started


def child(kind: str, source: str, store: str) -> None:
    clock = Clock()
    if kind == "small":
        clock.install()
    paths, count, resolved, elapsed = ingest(source, store)
    result: dict[str, Any] = {"events": count, "seconds": elapsed, "files": len(paths)}
    if kind == "small":
        started = time.perf_counter()
        for path in paths:
            open_source(path).close()
        result |= {
            "resolve": resolved,
            "opening": clock.opening,
            "open_loop": time.perf_counter() - started,
        }
    result["rss_mb"] = peak_rss_mb()
    result["reader_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps(result))


def measure(kind: str, source: str) -> dict[str, Any]:
    store = tempfile.mkdtemp(prefix=f"eventfold-bench-many-{kind}-")
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--child", kind, source, store],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        shutil.rmtree(store, ignore_errors=True)
    return dict(json.loads(out.splitlines()[-1]))


def profile(directory: str) -> None:
    """cProfile of one ingest of ``directory`` (the top costs, cumulative and own)."""
    store = tempfile.mkdtemp(prefix="eventfold-bench-many-profile-")
    try:
        profiler = cProfile.Profile()
        profiler.runcall(ingest, directory, store)
    finally:
        shutil.rmtree(store, ignore_errors=True)
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(30)
    stats.sort_stats("tottime").print_stats(20)


def split(lines: list[bytes], files: int, directory: str, *, compress: bool) -> str:
    """``lines`` in ``files`` consecutive parts, named in reading order."""
    os.makedirs(directory)
    per = -(-len(lines) // files)
    for i in range(files):
        data = b"".join(lines[i * per : (i + 1) * per])
        name = f"events-{i:05d}.jsonl"
        if compress:
            name, data = name + ".gz", gzip.compress(data)  # the default level (9)
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)
    return directory


def sample_lines(events: int, directory: str) -> list[bytes]:
    path = os.path.join(directory, "sample.jsonl")
    with open(path, "wb") as f:
        write_sample(f, events)
    with open(path, "rb") as f:
        lines = f.readlines()
    os.unlink(path)
    return lines


def rate(events: int, runs: list[dict[str, Any]]) -> tuple[float, str]:
    seconds = sorted(r["seconds"] for r in runs)
    median = events / statistics.median(seconds)
    return median, f"{median:,.0f}\n({events / seconds[-1]:,.0f}-{events / seconds[0]:,.0f})"


def prepare(work: str, events: int, files: int, small_files: int, small_lines: int) -> None:
    """The sources, written by a process of their own: the parent stays small, and its
    peak RSS is not inherited by the measured processes it starts."""
    lines = sample_lines(events, work)
    split(lines, 1, os.path.join(work, "one"), compress=False)
    split(lines, files, os.path.join(work, "gzip"), compress=True)
    split(lines, files, os.path.join(work, "plain"), compress=False)
    small = sample_lines(small_files * small_lines, work)
    split(small, small_files, os.path.join(work, "small"), compress=False)


def many_gzip(console: Console, work: str, events: int) -> None:
    sources = {kind: os.path.join(work, kind) for kind in SIDES}
    runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in SIDES}
    for _ in range(REPEATS):  # interleaved, so that load on the machine hits every side
        for kind in SIDES:
            result = measure(kind, sources[kind])
            assert result["events"] == events, result
            runs[kind].append(result)
    table = Table(
        title=f"{events:,} events, durable ingest: median of {REPEATS} interleaved runs "
        f"(range), {os.cpu_count()} cores"
    )
    for column in ("source", "files", "MB on disk", "events/s", "vs one file"):
        table.add_column(column, justify="left" if column == "source" else "right")
    table.add_column("peak RSS MB", justify="right")
    table.add_column("reader process\npeak RSS MB", justify="right")
    one, _ = rate(events, runs["one"])
    for kind, label in SIDES.items():
        median, shown = rate(events, runs[kind])
        names = os.listdir(sources[kind])
        size = sum(os.path.getsize(os.path.join(sources[kind], n)) for n in names)
        table.add_row(
            label,
            f"{len(names):,}",
            f"{size / 1e6:,.1f}",
            shown,
            f"{median / one:.0%}",
            f"{max(r['rss_mb'] for r in runs[kind]):.0f}",
            f"{max(r['reader_rss_mb'] for r in runs[kind]):.0f}",
        )
    console.print(table)


def many_small(console: Console, work: str, files: int, lines_each: int) -> None:
    events = files * lines_each
    source = os.path.join(work, "small")
    runs = []
    for _ in range(REPEATS):
        result = measure("small", source)
        assert result["events"] == events and result["files"] == files, result
        runs.append(result)
    runs.sort(key=lambda r: r["seconds"])
    median = runs[len(runs) // 2]  # the run of median total time, shown whole
    table = Table(
        title=f"{files:,} files of {lines_each} events: the run of median total time "
        f"of {REPEATS} (range of totals: {runs[0]['seconds']:.2f}-{runs[-1]['seconds']:.2f} s), "
        f"{os.cpu_count()} cores"
    )
    table.add_column("part of the ingest")
    table.add_column("seconds", justify="right")
    table.add_column("ms a file", justify="right")
    opening = median["resolve"] + median["opening"]
    reading = median["seconds"] - opening

    def row(label: str, seconds: float) -> None:
        table.add_row(label, f"{seconds:.2f}", f"{seconds * 1000 / files:.2f}")

    row("resolve_sources (every file looked at)", median["resolve"])
    row("ingest: open_source, up to where the file starts", median["opening"])
    row("opening, in all", opening)
    row("reading (parsing, deciding, committing)", reading)
    row("total", median["seconds"])
    row("(a loop of open_source + close alone)", median["open_loop"])
    console.print(table)
    console.print(
        f"opening / reading: {opening / reading:.2f} (target: at most 1); "
        f"{events / median['seconds']:,.0f} events/s; peak RSS {median['rss_mb']:.0f} MB"
    )


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["--child"]:
        child(args[1], args[2], args[3])
        return
    if args[:1] == ["--prepare"]:
        prepare(args[1], *(int(a) for a in args[2:6]))
        return
    if args[:1] == ["--profile"]:
        profile(args[1])
        return
    small = (10_000, 20)
    if "--small" in args:
        at = args.index("--small")
        small = (int(args[at + 1]), int(args[at + 2]))
        del args[at : at + 3]
    events, files = ([int(a) for a in args] + [1_000_000, 200][len(args) :])[:2]
    console = Console(width=120)
    work = tempfile.mkdtemp(prefix="eventfold-bench-many-source-")
    try:
        command = [sys.executable, __file__, "--prepare", work, str(events), str(files)]
        subprocess.run([*command, *map(str, small)], check=True)
        many_gzip(console, work, events)
        many_small(console, work, *small)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
