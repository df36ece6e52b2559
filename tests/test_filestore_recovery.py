"""Damage is named, not skipped: torn tails are dropped, corruption is reported."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from eventfold.infra.errors import StoreCorruptedError
from eventfold.infra.filestore.format import HEADER2_SIZE
from storehelpers import (
    commit_offsets,
    factory_for,
    file_size,
    flip_byte,
    new_events,
    recorder_of,
    segment,
    states,
)


def write_commits(path: Path, commits: int, per_commit: int = 3, **settings: int) -> None:
    factory = factory_for(path, **settings)
    recorder = recorder_of(factory)
    for c in range(commits):
        recorder.insert_events(new_events(per_commit, tag=f"c{c}"))
    factory.close()


def crash_before_the_index_flush(path: Path) -> None:
    """Leave the log as a writer killed before its first index checkpoint would:
    no commit is recorded as durable by the index."""
    shutil.rmtree(path / "stored_events" / "index")


def test_truncated_trailing_commit_is_ignored(store_path: Path) -> None:
    write_commits(store_path, 5)
    crash_before_the_index_flush(store_path)
    seg = segment(store_path)
    last = commit_offsets(seg)[-1]
    with open(seg, "r+b") as f:
        f.truncate(file_size(seg) - 7)

    factory = factory_for(store_path)
    recorder = recorder_of(factory)
    assert recorder.max_notification_id() == 12
    assert file_size(seg) == last
    torn = list((store_path / "stored_events" / "torn").iterdir())
    assert len(torn) == 1 and torn[0].stat().st_size > 0
    assert any(f"byte offset {last}" in n for n in recorder.log.recovery_notes)
    assert recorder.insert_events(new_events(2)) == [13, 14]
    factory.close()


@pytest.mark.parametrize(
    "tail",
    [b"EFC1\x00\x00\x00", bytes(4096)],
    ids=["partial_header_at_the_end", "zero_filled_tail"],
)
def test_is_a_torn_tail(store_path: Path, tail: bytes) -> None:
    write_commits(store_path, 2)
    seg = segment(store_path)
    size = file_size(seg)
    with open(seg, "ab") as f:
        f.write(tail)
    factory = factory_for(store_path)
    assert recorder_of(factory).max_notification_id() == 6
    assert file_size(seg) == size
    factory.close()


def test_checksum_mismatch_in_last_commit_is_reported_not_dropped(
    store_path: Path,
) -> None:
    write_commits(store_path, 4)
    seg = segment(store_path)
    last = commit_offsets(seg)[-1]
    size = file_size(seg)
    flip_byte(seg, last + HEADER2_SIZE + 20)
    with pytest.raises(StoreCorruptedError) as caught:
        factory_for(store_path).application_recorder()
    assert caught.value.path == str(seg)
    assert caught.value.offset == last + HEADER2_SIZE
    assert f"byte offset {last + HEADER2_SIZE}" in str(caught.value)
    assert file_size(seg) == size  # committed data is never truncated


def test_checksum_mismatch_in_middle_commit_is_reported_on_read(
    store_path: Path,
) -> None:
    write_commits(store_path, 4)
    seg = segment(store_path)
    second = commit_offsets(seg)[1]
    event_offset = second + HEADER2_SIZE  # the compressed body of commit 2
    flip_byte(seg, event_offset + 30)
    factory = factory_for(store_path)
    recorder = recorder_of(factory)
    with pytest.raises(StoreCorruptedError) as caught:
        recorder.select_notifications(None, 100)
    assert caught.value.offset == event_offset
    assert "checksum mismatch" in str(caught.value)
    factory.close()


def test_flipped_header_byte_in_middle_commit_is_reported_when_scanning(
    store_path: Path,
) -> None:
    write_commits(store_path, 4)
    shutil.rmtree(store_path / "stored_events" / "index")
    seg = segment(store_path)
    second = commit_offsets(seg)[1]
    flip_byte(seg, second + 9)
    with pytest.raises(StoreCorruptedError) as caught:
        factory_for(store_path).application_recorder()
    assert caught.value.offset == second
    assert "bad commit header" in caught.value.reason


def test_index_deleted_is_rebuilt(store_path: Path) -> None:
    write_commits(store_path, 40, per_commit=5, index_interval=30)
    shutil.rmtree(store_path / "stored_events" / "index")
    factory = factory_for(store_path, index_interval=30)
    recorder = recorder_of(factory)
    assert recorder.max_notification_id() == 200
    assert len(states(recorder)) == 200
    assert any("no index; rebuilding" in n for n in recorder.log.recovery_notes)
    assert (store_path / "stored_events" / "index" / "CHECKPOINT").exists()
    factory.close()
    # Reopening now reads only what follows the rebuilt checkpoint.
    factory = factory_for(store_path, index_interval=30)
    recorder = recorder_of(factory)
    assert recorder.log.frames_scanned == 0
    assert len(states(recorder)) == 200
    factory.close()


def test_stale_index_is_caught_up(store_path: Path, tmp_path: Path) -> None:
    write_commits(store_path, 10, index_interval=5)
    shutil.copytree(store_path / "stored_events" / "index", tmp_path / "old-index")
    write_commits(store_path, 10, index_interval=5)
    shutil.rmtree(store_path / "stored_events" / "index")
    shutil.copytree(tmp_path / "old-index", store_path / "stored_events" / "index")
    factory = factory_for(store_path, index_interval=5)
    recorder = recorder_of(factory)
    assert recorder.max_notification_id() == 60
    assert recorder.log.frames_scanned == 10
    assert [s.decode().split(":")[0] for s in states(recorder)][::3] == [
        f"c{c}" for c in range(10)
    ] * 2
    factory.close()


def test_an_index_of_more_than_the_log_holds_is_damage_never_a_rebuild(
    store_path: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    write_commits(other, 30, index_interval=5)
    write_commits(store_path, 7, index_interval=5)
    shutil.rmtree(store_path / "stored_events" / "index")
    shutil.copytree(other / "stored_events" / "index", store_path / "stored_events" / "index")
    size = file_size(segment(store_path))
    with pytest.raises(
        StoreCorruptedError, match="recorded commits up to notification 90 as durable"
    ):
        factory_for(store_path, index_interval=5).application_recorder()
    assert file_size(segment(store_path)) == size  # nothing dropped, the evidence kept
    assert (store_path / "stored_events" / "index" / "CHECKPOINT").exists()


def test_last_commits_lost_before_the_durable_mark_are_damage_not_a_torn_tail(
    store_path: Path,
) -> None:
    write_commits(store_path, 6)  # closed: the index records all 6 commits as durable
    seg = segment(store_path)
    offsets = commit_offsets(seg)
    with open(seg, "r+b") as f:
        f.truncate(offsets[-1] + 10)  # the last commit cut short
    with pytest.raises(StoreCorruptedError) as caught:
        factory_for(store_path).application_recorder()
    assert caught.value.path == str(seg) and caught.value.offset == offsets[-1]
    assert "as durable" in caught.value.reason
    with open(seg, "r+b") as f:  # zeroed instead: the same
        f.truncate(offsets[-3])
        f.write(bytes(file_size(seg) - offsets[-3] + 300))
    with pytest.raises(StoreCorruptedError, match="as durable"):
        factory_for(store_path).application_recorder()
    assert not (store_path / "stored_events" / "torn").exists()
    with open(seg, "r+b") as f:  # cut inside an earlier commit: named where the log ends
        f.truncate(offsets[1] + 20)
    with pytest.raises(StoreCorruptedError) as caught:
        factory_for(store_path).application_recorder()
    assert caught.value.offset == offsets[1] + 20
    assert f"ends at byte {offsets[1] + 20:,}, before its last durable commit" in str(caught.value)


def test_a_deleted_last_segment_is_damage_and_the_evidence_stays(store_path: Path) -> None:
    write_commits(store_path, 60, per_commit=4, segment_bytes=1024)
    segments = sorted((store_path / "stored_events").glob("*.seg"))
    segments[-1].unlink()
    for _ in range(2):  # and again: the failed open erased nothing
        with pytest.raises(StoreCorruptedError, match="segment is missing"):
            factory_for(store_path, segment_bytes=1024).application_recorder()


def test_a_missing_segment_in_the_middle_is_damage(store_path: Path) -> None:
    write_commits(store_path, 60, per_commit=4, segment_bytes=1024)
    crash_before_the_index_flush(store_path)
    segments = sorted((store_path / "stored_events").glob("*.seg"))
    segments[2].unlink()
    with pytest.raises(StoreCorruptedError) as caught:
        factory_for(store_path, segment_bytes=1024).application_recorder()
    assert caught.value.path == str(segments[2]) and "segment is missing" in caught.value.reason


def test_index_runs_agree_with_a_reference(store_path: Path) -> None:
    import random
    from uuid import uuid4

    rng = random.Random(7)
    originators = [uuid4() for _ in range(40)]
    versions = dict.fromkeys(originators, 0)
    reference: dict[object, list[bytes]] = {o: [] for o in originators}
    factory = factory_for(store_path, index_interval=16)
    recorder = recorder_of(factory)
    for i in range(300):
        o = rng.choice(originators)
        n = rng.randint(1, 3)
        batch = [StoredEvent(o, versions[o] + k, "t", f"{i}:{k}".encode()) for k in range(n)]
        recorder.insert_events(batch)
        versions[o] += n
        reference[o] += [e.state for e in batch]
    assert len(recorder.log.index.runs) > 1
    for o in originators:
        assert [e.state for e in recorder.select_events(o)] == reference[o]
        if reference[o]:
            old = StoredEvent(o, 0, "t", b"again")  # lives in an old run by now
            with pytest.raises(IntegrityError):
                recorder.insert_events([old])
    factory.close()
    factory = factory_for(store_path, index_interval=16)
    recorder = recorder_of(factory)
    for o in originators:
        got = recorder.select_events(o, gt=1, lte=4, desc=True, limit=2)
        want = [(v, s) for v, s in enumerate(reference[o]) if 1 < v <= 4][::-1][:2]
        assert [(e.originator_version, e.state) for e in got] == want
    factory.close()


def test_segments_roll_over_and_torn_commit_mid_log_is_corruption(
    store_path: Path,
) -> None:
    write_commits(store_path, 60, per_commit=4, segment_bytes=1024)
    log_dir = store_path / "stored_events"
    segments = sorted(log_dir.glob("*.seg"))
    assert len(segments) > 3
    factory = factory_for(store_path, segment_bytes=1024)
    assert len(states(recorder_of(factory))) == 240
    factory.close()
    shutil.rmtree(log_dir / "index")
    with open(segments[1], "r+b") as f:
        f.truncate(file_size(segments[1]) - 5)
    with pytest.raises(StoreCorruptedError) as caught:
        factory_for(store_path, segment_bytes=1024).application_recorder()
    assert caught.value.path == str(segments[1])
    assert "before the end of the log" in caught.value.reason
