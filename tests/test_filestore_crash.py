"""Kill a writer with SIGKILL at every point of a commit: every acknowledged commit survives.

The child kills itself at a failpoint (``processes.run_until_failpoint``): before a commit's
write, half-way through it (a torn tail), after the write, after the fsync,
and around the renames of index checkpoints. Points take turns, the pass at
which each fires is random. EVENTFOLD_CRASH_ITERATIONS sets the number of
kills (default 48).
"""

from __future__ import annotations

import os
import random
import sys
from collections import defaultdict
from pathlib import Path

from processes import run_until_failpoint
from store_child import SETTINGS, commit_events, commit_states
from storehelpers import factory_for, recorder_of

CHILD = str(Path(__file__).with_name("store_child.py"))
ITERATIONS = int(os.environ.get("EVENTFOLD_CRASH_ITERATIONS", "48"))
# (point, the highest pass at which it may fire): the child writes until it dies,
# so every pass is reached; index checkpoints are renamed every few commits.
POINTS = [
    ("log.before-write", 40),
    ("log.torn-write", 40),
    ("log.after-write", 40),
    ("log.after-fsync", 40),
    ("file.before-rename", 4),
    ("file.after-rename", 4),
]


def settings() -> dict[str, str]:
    return {k.removeprefix("FILESTORE_").lower(): v for k, v in SETTINGS.items()}


def test_sigkill_at_every_commit_point_keeps_every_acknowledged_commit(
    store_path: Path,
) -> None:
    rng = random.Random(20261121)
    acknowledged: dict[int, tuple[int, int]] = {}
    next_commit, torn_tails_dropped = 0, 0
    for iteration in range(ITERATIONS):
        point, most = POINTS[iteration % len(POINTS)]
        count = rng.randint(1, most)
        done = run_until_failpoint(
            [sys.executable, CHILD, str(store_path), str(next_commit)], point, count
        )
        # Only whole lines are acknowledgements (a line is printed after its commit).
        for line in done.stdout.split("\n")[1:-1]:
            commit, first_id, size = map(int, line.split())
            acknowledged[commit] = (first_id, size)

        factory = factory_for(store_path, **settings())
        recorder = recorder_of(factory)
        notifications = recorder.select_notifications(None, 10**9)  # recovers, as a writer
        if point == "log.torn-write":
            assert any("dropped a torn tail" in n for n in recorder.log.recovery_notes), (
                f"a commit cut short at {point}@{count} was not dropped as a torn tail"
            )
            torn_tails_dropped += 1
        ids = [n.id for n in notifications]
        assert ids == list(range(1, len(ids) + 1)), "notification ids have a gap"
        present: dict[int, list[tuple[int, bytes]]] = defaultdict(list)
        for n in notifications:
            present[int(n.state.split(b":")[0])].append((n.id, n.state))
        for commit, events in present.items():  # no partial commit is visible
            assert [s for _, s in events] == commit_states(commit)
        for commit, (first_id, size) in acknowledged.items():
            assert commit in present, f"acknowledged commit {commit} was lost"
            assert [i for i, _ in present[commit]] == list(range(first_id, first_id + size))
        next_commit = max(present, default=-1) + 1
        # New appends work after recovery.
        new_ids = recorder.insert_events(commit_events(next_commit))
        assert new_ids is not None
        assert new_ids[0] == len(ids) + 1
        acknowledged[next_commit] = (new_ids[0], len(new_ids))
        next_commit += 1
        factory.close()
    assert torn_tails_dropped == len(range(1, ITERATIONS, len(POINTS)))
