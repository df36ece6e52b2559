"""A writer process for the multi-process and crash tests.

Usage: python store_child.py STORE FIRST_COMMIT [MAX_COMMITS]

Writes commits FIRST_COMMIT, FIRST_COMMIT+1, ... whose content is a pure
function of the commit number (see ``commit_states``), and prints
``<commit> <first id> <count>`` on stdout after each commit is acknowledged.
"""

from __future__ import annotations

import random
import sys
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from eventfold.infra.filestore import FileApplicationRecorder, FileStoreFactory

SETTINGS = {"FILESTORE_SEGMENT_BYTES": "65536", "FILESTORE_INDEX_INTERVAL": "150"}


def commit_states(commit: int) -> list[bytes]:
    """The states of commit ``commit``: 1 to 40 events of varied sizes."""
    rng = random.Random(commit)
    count = rng.randint(1, 40)
    return [
        f"{commit}:{i}:{count}:".encode() + rng.randbytes(rng.randint(0, 600)) for i in range(count)
    ]


def commit_events(commit: int) -> list[StoredEvent]:
    originator = UUID(int=commit + 1)
    return [
        StoredEvent(originator, i, f"topic{commit % 3}", state)
        for i, state in enumerate(commit_states(commit))
    ]


def main() -> None:
    store, first = sys.argv[1], int(sys.argv[2])
    last = int(sys.argv[3]) if len(sys.argv) > 3 else 10**9
    factory = FileStoreFactory({"FILESTORE_PATH": store, **SETTINGS})
    recorder = factory.application_recorder()
    assert isinstance(recorder, FileApplicationRecorder)
    print("ready", flush=True)
    for commit in range(first, last):
        ids = recorder.insert_events(commit_events(commit))
        assert ids
        print(commit, ids[0], len(ids), flush=True)
    factory.close()


if __name__ == "__main__":
    main()
