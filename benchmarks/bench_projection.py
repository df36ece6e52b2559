"""Rebuild, catch-up and parallel rebuild of ``category_totals``, beside a plain fold.

The peer is the plainest correct fold of the same events straight from their
JSON Lines source, in one process: each line parsed by ``msgspec`` into a
typed struct with a ``Decimal`` value, seen ids skipped, totals added per
category. Every measurement is the wall time of a fresh process (start-up
counts), each run once, side by side.

    python benchmarks/bench_projection.py [N]     # default 1,000,000 events
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from decimal import Decimal
from typing import Any

import msgspec
from common import timed
from rich.console import Console
from rich.table import Table


class Line(msgspec.Struct):
    id: str | int
    category: str
    value: Decimal


def plain_fold(source: str) -> None:
    decode = msgspec.json.Decoder(Line).decode
    seen: set[str] = set()
    totals: dict[str, list[Any]] = {}
    with open(source, "rb") as f:
        for raw in f:
            line = decode(raw)
            event_id = str(line.id)
            if event_id in seen:
                continue
            seen.add(event_id)
            entry = totals.setdefault(line.category, [0, Decimal(0)])
            entry[0] += 1
            entry[1] += line.value
    print(json.dumps({"categories": len(totals)}))


def main() -> None:
    if sys.argv[1:2] == ["--plain"]:
        plain_fold(sys.argv[2])
        return
    events = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    work = tempfile.mkdtemp(prefix="eventfold-bench-projection-")
    try:
        from eventfold.application.demo.sample import write_sample

        source = os.path.join(work, "events.jsonl")
        with open(source, "wb") as f:
            write_sample(f, events)
        store = os.path.join(work, "store")
        cli = ["-m", "eventfold"]
        subprocess.run(
            [sys.executable, *cli, "ingest", source, "--store", store, "--json"],
            check=True,
            capture_output=True,
        )
        plain = timed("path", __file__, "--plain", source)
        rebuild = timed("-m", "eventfold", "rebuild", "--store", store, "--workers", "1", "--json")
        rebuild2 = timed("-m", "eventfold", "rebuild", "--store", store, "--workers", "2", "--json")
        default = timed("-m", "eventfold", "rebuild", "--store", store, "--json")
        default_workers = json.loads(default[2])["workers"]
        more = os.path.join(work, "more.jsonl")
        with open(more, "wb") as f:
            write_sample(f, 1000, first_id=events + 1, seed=99)
        subprocess.run(
            [sys.executable, *cli, "ingest", more, "--store", store, "--json"],
            check=True,
            capture_output=True,
        )
        catchup = timed("-m", "eventfold", "catchup", "--store", store, "--json")
        applied = json.loads(catchup[2])["events_applied"]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    cores = os.cpu_count()
    table = Table(title=f"category_totals over {events:,} stored events ({cores} cores)")
    for column in ("run (fresh process)", "wall s", "events/s", "peak RSS MB", "vs plain fold"):
        table.add_column(column, justify="left" if column.startswith("run") else "right")

    def row(label: str, result: tuple[float, float, str], count: int) -> None:
        table.add_row(
            label,
            f"{result[0]:.2f}",
            f"{count / result[0]:,.0f}",
            f"{result[1]:.0f}",
            f"{result[0] / plain[0]:.2f}x",
        )

    row("plain fold of the JSONL source (peer)", plain, events)
    row("eventfold rebuild --workers 1", rebuild, events)
    row("eventfold rebuild --workers 2", rebuild2, events)
    row(f"eventfold rebuild (default: {default_workers} workers here)", default, events)
    row(f"eventfold catchup ({applied:,} new events)", catchup, applied)
    Console(width=120).print(table)
    print(
        f"catch-up / rebuild wall time: {catchup[0] / rebuild[0]:.2f}; "
        f"rebuild / rebuild --workers 2: {rebuild[0] / rebuild2[0]:.2f}x"
    )


if __name__ == "__main__":
    main()
