"""`follow`: the projection stays current while another process ingests."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from eventfold.application.app import open_store
from eventfold.application.projecting import Projector
from eventfold.projections.builtin import CategoryTotals
from processes import HANG, Following, eventfold, wait_until


def write_events(path: Path, first: int, count: int) -> None:
    with path.open("a", encoding="utf-8") as f:
        for i in range(first, first + count):
            f.write(json.dumps({"id": i, "category": f"c{i % 3}", "value": i}) + "\n")


def ingest_in_another_process(source: Path, store: Path) -> None:
    subprocess.run(
        eventfold("ingest", str(source), "--store", str(store), "--batch", "50", "--json"),
        check=True,
        capture_output=True,
        timeout=HANG,
    )


def applied_in_newest_snapshot(store: Path) -> int:
    """Events applied in the newest snapshot of category_totals (0 before the first)."""
    snapshots = sorted((store / "projections" / "category_totals").glob("gen-*/snap-*.json"))
    try:
        return int(json.loads(snapshots[-1].read_bytes())["events_applied"]) if snapshots else 0
    except (OSError, ValueError):  # pruned between the listing and the read: look again
        return 0


def test_follow_sees_events_ingested_by_another_process(tmp_path: Path) -> None:
    source, store = tmp_path / "s.jsonl", tmp_path / "store"
    write_events(source, 0, 100)
    ingest_in_another_process(source, store)
    app = open_store(str(store))
    projector = Projector(app, str(store), CategoryTotals(), snapshot_every=75)
    with Following(projector) as follower:
        write_events(source, 100, 400)
        ingest_in_another_process(source, store)
        follower.wait_for_count(500, "follow to apply the 400 events ingested by another process")
    report = follower.report
    rebuilt = Projector(app, str(store), CategoryTotals()).rebuild()
    assert report.checksum == rebuilt.checksum
    assert report.snapshot_written is not None
    assert report.snapshot_written.checksum == rebuilt.checksum
    app.close()


def follow_stopped_by(
    store: Path, signum: int, meanwhile: Callable[[], None], awaited: str
) -> dict[str, Any]:
    """Run ``eventfold follow --json``, call ``meanwhile``, wait until follow's newest snapshot
    holds 100 events, send ``signum``; assert exit 0 and return the one JSON document."""
    follower = subprocess.Popen(
        eventfold("follow", "--store", str(store), "--snapshot-every", "1", "--json"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        meanwhile()
        # A snapshot after every applied event: the newest says how far follow has got.
        wait_until(
            lambda: applied_in_newest_snapshot(store) == 100 or follower.poll() is not None,
            awaited,
        )
        follower.send_signal(signum)
        out, err = follower.communicate(timeout=HANG)
    finally:
        follower.kill()
    assert follower.returncode == 0, err
    doc: dict[str, Any] = json.loads(out)  # stdout holds exactly one JSON document
    assert sum(c["count"] for c in doc["categories"].values()) == 100
    assert doc["mode"] == "follow"
    return doc


def test_follow_command_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    source, store = tmp_path / "s.jsonl", tmp_path / "store"
    write_events(source, 0, 10)
    ingest_in_another_process(source, store)

    def ingest_90_more() -> None:
        write_events(source, 10, 90)
        ingest_in_another_process(source, store)

    follow_stopped_by(
        store,
        signal.SIGINT,
        ingest_90_more,
        "follow to apply the 90 events ingested by another process",
    )


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_right_after_the_catch_up_still_ends_in_the_final_report(
    tmp_path: Path, signum: int
) -> None:
    """The signal lands just after the catch-up's snapshot, before or while follow subscribes:
    it stops follow there, exit 0, with the final document (never a hang, never a traceback)."""
    source, store = tmp_path / "s.jsonl", tmp_path / "store"
    write_events(source, 0, 100)
    ingest_in_another_process(source, store)
    follow_stopped_by(store, signum, lambda: None, "follow's catch-up to write its snapshot")
