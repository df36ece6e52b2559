"""Every commit format: stores written before compressed commits (``EFC1``), before
originator dictionaries (``EFC2``) and before states kept by field (``EFC3``), kept as
fixtures, still open, check, prove and grow, and any eventsourcing application reads the
same domain events from every format."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from uuid import UUID

import pytest
from eventsourcing.application import Application
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import Environment

from clihelpers import run
from eventfold.application.demo.sample import write_sample
from eventfold.infra.filestore import FileApplicationRecorder, FileStoreFactory
from eventfold.infra.filestore.format import NAMES_HEAD, pack_location
from eventfold.infra.filestore.scan import CommitScanner
from storehelpers import flip_byte, segment

# tests/fixtures/efc1: a store written by the version before compressed commits (ingest
# of source.jsonl with --snapshot-interval 50, then rebuild; dedup/ and LOCK files left
# out, since any version rebuilds them), and the checksum that version computed for it.
FIXTURE = Path(__file__).parent / "fixtures" / "efc1"
# tests/fixtures/efc2: the same source, written the same way by the version before
# originator dictionaries (EFC2 commits); its projection has the same checksum.
FIXTURE2 = Path(__file__).parent / "fixtures" / "efc2"
# tests/fixtures/efc3: the same again, by the version before states kept by field (EFC3).
FIXTURE3 = Path(__file__).parent / "fixtures" / "efc3"
CHECKSUM = "107428c92eb9a109825ba7c9144c8eae12da158400fc0805f12593eb8fef400e"
LOG = "eventfold_events"


class Eventfold(Application[UUID]):
    """A plain library application named like eventfold's, so it reads the same log."""


@pytest.fixture
def old(tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURE, tmp_path / "efc1"))


@pytest.fixture(params=[(FIXTURE2, 2), (FIXTURE3, 3)], ids=["efc2", "efc3"])
def later(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, Path, int]:
    """A copy of a fixture written after the first format, the fixture, its version."""
    fixture, version = request.param
    return Path(shutil.copytree(fixture, tmp_path / fixture.name)), fixture, version


def versions(store: Path, log: str = LOG) -> list[int]:
    """The format version of each commit of one of the store's logs, in order."""
    scanner = CommitScanner(str(store / log), pack_location(1, 0), 1)
    return [commit.header.version for commit in scanner]


def test_a_store_of_the_first_format_opens_checks_and_proves(
    old: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(old / "store")
    assert set(versions(old / "store")) == {1}
    assert run(capsys, "check", "--store", store)[0] == 0
    code, out, _ = run(capsys, "verify", "--store", store, str(old / "source.jsonl"), "--json")
    assert code == 0
    assert json.loads(out)["actual_checksum"] == CHECKSUM
    code, out, _ = run(capsys, "rebuild", "--store", store, "--json")
    assert code == 0
    assert json.loads(out)["checksum"] == CHECKSUM


def test_compressed_commits_follow_the_first_format_in_the_same_log(
    old: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(old / "store")
    more = old / "more.jsonl"
    with more.open("wb") as f:
        write_sample(f, 300, seed=11, first_id=500_000)
    code, _, err = run(capsys, "ingest", "--store", store, str(more), "--quiet")
    assert code == 0, err
    kinds = versions(old / "store")
    assert kinds[0] == 1 and kinds[-1] == 4
    assert run(capsys, "check", "--store", store)[0] == 0
    sources = [str(old / "source.jsonl"), str(more)]
    code, out, _ = run(capsys, "verify", "--store", store, *sources, "--json")
    assert code == 0
    assert json.loads(out)["status"] == "match"


def test_a_plain_application_reads_the_same_domain_events_from_either_format(
    old: Path, tmp_path: Path
) -> None:
    stored = _stored_events(old / "store")
    assert len(stored) > 300
    new = tmp_path / "compressed"
    factory = FileStoreFactory(Environment("eventfold", {"FILESTORE_PATH": str(new / "store")}))
    recorder = factory.application_recorder()
    for i in range(0, len(stored), 100):
        recorder.insert_events(stored[i : i + 100])
    factory.close()
    assert set(versions(new / "store")) == {4}

    read = [_domain_events(old / "store"), _domain_events(new / "store")]
    assert len(read[0]) == len(stored)
    assert read[0] == read[1]


def test_a_store_of_a_later_format_opens_checks_proves_and_grows(
    later: tuple[Path, Path, int], capsys: pytest.CaptureFixture[str]
) -> None:
    old, fixture, version = later
    store = str(old / "store")
    assert set(versions(old / "store")) == {version}
    assert run(capsys, "check", "--store", store)[0] == 0
    code, out, _ = run(capsys, "rebuild", "--store", store, "--json")
    assert code == 0
    assert json.loads(out)["checksum"] == CHECKSUM
    more = old / "more.jsonl"
    with more.open("wb") as f:
        write_sample(f, 300, seed=11, first_id=500_000)
    code, _, err = run(capsys, "ingest", "--store", store, str(more), "--quiet")
    assert code == 0, err
    kinds = versions(old / "store")
    assert kinds[0] == version and kinds[-1] == 4
    assert run(capsys, "check", "--store", store)[0] == 0
    sources = [str(old / "source.jsonl"), str(more)]
    code, out, _ = run(capsys, "verify", "--store", store, *sources, "--json")
    assert code == 0
    assert json.loads(out)["status"] == "match"
    before = Path(shutil.copytree(fixture, old.parent / "before")) / "store"
    assert _domain_events(old / "store")[: len(_stored_events(before))] == _domain_events(before)


def test_a_damaged_compressed_body_whose_checksum_holds_is_named_with_file_and_offset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    source = tmp_path / "source.jsonl"
    with source.open("wb") as f:
        write_sample(f, 2000)
    assert run(capsys, "ingest", "--store", str(store), str(source), "--quiet")[0] == 0
    seg = segment(store, log=LOG)
    scanner = CommitScanner(str(seg.parent), pack_location(1, 0), 1)
    second = [commit.offset for commit in scanner][1]
    data = seg.read_bytes()
    columns = second + 36 + NAMES_HEAD.size + NAMES_HEAD.unpack_from(data, second + 36)[0]
    flip_byte(seg, columns + 40)
    _fix_body_checksum(seg, second)  # the checksum holds; decompression fails
    code, _, err = run(capsys, "check", "--store", str(store))
    assert code == 3
    assert f"{seg}: byte offset {columns}: compressed commit body" in err.replace("\n", "")


def _fix_body_checksum(seg: Path, offset: int) -> None:
    import struct
    import zlib

    data = bytearray(seg.read_bytes())
    body_len = struct.unpack_from("<I", data, offset + 8)[0]
    body = bytes(data[offset + 36 : offset + 36 + body_len])
    struct.pack_into("<I", data, offset + 28, zlib.crc32(body))
    struct.pack_into("<I", data, offset + 32, zlib.crc32(bytes(data[offset : offset + 32])))
    seg.write_bytes(bytes(data))


def _stored_events(store: Path) -> list[StoredEvent]:
    factory = FileStoreFactory(Environment("eventfold", {"FILESTORE_PATH": str(store)}))
    try:
        recorder = factory.application_recorder()
        assert isinstance(recorder, FileApplicationRecorder)
        return [
            StoredEvent(n.originator_id, n.originator_version, n.topic, n.state)
            for n in recorder.select_notifications(None, 10**6)
        ]
    finally:
        factory.close()


def _domain_events(store: Path) -> list[object]:
    env = {"PERSISTENCE_MODULE": "eventfold.infra.filestore", "FILESTORE_PATH": str(store)}
    app = Eventfold(env=env)
    try:
        notifications = app.recorder.select_notifications(None, 10**6)
        return [app.mapper.to_domain_event(n) for n in notifications]
    finally:
        app.close()
