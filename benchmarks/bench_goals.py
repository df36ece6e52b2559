"""The performance goals, one table each, each figure beside its peer or baseline from one run.

1. Bytes on disk per event of the whole store, and of each part, against the
   source's JSON Lines bytes (target: at most 0.5), for (a) the default
   ``write_sample`` source and (b) one with 32-character random ids over
   100,000 categories; ``gzip -1`` of each source as a reference.
2. A full rebuild of ``category_totals`` against the plain single-pass fold of
   the source (``bench_projection.py``'s peer): default workers (target: at
   most 1.0 times the fold's wall time) and ``--workers 1`` (at most 2.0).
3. Ingest against the plain eventsourcing peer on SQLite (``bench_ingest.py``'s
   peer; target: at least 6 times its events/s), and the rate at ten times the
   events against the rate at the base size (target: at least 85%).
4. The base source's events spread over 20, 10,000 and 100,000 categories:
   ingest, a second ingest of new ids into the same categories, and a
   rebuild, each against the 20-category figure (target at 100,000: no more
   than 1.3 times its time).
5. A store of five times the base size: ``eventfold status`` and
   ``eventfold catchup`` with nothing to apply, each the wall time of a fresh
   process (target: under 0.5 s), beside ``eventfold --version`` (start-up).

Sizes are the issue's (1M base events, 10M, 5M, 100,000 new ids) times
``--scale``; the category counts stay as they are. Sources are generated
once under a temporary directory (smaller sizes are prefixes of the longest:
``write_sample`` is sequential) and removed at the end with every store.

    python benchmarks/bench_goals.py [--scale F] [--goals 1,2,...] [--repeats R]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import bench_ingest
import bench_projection
from common import cli, copy_prefix, gzip1_bytes, machine, store_parts, timed, write_source
from rich.console import Console
from rich.table import Table

from eventfold.reports.text import plural

CATEGORY_COUNTS = (20, 10_000, 100_000)
MANY = CATEGORY_COUNTS[-1]
DISK_TARGET = 0.5
REBUILD_TARGETS = (1.0, 2.0)  # default workers, --workers 1: times the plain fold
INGEST_TARGET = 6.0  # times the peer's events/s
SCALE_TARGET = 0.85  # the large source's events/s over the base source's
CATEGORIES_TARGET = 1.3  # 100,000 categories: times the 20-category time
OPEN_TARGET = 0.5  # seconds


@dataclass(frozen=True)
class Sizes:
    base: int  # the benchmark source (goals 1 to 4)
    large: int  # goal 3's long ingest
    opened: int  # goal 5's store
    more: int  # goal 4's second ingest

    @classmethod
    def scaled(cls, scale: float) -> Sizes:
        def size(events: int) -> int:
            return max(1000, round(events * scale))

        return cls(size(1_000_000), size(10_000_000), size(5_000_000), size(100_000))


class Workspace:
    """Generated sources and stores in one directory, each made once (stores by fresh processes)."""

    def __init__(self, root: str, sizes: Sizes, goals: list[int]) -> None:
        self.root = root
        self.sizes = sizes
        self.longest = sizes.base
        if 5 in goals:
            self.longest = sizes.opened
        if 3 in goals:
            self.longest = sizes.large
        self.sources: dict[str, str] = {}
        self.base: str | None = None

    def path(self, name: str) -> str:
        return os.path.join(self.root, name)

    def source(self, lines: int) -> str:
        """The default sample of ``lines`` lines: a prefix of the longest one this run needs."""
        longest = self.sample(f"sample-{self.longest}", self.longest)
        if lines == self.longest:
            return longest
        name = f"sample-{lines}"
        if name not in self.sources:
            self.sources[name] = copy_prefix(longest, self.path(f"{name}.jsonl"), lines)
        return self.sources[name]

    def sample(self, name: str, lines: int, **options: Any) -> str:
        """A ``write_sample`` source of ``lines`` lines with ``options``, written once."""
        if name not in self.sources:
            note(f"generating {name} ({lines:,} lines)")
            self.sources[name] = write_source(self.path(f"{name}.jsonl"), lines, **options)
        return self.sources[name]

    def drop(self, name: str) -> None:
        path = self.sources.pop(name, None)
        if path is not None:
            os.unlink(path)

    def ingest(self, name: str, source: str) -> tuple[str, dict[str, Any]]:
        """``source`` ingested by ``bench_ingest``'s eventfold side into a new kept store."""
        directory = self.path(name)
        os.makedirs(directory)
        note(f"ingesting {os.path.basename(source)} into {name}")
        return os.path.join(directory, "store"), bench_ingest.measure(
            "eventfold", source, directory
        )

    def base_store(self) -> str:
        """The base source ingested once (goals 1 and 2 read it; nothing writes to it again)."""
        if self.base is None:
            self.base = self.ingest("base", self.source(self.sizes.base))[0]
        return self.base

    def remove(self, store: str) -> None:
        shutil.rmtree(os.path.dirname(store), ignore_errors=True)


def note(text: str) -> None:
    print(f"  ... {text}", file=sys.stderr, flush=True)


def verdict(met: bool) -> str:
    return "[green]yes[/green]" if met else "[bold red]NO[/bold red]"


def table(title: str, *columns: str) -> Table:
    result = Table(title=title, title_justify="left")
    for i, column in enumerate(columns):
        result.add_column(column, justify="left" if i == 0 else "right")
    return result


def spread(values: list[float], show: Callable[[float], str]) -> str:
    """The median of ``values``, and their range below it when there are several."""
    text = show(statistics.median(values))
    if len(values) > 1:
        text += f"\n({show(min(values))}-{show(max(values))})"
    return text


def rate(value: float) -> str:
    return f"{value:,.0f}"


def seconds(value: float) -> str:
    return f"{value:.3f}" if value < 1 else f"{value:.2f}"


def goal_disk(ws: Workspace, repeats: int) -> Table:
    """Goal 1: bytes on disk per event, the whole store and each part, against the source."""
    events = ws.sizes.base
    result = table(
        f"Goal 1: bytes on disk per event, {events:,} events "
        f"(target: the whole store at most {DISK_TARGET} times the source)",
        "source / part",
        "bytes",
        "bytes an event",
        "times the source",
        "target",
        "met",
    )
    long_name = "long-ids"
    cases = (
        ("(a) default sample, 20 categories", ws.source(events), None),
        (
            f"(b) random ids of 32 hex digits, {MANY:,} categories",
            ws.sample(long_name, events, categories=MANY, long_ids=True),
            long_name,
        ),
    )
    for label, source, own in cases:
        store = ws.base_store() if own is None else ws.ingest(own, source)[0]
        size = os.path.getsize(source)
        parts = store_parts(store)
        whole = sum(parts.values())
        result.add_section()
        result.add_row(f"[bold]{label}[/bold]", "", "", "", "", "")
        rows = [
            ("JSON Lines source (baseline)", size),
            ("gzip -1 of the source (reference)", gzip1_bytes(source)),
            *((f"  store: {part}", count) for part, count in parts.items()),
        ]
        for name, count in rows:
            result.add_row(
                name, f"{count:,}", f"{count / events:.1f}", f"{count / size:.3f}", "", ""
            )
        result.add_row(
            "whole store",
            f"{whole:,}",
            f"{whole / events:.1f}",
            f"{whole / size:.3f}",
            f"<= {DISK_TARGET}",
            verdict(whole / size <= DISK_TARGET),
        )
        if own is not None:
            ws.remove(store)
            ws.drop(own)
    return result


def goal_rebuild(ws: Workspace, repeats: int) -> Table:
    """Goal 2: rebuild of category_totals against the plain fold of the source."""
    events = ws.sizes.base
    source, store = ws.source(events), ws.base_store()
    runs: dict[str, list[tuple[float, float, str]]] = {"plain": [], "default": [], "one": []}
    for _ in range(repeats):  # interleaved, so that load on the machine hits all of them
        note("plain fold, rebuild (default workers), rebuild --workers 1")
        runs["plain"].append(timed("path", bench_projection.__file__, "--plain", source))
        runs["default"].append(cli("rebuild", "--store", store, "--json"))
        runs["one"].append(cli("rebuild", "--store", store, "--workers", "1", "--json"))
    workers = json.loads(runs["default"][0][2])["workers"]
    plain = statistics.median(r[0] for r in runs["plain"])
    result = table(
        f"Goal 2: full rebuild of category_totals over {events:,} events, fresh processes "
        f"(median of {repeats}, range)",
        "run",
        "wall s",
        "events/s",
        "peak RSS MB",
        "times the plain fold",
        "target",
        "met",
    )
    rows = (
        ("plain fold of the source (peer)", "plain", None),
        (f"rebuild, default ({plural(workers, 'worker')} here)", "default", REBUILD_TARGETS[0]),
        ("rebuild --workers 1", "one", REBUILD_TARGETS[1]),
    )
    for label, key, target in rows:
        walls = [r[0] for r in runs[key]]
        ratio = statistics.median(walls) / plain
        result.add_row(
            label,
            spread(walls, seconds),
            rate(events / statistics.median(walls)),
            f"{max(r[1] for r in runs[key]):.0f}",
            f"{ratio:.2f}",
            "" if target is None else f"<= {target}",
            "" if target is None else verdict(ratio <= target),
        )
    return result


def goal_ingest(ws: Workspace, repeats: int) -> Table:
    """Goal 3: ingest against the eventsourcing peer on SQLite; the large source's rate."""
    base, large = ws.sizes.base, ws.sizes.large
    source = ws.source(base)
    runs: dict[str, list[dict[str, Any]]] = {"eventfold": [], "peer": []}
    for _ in range(repeats):  # interleaved, as bench_ingest.py does
        for kind in runs:
            note(f"ingest of {base:,} events: {kind}")
            found = bench_ingest.measure(kind, source)
            assert found["events"] == base, found
            runs[kind].append(found)
    store, scaled = ws.ingest("large", ws.source(large))
    assert scaled["events"] == large, scaled
    ws.remove(store)
    rates = {kind: [base / r["seconds"] for r in found] for kind, found in runs.items()}
    ours, peer = statistics.median(rates["eventfold"]), statistics.median(rates["peer"])
    large_rate = large / scaled["seconds"]
    result = table(
        f"Goal 3: durable ingest, fresh processes (median of {repeats}, range)",
        "run",
        "events",
        "events/s",
        "peak RSS MB",
        "ratio",
        "target",
        "met",
    )
    result.add_row(
        "peer: eventsourcing.sqlite, save/1,000",
        f"{base:,}",
        spread(rates["peer"], rate),
        f"{max(r['rss_mb'] for r in runs['peer']):.0f}",
        "",
        "",
        "",
    )
    result.add_row(
        "eventfold ingest, times the peer",
        f"{base:,}",
        spread(rates["eventfold"], rate),
        _rss(runs["eventfold"]),
        f"{ours / peer:.2f}",
        f">= {INGEST_TARGET}",
        verdict(ours / peer >= INGEST_TARGET),
    )
    result.add_row(
        f"eventfold ingest, over the {base:,} rate",
        f"{large:,}",
        rate(large_rate),
        _rss([scaled]),
        f"{large_rate / ours:.0%}",
        f">= {SCALE_TARGET:.0%}",
        verdict(large_rate / ours >= SCALE_TARGET),
    )
    return result


def _rss(runs: list[dict[str, Any]]) -> str:
    """The writer's and the reader process's peak RSS (MB) of eventfold ingest runs."""
    writer = max(r["rss_mb"] for r in runs)
    reader = max(r["reader_rss_mb"] for r in runs)
    return f"{writer:.0f} (reader {reader:.0f})" if reader else f"{writer:.0f} (no reader)"


def goal_categories(ws: Workspace, repeats: int) -> Table:
    """Goal 4: the same events over 20, 10,000 and 100,000 categories, ``repeats`` rounds
    (each round every category count in turn, so that each ratio divides figures taken
    in the same minutes; medians, and their range)."""
    events, more = ws.sizes.base, ws.sizes.more
    found: dict[int, dict[str, list[tuple[float, str]]]] = {
        count: {"ingest": [], "second": [], "rebuild": []} for count in CATEGORY_COUNTS
    }
    for round_ in range(1, repeats + 1):
        for count in CATEGORY_COUNTS:
            name = f"categories-{count}"
            source = ws.source(events) if count == 20 else ws.sample(name, events, categories=count)
            store, first = ws.ingest(name, source)
            note(f"rebuild at {count:,} categories (round {round_} of {repeats})")
            rebuilt = cli("rebuild", "--store", store, "--json")
            extra = ws.sample(f"more-{count}", more, categories=count, first_id=events + 1, seed=99)
            note(f"second ingest at {count:,} categories")
            second = bench_ingest.measure("eventfold", extra, os.path.dirname(store))
            assert (first["events"], second["events"]) == (events, more), (first, second)
            ws.remove(store)
            if round_ == repeats:
                if count != 20:
                    ws.drop(name)
                ws.drop(f"more-{count}")
            found[count]["ingest"].append((first["seconds"], _rss([first])))
            found[count]["second"].append((second["seconds"], _rss([second])))
            found[count]["rebuild"].append((rebuilt[0], f"{rebuilt[1]:.0f}"))
    result = table(
        f"Goal 4: {events:,} events over {', '.join(f'{c:,}' for c in CATEGORY_COUNTS)} "
        f"categories; the second ingest adds {more:,} new ids to the same categories "
        f"(median of {repeats}, range; peak RSS of the median run)",
        "measure",
        "categories",
        "figure",
        "peak RSS MB",
        "time, times 20 categories",
        "target",
        "met",
    )
    measures = (
        ("ingest (events/s)", "ingest", events),
        ("second ingest (events/s)", "second", more),
        ("rebuild, default workers (wall s)", "rebuild", 0),
    )
    for label, key, count in measures:
        result.add_section()
        base = statistics.median(wall for wall, _ in found[20][key])
        for categories in CATEGORY_COUNTS:
            runs = found[categories][key]
            walls = [wall for wall, _ in runs]
            wall = statistics.median(walls)
            rss = sorted(runs)[len(runs) // 2][1]
            ratio = wall / base
            last = categories == MANY
            result.add_row(
                label if categories == 20 else "",
                f"{categories:,}",
                spread([count / w for w in walls], rate) if count else spread(walls, seconds),
                rss,
                f"{ratio:.2f}",
                f"<= {CATEGORIES_TARGET}" if last else "",
                verdict(ratio <= CATEGORIES_TARGET) if last else "",
            )
    return result


def goal_open(ws: Workspace, repeats: int) -> Table:
    """Goal 5: status and a catch-up of nothing on a large store, fresh processes."""
    events = ws.sizes.opened
    store, ingested = ws.ingest("opened", ws.source(events))
    assert ingested["events"] == events, ingested
    note("rebuild, so that a catch-up has nothing to apply")
    cli("rebuild", "--store", store, "--json")
    checked = json.loads(cli("catchup", "--store", store, "--json")[2])
    assert checked["events_applied"] == 0, checked["events_applied"]
    commands = {
        "eventfold --version (start-up)": ("--version",),
        "eventfold status": ("status", "--store", store),
        "eventfold catchup (0 events to apply)": ("catchup", "--store", store),
    }
    runs: dict[str, list[tuple[float, float, str]]] = {label: [] for label in commands}
    for _ in range(repeats):
        for label, args in commands.items():
            runs[label].append(cli(*args))
    ws.remove(store)
    result = table(
        f"Goal 5: opening a store of {events:,} events, fresh processes "
        f"(median of {repeats}, range)",
        "command",
        "wall s",
        "peak RSS MB",
        "times the start-up",
        "target",
        "met",
    )
    floor = statistics.median(r[0] for r in runs[next(iter(commands))])
    for i, (label, found) in enumerate(runs.items()):
        wall = statistics.median(r[0] for r in found)
        result.add_row(
            label,
            spread([r[0] for r in found], seconds),
            f"{max(r[1] for r in found):.0f}",
            f"{wall / floor:.2f}",
            f"< {OPEN_TARGET} s" if i else "",
            verdict(wall < OPEN_TARGET) if i else "",
        )
    return result


GOALS: dict[int, Callable[[Workspace, int], Table]] = {
    1: goal_disk,
    2: goal_rebuild,
    3: goal_ingest,
    4: goal_categories,
    5: goal_open,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="times the issue's sizes")
    parser.add_argument("--goals", default="1,2,3,4,5", help="which goals, e.g. 1,5")
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="interleaved runs in goals 2, 3 and 5, rounds in goal 4 (median)",
    )
    args = parser.parse_args()
    goals = sorted({int(goal) for goal in args.goals.split(",")})
    sizes = Sizes.scaled(args.scale)
    console = Console(width=130)
    started = time.perf_counter()
    console.print(f"[bold]Machine:[/bold] {machine().describe()}", highlight=False)
    console.print(
        f"Sizes (scale {args.scale}): {sizes.base:,} events; goal 3 also {sizes.large:,}; "
        f"goal 4's second ingest {sizes.more:,}; goal 5 {sizes.opened:,}",
        highlight=False,
    )
    root = tempfile.mkdtemp(prefix="eventfold-bench-goals-")
    try:
        ws = Workspace(root, sizes, goals)
        for goal in goals:
            begun = time.perf_counter()
            console.print(GOALS[goal](ws, args.repeats))
            console.print(f"(goal {goal}: {time.perf_counter() - begun:,.0f} s)\n")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    console.print(
        f"Whole run: {(time.perf_counter() - started) / 60:.1f} min; "
        f"load average at the end {machine().load}",
        highlight=False,
    )


if __name__ == "__main__":
    main()
