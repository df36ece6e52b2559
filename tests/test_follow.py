"""`follow`: the projection stays current while another process ingests."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import signal
import struct
import subprocess
import termios
import threading
import time
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


class FollowCommand:
    """``eventfold follow`` in a child process with stdout piped: the lines it printed so far."""

    def __init__(self, store: Path, *options: str) -> None:
        self.process = subprocess.Popen(
            eventfold("follow", "--store", str(store), *options),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=os.environ | {"COLUMNS": "200"},
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for_line(self, needle: str, what: str) -> None:
        wait_until(
            lambda: any(needle in line for line in self.lines) or self.process.poll() is not None,
            what,
        )
        assert any(needle in line for line in self.lines), (self.lines, self.stop())

    def stop(self) -> str:
        """SIGINT, then everything it printed afterwards on stdout; stderr is returned."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=HANG)
            self.reader.join(HANG)
            assert self.process.stderr is not None
            err = self.process.stderr.read()
        finally:
            self.process.kill()
        assert self.process.returncode == 0, err
        return err


def status_of(store: Path) -> Any:
    """``eventfold status --json`` of ``store``, run as another process."""
    done = subprocess.run(
        eventfold("status", "--store", str(store), "--json"),
        capture_output=True,
        text=True,
        check=True,
        timeout=HANG,
    )
    return json.loads(done.stdout)


def last_notification_id(store: Path) -> int:
    return int(status_of(store)["last_notification_id"])


def test_follow_shows_the_current_state_at_once_before_any_new_event(tmp_path: Path) -> None:
    source, store = tmp_path / "s.jsonl", tmp_path / "store"
    write_events(source, 0, 100)
    ingest_in_another_process(source, store)
    last = last_notification_id(store)
    follower = FollowCommand(store)
    try:
        # No event is ingested while it runs: the line can only come from the catch-up.
        follower.wait_for_line(
            f"position {last:,}, 100 events applied", "follow to show the caught-up state"
        )
    finally:
        follower.stop()


def test_follow_shows_each_burst_without_waiting_for_a_further_event(tmp_path: Path) -> None:
    """Piped, follow prints a line per second in which the position moved: the last line of a
    burst shows its whole count though no event follows it; counts read "1 event", "50 events"."""
    source, store = tmp_path / "s.jsonl", tmp_path / "store"
    source.write_text("")
    ingest_in_another_process(source, store)  # an empty store
    follower = FollowCommand(store)
    try:
        follower.wait_for_line("0 events applied", "follow to show the empty store")
        write_events(source, 0, 1)
        ingest_in_another_process(source, store)
        follower.wait_for_line(", 1 event applied", "follow to show the one event")
        write_events(source, 1, 49)
        ingest_in_another_process(source, store)
        follower.wait_for_line(", 50 events applied", "follow to show the burst of 49")
    finally:
        follower.stop()
    shown = [line for line in follower.lines if line.startswith("following ")]
    assert len(shown) == len(set(shown)), "a line is printed only when the position moved"


def test_follow_snapshots_while_idle_so_status_shows_no_lag(tmp_path: Path) -> None:
    source, store = tmp_path / "s.jsonl", tmp_path / "store"
    write_events(source, 0, 100)
    ingest_in_another_process(source, store)
    follower = FollowCommand(store, "--snapshot-seconds", "1", "--json")
    try:
        wait_until(lambda: applied_in_newest_snapshot(store) == 100, "follow's catch-up")
        write_events(source, 100, 50)
        ingest_in_another_process(source, store)  # no event is ingested after this one
        last = last_notification_id(store)

        def lag() -> int | None:
            (projection,) = status_of(store)["projections"]
            return None if projection["lag"] is None else int(projection["lag"])

        wait_until(lambda: lag() == 0, "status to show the idle follow's snapshot, lag 0")
    finally:
        follower.stop()
    doc = json.loads("".join(follower.lines))
    assert doc["position"] == last
    assert doc["events_applied"] == 150


def test_follow_reports_the_events_and_the_wall_time_since_it_started(tmp_path: Path) -> None:
    source, store = tmp_path / "s.jsonl", tmp_path / "store"
    write_events(source, 0, 100)
    ingest_in_another_process(source, store)
    app = open_store(str(store))
    projector = Projector(app, str(store), CategoryTotals())
    with Following(projector) as follower:
        follower.wait_for_count(100, "follow to show the caught-up state")
        running_since = time.monotonic()  # follow was running before this
        write_events(source, 100, 50)
        ingest_in_another_process(source, store)
        follower.wait_for_count(150, "follow to apply the 50 events")
        observed = time.monotonic() - running_since
    app.close()
    assert follower.report.events_applied == 150  # the catch-up's 100, then 50
    assert follower.report.elapsed >= observed


def test_follow_redraws_on_a_clock_while_no_event_arrives(tmp_path: Path) -> None:
    """The live display (``changes_only`` off) is updated on a clock, so its time moves on
    while the store is idle."""
    source, store = tmp_path / "s.jsonl", tmp_path / "store"
    write_events(source, 0, 10)
    ingest_in_another_process(source, store)
    app = open_store(str(store))
    projector = Projector(app, str(store), CategoryTotals())
    stop, times = threading.Event(), []
    follower = threading.Thread(
        target=projector.follow,
        args=(stop, lambda report: times.append(report.elapsed)),
        kwargs={"update_seconds": 0.05},
    )
    follower.start()
    try:
        wait_until(lambda: len(times) >= 3, "three updates with no new event")
    finally:
        stop.set()
        follower.join(HANG)
        app.close()
    assert times[:3] == sorted(set(times[:3]))  # each later than the one before


def test_on_a_short_terminal_the_follow_line_stays_visible(tmp_path: Path) -> None:
    """The live display on a terminal 12 rows high, with more categories than rows: the
    table is cut at the bottom of the screen, never the line that says where follow is."""
    source, store = tmp_path / "s.jsonl", tmp_path / "store"
    with source.open("w", encoding="utf-8") as f:
        for i in range(40):
            f.write(json.dumps({"id": i, "category": f"category-{i:02d}", "value": i}) + "\n")
    ingest_in_another_process(source, store)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 12, 80, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    child = subprocess.Popen(
        eventfold("follow", "--store", str(store)),
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=subprocess.PIPE,
        env=env | {"TERM": "xterm"},
    )
    os.close(slave)
    drawn = bytearray()
    try:

        def table_drawn() -> bool:
            try:
                drawn.extend(os.read(master, 65536))
            except OSError:  # the child closed the terminal
                return True
            return b"category-00" in drawn

        wait_until(table_drawn, "follow to draw its live table")
        assert b"following category_totals: position " in drawn, drawn.decode(errors="replace")
    finally:
        child.send_signal(signal.SIGINT)
        child.wait(timeout=HANG)
        os.close(master)
    assert child.returncode == 0
