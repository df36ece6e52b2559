"""Kill -9 during ingest, again and again: never a lost event, never one counted twice.

After every kill the store must hold exactly the events of the source prefix
it says it has ingested (``Source.position``), by an independent reference;
at the end, the totals of the whole source. ``EVENTFOLD_INGEST_KILLS`` sets
how many kills land mid-run (default 20).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ingesthelpers import reference_totals, store_totals

from eventfold.application.app import open_store
from eventfold.application.sample import SampleRates, write_sample
from eventfold.domain.model import Source

KILLS = int(os.environ.get("EVENTFOLD_INGEST_KILLS", "20"))


def start_ingest(source: Path, store: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "eventfold", "ingest", str(source), "--store", str(store),
         "--batch", "5", "--json"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def ingested_prefix(store: Path, source: Path) -> int:
    app = open_store(str(store))
    try:
        source_state: Source = app.repository.get(Source.create_id(str(source.resolve())))
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
    rng = random.Random(3)
    kills, positions, delay = 0, [0], 1.0
    while kills < KILLS:
        child = start_ingest(source, store)
        time.sleep(delay * rng.uniform(0.2, 1.0))  # start-up, digest, or mid-commit
        if child.poll() is not None:  # it finished: start over in a new store
            assert child.returncode == 0, child.stderr.read() if child.stderr else ""
            delay *= 0.7
            ingested_prefix(store, source)
            store = tmp_path / f"store-{kills}"
            positions = [0]
            continue
        child.send_signal(signal.SIGKILL)
        child.wait()
        kills += 1
        positions.append(ingested_prefix(store, source))
        print(f"kill {kills}: ingested {positions[-1]} bytes", file=sys.stderr)
        assert positions[-1] >= positions[-2]
    final = start_ingest(source, store)
    _, err = final.communicate(timeout=300)
    assert final.returncode == 0, err.decode()
    assert ingested_prefix(store, source) == source.stat().st_size
    app = open_store(str(store))
    try:
        assert store_totals(app) == reference_totals(source)
    finally:
        app.close()
