"""Reading events out of whole commits: the coarse offsets index, the walk across
commits and segments, both commit formats in one log, and the commit cache."""

from __future__ import annotations

import random
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import StoredEvent

from eventfold.infra.filestore import FileApplicationRecorder
from eventfold.infra.filestore.index import GROUP
from storehelpers import factory_for, recorder_of


def _write(store: Path, rng: random.Random, compression: str, calls: int) -> list[StoredEvent]:
    """``calls`` commits of 1 to 150 events over a few originators, with tiny segments
    and index intervals, so commits roll segments and the index is persisted often."""
    factory = factory_for(store, compression=compression, segment_bytes=4096, index_interval=50)
    recorder = recorder_of(factory)
    written: list[StoredEvent] = []
    versions: dict[UUID, int] = {}
    originators = [uuid4() for _ in range(5)]
    for _ in range(calls):
        batch = []
        for _ in range(rng.choice([1, 1, 2, 3, 64, 65, 150])):
            oid = rng.choice(originators)
            versions[oid] = versions.get(oid, 0) + 1
            state = rng.randbytes(rng.randint(0, 40)) + b"x" * rng.randint(0, 300)
            batch.append(StoredEvent(oid, versions[oid], rng.choice(["A", "B"]), state))
        recorder.insert_events(batch)
        written += batch
    factory.close()
    return written


def _same(a: StoredEvent, b: object) -> bool:
    return (a.originator_id, a.originator_version, a.topic, a.state) == (
        b.originator_id,  # type: ignore[attr-defined]
        b.originator_version,  # type: ignore[attr-defined]
        b.topic,  # type: ignore[attr-defined]
        b.state,  # type: ignore[attr-defined]
    )


def test_every_event_is_read_by_id_stream_and_page_from_both_formats(store_path: Path) -> None:
    rng = random.Random(5)
    written = _write(store_path, rng, "zstd", 30)
    written += _write(store_path, rng, "none", 20)  # a log of both formats
    written += _write(store_path, rng, "zstd", 20)
    assert len(written) > 5 * GROUP
    factory = factory_for(store_path)
    recorder = recorder_of(factory)
    assert isinstance(recorder, FileApplicationRecorder)
    log = recorder.log

    order = list(range(1, len(written) + 1))
    rng.shuffle(order)
    for nid, event in zip(order, log.read_events(order), strict=True):
        assert event.id == nid
        assert _same(written[nid - 1], event)

    pages = recorder.select_notifications(None, len(written) + 10)
    assert [n.id for n in pages] == list(range(1, len(written) + 1))
    assert all(_same(e, n) for e, n in zip(written, pages, strict=True))

    for oid in {e.originator_id for e in written}:
        stream = [e for e in written if e.originator_id == oid]
        read = recorder.select_events(oid)
        assert [(e.originator_version, e.state) for e in read] == [
            (e.originator_version, e.state) for e in stream
        ]

    for start in (1, 2, GROUP, GROUP + 1, len(written) // 2, len(written)):
        last = min(len(written), start + rng.randint(0, 400))
        scanned = list(log.scan_joined(start, last, "A", page=50))
        wanted = [nid for nid in range(start, last + 1) if written[nid - 1].topic == "A"]
        assert [nid for ids, _ in scanned for nid in ids] == wanted
        joined = b",".join(states for _, states in scanned)
        assert joined == b",".join(written[nid - 1].state for nid in wanted)
    factory.close()


def test_an_offsets_entry_that_points_too_far_is_rebuilt_from_the_log(
    store_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    written = _write(store_path, random.Random(8), "zstd", 40)
    offsets = next(store_path.glob("*_events")) / "index" / "offsets"
    data = bytearray(offsets.read_bytes())
    assert len(data) >= 24
    data[8:16] = data[-8:]  # the second group now points at a commit after its own
    offsets.write_bytes(bytes(data))
    factory = factory_for(store_path)
    recorder = recorder_of(factory)
    assert isinstance(recorder, FileApplicationRecorder)
    nids = list(range(GROUP + 1, min(len(written), 2 * GROUP) + 1))
    with caplog.at_level("WARNING"):
        read = recorder.log.read_events(nids)
    assert [e.id for e in read] == nids
    assert all(_same(written[e.id - 1], e) for e in read)
    assert "rebuilding the index from the log" in caplog.text
    factory.close()


def test_the_highest_version_remembered_stays_exact_through_appends_and_flushes(
    store_path: Path,
) -> None:
    from eventfold.infra.filestore.index import originator_key

    rng = random.Random(3)
    factory = factory_for(store_path, index_interval=40)
    recorder = recorder_of(factory)
    assert isinstance(recorder, FileApplicationRecorder)
    log = recorder.log
    originators = [uuid4() for _ in range(8)]
    highest: dict[UUID, int] = {}
    for _ in range(60):
        batch = []
        for oid in rng.sample(originators, rng.randint(1, 4)):
            for _ in range(rng.randint(1, 20)):
                highest[oid] = highest.get(oid, 0) + 1
                batch.append(StoredEvent(oid, highest[oid], "A", b"{}"))
        recorder.insert_events(batch)
        for oid in originators:  # every answer remembered is checked again next time
            assert log.max_version(originator_key(oid)) == highest.get(oid)
    factory.close()
    factory = factory_for(store_path)
    log = recorder_of(factory).log
    for oid in originators:
        assert log.max_version(originator_key(oid)) == highest.get(oid)
    factory.close()


SHUT_DOWN = """
import sys
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
env = {"PERSISTENCE_MODULE": "eventfold.infra.filestore", "FILESTORE_PATH": sys.argv[1]}
app = Application(env=env)
app.save(Aggregate())
def fail(held):
    raise ValueError("the program fails with the application still referenced")
fail(app)
"""


def test_an_application_closed_as_the_interpreter_shuts_down_persists_its_index(
    tmp_path: Path,
) -> None:
    import subprocess
    import sys

    store = tmp_path / "store"
    done = subprocess.run(
        [sys.executable, "-c", SHUT_DOWN, str(store)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    assert "the program fails" in done.stderr
    assert "Exception ignored" not in done.stderr
    [index] = list(store.glob("*_events/index"))
    assert (index / "CHECKPOINT").exists()
