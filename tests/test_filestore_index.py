"""Index runs: lookups across fence blocks agree with a plain sorted list."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventfold.infra.filestore.index import originator_key
from eventfold.infra.filestore.runs import BLOCK_ENTRIES, ENTRY, VERSION_BIAS, Run, write_run


def test_run_lookups_agree_across_block_boundaries(tmp_path: Path) -> None:
    # One originator with versions spanning three blocks among many others.
    long_key = originator_key("long-lived")
    pairs = [(originator_key(f"agg-{i}"), 1) for i in range(BLOCK_ENTRIES * 3)]
    pairs += [(long_key, v) for v in range(1, BLOCK_ENTRIES * 2 + 7)]
    entries = sorted(ENTRY.pack(k, v + VERSION_BIAS, 0) for k, v in pairs)
    entries = [e[:24] + ENTRY.pack(b"\0" * 16, 0, n + 1)[24:] for n, e in enumerate(entries)]
    count, crc = write_run(str(tmp_path / "run.idx"), [entries])
    run = Run(str(tmp_path / "run.idx"), count, crc)
    try:
        assert run.verify() is None
        for n, entry in enumerate(entries):
            key, biased, _ = ENTRY.unpack(entry)
            assert run.find(key, biased - VERSION_BIAS) == n + 1
        assert run.find(long_key, 0) is None
        assert run.find(long_key, BLOCK_ENTRIES * 2 + 7) is None
        assert run.find(originator_key("absent"), 1) is None
        versions = list(run.versions(long_key))
        assert [v for v, _ in versions] == list(range(1, BLOCK_ENTRIES * 2 + 7))
        assert list(run.versions(originator_key("absent"))) == []
        assert run.last_version(long_key) == BLOCK_ENTRIES * 2 + 6
        assert run.last_version(originator_key("absent")) is None
        for n in range(0, BLOCK_ENTRIES * 3, 37):
            assert run.last_version(originator_key(f"agg-{n}")) == 1
        assert [e for e in run.entries()] == entries
    finally:
        run.close()


def test_duplicates_within_one_call_are_caught_whatever_the_order(tmp_path: Path) -> None:
    from uuid import uuid4

    import pytest
    from eventsourcing.persistence import IntegrityError, StoredEvent

    from eventfold.infra.filestore import FileStoreFactory

    factory = FileStoreFactory({"FILESTORE_PATH": str(tmp_path)})
    recorder = factory.application_recorder()
    a = uuid4()
    recorder.insert_events([StoredEvent(a, 1, "t", b"1")])
    for versions in ([5, 3, 7, 7], [2, 2], [1], [4, 6, 4]):
        events = [StoredEvent(a, v, "t", b"x") for v in versions]
        with pytest.raises(IntegrityError):
            recorder.insert_events(events)
    assert recorder.insert_events([StoredEvent(a, v, "t", b"y") for v in (3, 2, 9)])
    assert recorder.max_notification_id() == 4
    factory.close()


@pytest.mark.parametrize(
    ("left", "right", "blocks"),
    [(0, 5, 1), (7, 0, 1), (1000, 370, 1), (3000, 3000, 2), (5, 3000, 1)],
)
def test_merging_runs_in_chunks_gives_the_sorted_union(
    tmp_path: Path, left: int, right: int, blocks: int
) -> None:
    import random

    from eventfold.infra.filestore.runs import merge_entries

    rng = random.Random(left * 7 + right)
    all_entries = sorted({rng.randbytes(32) for _ in range(left + right)})
    rng.shuffle(all_entries)
    runs = []
    for name, part in (("a", all_entries[:left]), ("b", all_entries[left:])):
        count, crc = write_run(str(tmp_path / name), [sorted(part)])
        runs.append(Run(str(tmp_path / name), count, crc))
    merged = [e for c in merge_entries(runs[0], runs[1], blocks) for e in c]
    assert merged == sorted(all_entries)
    for run in runs:
        run.close()
