"""One writer process per store; readers in other processes see only commits."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest

from eventfold.infra.errors import StoreLockedError
from processes import HANG
from store_child import SETTINGS, commit_states
from storehelpers import factory_for, new_events, recorder_of

CHILD = str(Path(__file__).with_name("store_child.py"))


def start_writer(store: Path, first: int = 0, last: int | None = None) -> subprocess.Popen[str]:
    args = [sys.executable, CHILD, str(store), str(first)]
    if last is not None:
        args.append(str(last))
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def settings() -> dict[str, str]:
    return {k.removeprefix("FILESTORE_").lower(): v for k, v in SETTINGS.items()}


def test_second_writer_process_gets_a_clear_error(store_path: Path) -> None:
    writer = start_writer(store_path)
    try:
        assert writer.stdout is not None
        writer.stdout.readline()  # it has written, so it holds the lock
        factory = factory_for(store_path, lock_timeout=0.2, **settings())
        recorder = recorder_of(factory)
        with pytest.raises(StoreLockedError, match=rf"pid {writer.pid}\)"):
            recorder.insert_events(new_events(1))
        factory.close()
    finally:
        writer.kill()
        writer.wait(HANG)


def test_reader_in_another_process_sees_only_whole_commits(store_path: Path) -> None:
    writer = start_writer(store_path, 0, 400)
    factory = factory_for(store_path, **settings())
    recorder = recorder_of(factory)
    seen_max = 0
    try:
        while writer.poll() is None or seen_max < (recorder.max_notification_id() or 0):
            notifications = recorder.select_notifications(None, 10**9)
            ids = [n.id for n in notifications]
            assert ids == list(range(1, len(ids) + 1))
            by_commit: dict[int, list[bytes]] = defaultdict(list)
            for n in notifications:
                by_commit[int(n.state.split(b":")[0])].append(n.state)
            for commit, got in by_commit.items():
                assert got == commit_states(commit)  # whole commits, byte for byte
            seen_max = max(seen_max, len(ids))
            time.sleep(0.01)
    finally:
        writer.wait(HANG)
    assert writer.returncode == 0
    assert len(by_commit) == 400
    factory.close()


def test_subscription_yields_events_committed_by_another_process(
    store_path: Path,
) -> None:
    factory = factory_for(store_path, **settings())
    recorder = recorder_of(factory)
    received: list[bytes] = []
    wanted = sum(len(commit_states(c)) for c in range(3))

    subscribed = threading.Event()

    def consume() -> None:
        with recorder.subscribe(gt=None) as subscription:
            subscribed.set()
            for notification in subscription:
                received.append(notification.state)
                if len(received) == wanted:
                    break

    thread = threading.Thread(target=consume)
    thread.start()
    assert subscribed.wait(HANG), "the subscription did not start"
    writer = start_writer(store_path, 0, 3)  # commits after the subscription began
    assert writer.wait(HANG) == 0
    thread.join(HANG)
    assert not thread.is_alive(), "the subscription did not yield the other process's commits"
    assert received == [s for c in range(3) for s in commit_states(c)]
    factory.close()
