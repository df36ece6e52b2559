"""Kill a writer with SIGKILL at random moments; every acknowledged commit survives.

EVENTFOLD_CRASH_ITERATIONS sets the number of kills (default 50).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from store_child import SETTINGS, commit_events, commit_states
from storehelpers import factory_for, recorder_of

CHILD = str(Path(__file__).with_name("store_child.py"))
ITERATIONS = int(os.environ.get("EVENTFOLD_CRASH_ITERATIONS", "50"))


def settings() -> dict[str, str]:
    return {k.removeprefix("FILESTORE_").lower(): v for k, v in SETTINGS.items()}


def test_sigkill_at_random_moments_keeps_every_acknowledged_commit(
    store_path: Path,
) -> None:
    rng = random.Random(20261121)
    acknowledged: dict[int, tuple[int, int]] = {}
    next_commit = 0
    for _ in range(ITERATIONS):
        child = subprocess.Popen(
            [sys.executable, CHILD, str(store_path), str(next_commit)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.15))
        child.send_signal(signal.SIGKILL)
        out, _ = child.communicate()
        # Only whole lines are acknowledgements: the kill can cut the last one short.
        for line in out.split("\n")[:-1]:
            commit, first_id, count = map(int, line.split())
            acknowledged[commit] = (first_id, count)

        factory = factory_for(store_path, **settings())
        recorder = recorder_of(factory)
        notifications = recorder.select_notifications(None, 10**9)
        ids = [n.id for n in notifications]
        assert ids == list(range(1, len(ids) + 1)), "notification ids have a gap"
        present: dict[int, list[tuple[int, bytes]]] = defaultdict(list)
        for n in notifications:
            present[int(n.state.split(b":")[0])].append((n.id, n.state))
        for commit, events in present.items():  # no partial commit is visible
            assert [s for _, s in events] == commit_states(commit)
        for commit, (first_id, count) in acknowledged.items():
            assert commit in present, f"acknowledged commit {commit} was lost"
            assert [i for i, _ in present[commit]] == list(range(first_id, first_id + count))
        next_commit = max(present, default=-1) + 1
        # New appends work after recovery.
        new_ids = recorder.insert_events(commit_events(next_commit))
        assert new_ids is not None
        assert new_ids[0] == len(ids) + 1
        acknowledged[next_commit] = (new_ids[0], len(new_ids))
        next_commit += 1
        factory.close()
    assert len(acknowledged) > ITERATIONS
