"""Kill -9 during ingest, again and again: never a lost event, never one counted twice.

Each run of ``eventfold ingest`` kills itself at a failpoint (``processes``):
at start-up, before a batch's commit, before, in the middle of, or after the
commit's write, or after the commit; or its reading process is killed (the run
must then fail, never end as if the source had ended). After every kill the store must hold
exactly the events of the source prefix it says it has ingested
(``Source.position``), by an independent reference; at the end, the totals
of the whole source. ``EVENTFOLD_INGEST_KILLS`` sets the number of kills
(default 20).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from eventsourcing.application import AggregateNotFoundError

from eventfold.application.app import open_store
from eventfold.application.demo.sample import SampleRates, write_sample
from eventfold.application.ingest import READER_PROCESS_BYTES
from eventfold.domain.model import Source
from ingesthelpers import reference_totals, store_totals
from processes import HANG, armed, assert_killed_at, eventfold

KILLS = int(os.environ.get("EVENTFOLD_INGEST_KILLS", "20"))
BATCH = 5
# Each point is passed at least once per batch (``ingest.started`` once per run).
POINTS = (
    "ingest.started",
    "ingest.before-commit",
    "log.before-write",
    "log.torn-write",
    "log.after-write",
    "ingest.after-commit",
    "reader.after-batch",
)


def ingest(
    source: Path, store: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        eventfold("ingest", str(source), "--store", str(store), "--batch", str(BATCH), "--json"),
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG,
        check=False,
    )


def ingested_prefix(store: Path, source: Path) -> int:
    """How far the store says the source is ingested; checks the store holds exactly that."""
    app = open_store(str(store))
    try:
        try:
            source_state: Source = app.repository.get(Source.create_id(str(source.resolve())))
        except AggregateNotFoundError:  # killed before the first commit: nothing yet
            position = 0
        else:
            position = source_state.position
        prefix = store.parent / "prefix.jsonl"
        prefix.write_bytes(source.read_bytes()[:position])
        assert store_totals(app) == reference_totals(prefix), f"at byte {position}"
        return position
    finally:
        app.close()


@pytest.mark.slow
def test_kill_9_during_ingest_loses_nothing_and_counts_nothing_twice(tmp_path: Path) -> None:
    source, store = tmp_path / "events.jsonl", tmp_path / "store"
    rates = SampleRates(duplicates=0.05, conflicts=0.02, invalid=0.02, out_of_order=0.3)
    with source.open("wb") as f:
        write_sample(f, 20_000, rates=rates, seed=11)
    data = source.read_bytes()
    rng = random.Random(3)
    landed, positions, stores = 0, [0], 1
    for kill in range(KILLS):
        batches_left = data.count(b"\n", positions[-1]) // BATCH
        if batches_left < 2:  # too little left to kill in: go on in a new store
            store, positions, stores = tmp_path / f"store-{stores}", [0], stores + 1
            batches_left = data.count(b"\n") // BATCH
        point = POINTS[kill % len(POINTS)]
        left = len(data) - positions[-1]
        if point == "reader.after-batch" and left <= READER_PROCESS_BYTES:
            point = "ingest.after-commit"  # no reading process for so little
        count = 1 if point == "ingest.started" else rng.randint(1, min(batches_left - 1, 400))
        if point == "reader.after-batch":  # the process reads at least the last 3/4
            count = rng.randint(1, max(1, batches_left * 3 // 4 - 1))
        done = ingest(source, store, armed(point, count))
        if point == "reader.after-batch":
            assert done.returncode == 2, done.stderr
            assert f"failpoint {point}@{count} reached" in done.stderr
            assert done.stderr.strip().splitlines()[-1].startswith("eventfold: read failed: ")
        else:
            assert_killed_at(done, point, count)
        landed += 1
        positions.append(ingested_prefix(store, source))
        print(
            f"kill {kill + 1} at {point}@{count}: ingested {positions[-1]} bytes", file=sys.stderr
        )
        assert positions[-1] >= positions[-2]
    assert landed == KILLS  # every kill landed mid-run, by construction
    final = ingest(source, store)
    assert final.returncode == 0, final.stderr
    assert ingested_prefix(store, source) == source.stat().st_size
    app = open_store(str(store))
    try:
        assert store_totals(app) == reference_totals(source)
    finally:
        app.close()
