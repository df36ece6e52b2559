"""A failed write or fsync raises, leaves nothing visible and poisons the writer."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

from eventfold.infra import fileio
from eventfold.infra.errors import StoreWriteError
from eventfold.infra.filestore import FileApplicationRecorder, FileStoreFactory
from storehelpers import factory_for, file_size, new_events, recorder_of, segment, states


def store_with_three_events(
    path: Path,
) -> tuple[FileStoreFactory, FileApplicationRecorder, int]:
    """A store holding one commit of three events, and its segment's size."""
    factory = factory_for(path)
    recorder = recorder_of(factory)
    recorder.insert_events(new_events(3, "ok"))
    return factory, recorder, file_size(segment(path))


def test_fsync_failure_poisons_the_writer(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    factory, recorder, size = store_with_three_events(store_path)

    def failing_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(fileio, "fsync", failing_fsync)
    with pytest.raises(StoreWriteError, match="refuses writes until it is reopened"):
        recorder.insert_events(new_events(2, "lost"))
    monkeypatch.undo()

    assert recorder.max_notification_id() == 3
    assert file_size(segment(store_path)) == size
    # Never retry the fsync and carry on: the writer stays refused.
    with pytest.raises(StoreWriteError, match="an earlier write failed"):
        recorder.insert_events(new_events(1, "after"))
    factory.close()

    factory = factory_for(store_path)
    recorder = recorder_of(factory)
    assert [s.split(b":")[0] for s in states(recorder)] == [b"ok"] * 3
    assert recorder.insert_events(new_events(1, "reopened")) == [4]
    factory.close()


def test_short_write_with_enospc_leaves_the_store_as_it_was(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    factory, recorder, size = store_with_three_events(store_path)
    calls: list[int] = []

    def half_then_full(fd: int, data: memoryview, offset: int) -> int:
        if calls:
            raise OSError(errno.ENOSPC, "No space left on device")
        calls.append(1)
        return os.pwrite(fd, data[: len(data) // 2], offset)

    monkeypatch.setattr(fileio, "pwrite", half_then_full)
    with pytest.raises(StoreWriteError, match="No space left"):
        recorder.insert_events(new_events(50, "big"))
    monkeypatch.undo()
    assert file_size(segment(store_path)) == size
    assert recorder.max_notification_id() == 3
    factory.close()
    factory = factory_for(store_path)
    assert len(states(recorder_of(factory))) == 3
    factory.close()


@pytest.fixture
def small_tmpfs(tmp_path: Path):  # type: ignore[no-untyped-def]
    mount_point = tmp_path / "tmpfs"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=192k", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=False)


def test_disk_full_on_a_real_filesystem_leaves_the_store_as_it_was(
    small_tmpfs: Path,
) -> None:
    store = small_tmpfs / "store"
    factory = factory_for(store, index_interval=10**6)
    recorder = recorder_of(factory)
    acknowledged = 0
    with pytest.raises(StoreWriteError, match="No space left on device"):
        for _ in range(10_000):
            ids = recorder.insert_events(new_events(20, "x" * 200))
            assert ids is not None
            acknowledged += len(ids)
    assert acknowledged > 0
    assert recorder.max_notification_id() == acknowledged
    factory.close()
    factory = factory_for(store, index_interval=10**6)
    recorder = recorder_of(factory)
    assert recorder.max_notification_id() == acknowledged
    assert len(states(recorder)) == acknowledged
    assert recorder.log.torn_tail is None
    factory.close()


def failing_for(monkeypatch: pytest.MonkeyPatch, fragment: str) -> None:
    """Make fsync fail with ENOSPC for files whose path holds ``fragment``."""
    real = fileio.fsync

    def fsync(fd: int) -> None:
        if fragment in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd)

    monkeypatch.setattr(fileio, "fsync", fsync)


@pytest.mark.parametrize(
    ("command", "fragment", "named"),
    [
        (["rebuild"], ".json.tmp", "projections/category_totals/gen-00000001/snap-"),
        (["ingest", "SOURCE"], "/dedup/run-", "/dedup/run-00000001.idx"),
        (["ingest", "SOURCE"], "/dedup/bloom-", "/dedup/bloom-"),
        (["ingest", "SOURCE"], "/quarantine/", "/quarantine/s.jsonl."),
    ],
)
def test_a_failed_write_names_the_file_and_the_operation_and_leaves_no_temporary_file(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
    fragment: str,
    named: str,
) -> None:
    from eventfold.cli import main

    source = tmp_path / "s.jsonl"
    source.write_text(
        "".join(f'{{"id": {i}, "category": "c", "value": {i}}}\n' for i in range(50)) + "not json\n"
    )
    store = tmp_path / "store"
    if command[0] != "ingest":
        assert main(["ingest", str(source), "--store", str(store), "--quiet"]) == 0
    failing_for(monkeypatch, fragment)
    args = [str(source) if a == "SOURCE" else a for a in command]
    assert main([*args, "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("eventfold: write failed: ") and err.count("\n") == 1, err
    assert named in err and "No space left on device (errno 28)" in err
    monkeypatch.undo()
    assert not [p for p in store.rglob("*.tmp")], "a temporary file was left behind"
    assert main(["ingest", str(source), "--store", str(store), "--quiet"]) == 0
    assert main(["verify", "--store", str(store), "--source", str(source), "--quiet"]) == 0


def test_temporary_files_a_crash_left_are_removed_on_the_next_open(tmp_path: Path) -> None:
    from eventfold.cli import main

    source = tmp_path / "s.jsonl"
    source.write_text("".join(f'{{"id": {i}, "category": "c", "value": {i}}}\n' for i in range(50)))
    store = tmp_path / "store"
    assert main(["ingest", str(source), "--store", str(store), "--quiet"]) == 0
    assert main(["rebuild", "--store", str(store), "--quiet"]) == 0
    generation = next((store / "projections" / "category_totals").glob("gen-*"))
    strays = [
        store / "eventfold_events" / "index" / "run-00000042.idx.tmp",
        store / "eventfold_events" / "index" / "CHECKPOINT.tmp",
        store / "dedup" / "bloom-00000042.tmp",
        generation / "snap-000000000099.json.tmp",
        store / "projections" / "category_totals" / "CURRENT.tmp",
    ]
    for path in strays:
        path.write_bytes(b"left by a crash")
    with source.open("a") as f:
        f.write('{"id": "more", "category": "c", "value": 1}\n')
    assert main(["ingest", str(source), "--store", str(store), "--quiet"]) == 0
    assert main(["catchup", "--store", str(store), "--quiet"]) == 0
    assert [p for p in strays if p.exists()] == []
