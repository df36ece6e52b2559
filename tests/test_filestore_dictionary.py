"""``EFC3`` and ``EFC4`` commits: each segment's originator dictionary (an originator id
written in full once a segment, named by number after), read back exactly, and its damage
named."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import Environment

from clihelpers import run
from eventfold.application.demo.sample import write_sample
from eventfold.infra.filestore import FileStoreFactory, writer
from eventfold.infra.filestore.format import HEADER2_SIZE, NAMES_HEAD, pack_location
from eventfold.infra.filestore.names import SegmentNames
from eventfold.infra.filestore.scan import CommitScanner
from storehelpers import factory_for, file_size, flip_byte, recorder_of, segment

ORIGINATORS = [UUID(int=n) for n in range(1, 6)]


def commits(path: Path, rounds: list[list[UUID]], **settings: int) -> list[StoredEvent]:
    """One commit per round: an event of each of its originators, versions counting up."""
    factory = factory_for(path, **settings)
    recorder = recorder_of(factory)
    versions: dict[UUID, int] = {}
    written = []
    for r, originators in enumerate(rounds):
        events = []
        for oid in originators:
            versions[oid] = versions.get(oid, 0) + 1
            events.append(StoredEvent(oid, versions[oid], "t", f"{r}:{oid.int}".encode()))
        recorder.insert_events(events)
        written += events
    factory.close()
    return written


def read_back(path: Path, **settings: int) -> list[StoredEvent]:
    """Every event, read by a new factory (its dictionaries built from the segments)."""
    factory = factory_for(path, **settings)
    try:
        recorder = recorder_of(factory)
        got = [
            StoredEvent(n.originator_id, n.originator_version, n.topic, n.state)
            for n in recorder.select_notifications(None, 10**6)
        ]
        last = recorder.select_events(ORIGINATORS[0])[-1]  # a stream read, by the index
        assert last.state == next(
            e.state for e in reversed(got) if e.originator_id == last.originator_id
        )
        return got
    finally:
        factory.close()


def names_heads(log: Path) -> list[tuple[int, int, int]]:
    """(segment, known, new) of each ``EFC3`` or ``EFC4`` commit of a log."""
    heads = []
    for commit in CommitScanner(str(log), pack_location(1, 0), 1):
        if commit.header.version >= 3:
            seg = log / f"{commit.segment:08d}.seg"
            with seg.open("rb") as f:
                f.seek(commit.offset + HEADER2_SIZE)
                _, known, new, _ = NAMES_HEAD.unpack(f.read(NAMES_HEAD.size))
            heads.append((commit.segment, known, new))
    return heads


def test_a_commit_writes_only_the_originators_its_segment_has_not_named(store_path: Path) -> None:
    a, b, c, d, _ = ORIGINATORS
    written = commits(store_path, [[a, b], [b, c, a], [d], [a, b, c, d]])
    assert names_heads(store_path / "stored_events") == [(1, 0, 2), (1, 2, 1), (1, 3, 1), (1, 4, 0)]
    assert read_back(store_path) == written


def test_each_segment_has_its_own_dictionary(store_path: Path) -> None:
    a, b, c, _, _ = ORIGINATORS
    written = commits(store_path, [[a, b], [a, c], [b, c]], segment_bytes=1)
    assert names_heads(store_path / "stored_events") == [(1, 0, 2), (2, 0, 2), (3, 0, 2)]
    assert read_back(store_path, segment_bytes=1) == written


def test_a_full_dictionary_starts_a_new_segment_and_a_commit_too_large_for_one_is_efc2(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer, "MAX_NAMES", 3)
    a, b, c, d, e = ORIGINATORS
    written = commits(store_path, [[a, b], [c], [d], [a, b, c, d], [e]])
    versions = [
        c.header.version
        for c in CommitScanner(str(store_path / "stored_events"), pack_location(1, 0), 1)
    ]
    assert versions == [4, 4, 4, 2, 4]
    assert names_heads(store_path / "stored_events") == [(1, 0, 2), (1, 2, 1), (2, 0, 1), (2, 1, 1)]
    assert read_back(store_path) == written


def test_a_torn_tail_inside_the_names_is_dropped_and_the_dictionary_goes_on_without_it(
    store_path: Path,
) -> None:
    a, b, c, d, _ = ORIGINATORS
    commits(store_path, [[a, b], [c, d]])
    (store_path / "stored_events" / "index").rename(store_path / "old-index")  # not durable
    seg = segment(store_path)
    last = [c.offset for c in CommitScanner(str(seg.parent), pack_location(1, 0), 1)][-1]
    with open(seg, "r+b") as f:
        f.truncate(last + HEADER2_SIZE + NAMES_HEAD.size + 5)  # inside the new names
    factory = factory_for(store_path)
    recorder = recorder_of(factory)
    assert recorder.max_notification_id() == 2
    assert file_size(seg) == last
    assert any(f"byte offset {last}" in n for n in recorder.log.recovery_notes)
    recorder.insert_events([StoredEvent(d, 1, "t", b"d"), StoredEvent(a, 2, "t", b"a")])
    factory.close()
    assert names_heads(store_path / "stored_events") == [(1, 0, 2), (1, 2, 1)]
    got = read_back(store_path)
    assert [(e.originator_id, e.originator_version) for e in got] == [
        (a, 1),
        (b, 1),
        (d, 1),
        (a, 2),
    ]


def test_check_reports_a_torn_tail_inside_the_names_and_repair_drops_it(
    store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b, c, _, _ = ORIGINATORS
    commits(store_path, [[a, b], [c]])
    (store_path / "stored_events" / "index").rename(store_path / "old-index")  # not durable
    seg = segment(store_path)
    last = [c.offset for c in CommitScanner(str(seg.parent), pack_location(1, 0), 1)][-1]
    cut = last + HEADER2_SIZE + NAMES_HEAD.size + 3
    with open(seg, "r+b") as f:
        f.truncate(cut)  # inside the name the last commit adds
    code, out, _ = run(capsys, "check", "--store", str(store_path), "--json")
    assert code == 0
    tail = {"file": str(seg), "offset": last, "length": cut - last}
    assert json.loads(out)["logs"][0]["torn_tail"] == tail
    code, out, _ = run(capsys, "check", "--repair", "--store", str(store_path), "--json")
    assert code == 0
    repairs = json.loads(out)["logs"][0]["repairs"]
    assert any(f"dropped a torn tail of {cut - last} bytes" in r for r in repairs)
    assert file_size(seg) == last


@pytest.fixture
def ingested(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[str, Path, int]:
    """A store of 3,000 ingested events, the events log's segment, and where its third
    commit starts (its events name originators of the commits before it)."""
    store = tmp_path / "store"
    source = tmp_path / "source.jsonl"
    with source.open("wb") as f:
        write_sample(f, 3000)
    assert run(capsys, "ingest", "--store", str(store), str(source), "--quiet")[0] == 0
    seg = segment(store, log="eventfold_events")
    third = [c.offset for c in CommitScanner(str(seg.parent), pack_location(1, 0), 1)][2]
    return str(store), seg, third


def refit_checksums(seg: Path, offset: int) -> None:
    """Make the commit at ``offset`` pass its body and header checksums again."""
    data = bytearray(seg.read_bytes())
    body_len = struct.unpack_from("<I", data, offset + 8)[0]
    body = bytes(data[offset + 36 : offset + 36 + body_len])
    struct.pack_into("<I", data, offset + 28, zlib.crc32(body))
    struct.pack_into("<I", data, offset + 32, zlib.crc32(bytes(data[offset : offset + 32])))
    seg.write_bytes(bytes(data))


def check_names(capsys: pytest.CaptureFixture[str], store: str, seg: Path, at: int) -> str:
    code, _, err = run(capsys, "check", "--store", store)
    assert code == 3, err
    err = err.replace("\n", "")
    assert f"{seg}: byte offset {at}:" in err
    return err


def test_a_flipped_byte_in_the_names_is_named_by_file_and_offset(
    ingested: tuple[str, Path, int], capsys: pytest.CaptureFixture[str]
) -> None:
    store, seg, _ = ingested
    data = seg.read_bytes()
    assert data[:4] == b"EFC4" and NAMES_HEAD.unpack_from(data, HEADER2_SIZE)[2] > 1
    flip_byte(seg, HEADER2_SIZE + NAMES_HEAD.size + 20)  # in the first commit's second name
    assert "commit checksum mismatch" in check_names(capsys, store, seg, HEADER2_SIZE)
    refit_checksums(seg, 0)  # the commit's checksum made to fit: the names' own fails
    err = check_names(capsys, store, seg, HEADER2_SIZE)
    assert "originator names checksum mismatch" in err


def test_names_that_do_not_follow_the_segments_dictionary_are_damage(
    ingested: tuple[str, Path, int], capsys: pytest.CaptureFixture[str]
) -> None:
    store, seg, third = ingested
    data = bytearray(seg.read_bytes())
    at = third + HEADER2_SIZE
    names_len, known, _, _ = NAMES_HEAD.unpack_from(data, at)
    assert known > 0
    struct.pack_into("<I", data, at + 4, known - 1)  # as if a commit before it were missing
    section = bytes(data[at + NAMES_HEAD.size : at + NAMES_HEAD.size + names_len])
    struct.pack_into(
        "<I", data, at + 12, zlib.crc32(section, zlib.crc32(bytes(data[at : at + 12])))
    )
    seg.write_bytes(bytes(data))
    refit_checksums(seg, third)
    err = check_names(capsys, store, seg, at)
    assert f"follow {known - 1:,} earlier names" in err


def test_a_flipped_byte_in_the_compressed_columns_is_named_by_file_and_offset(
    ingested: tuple[str, Path, int], capsys: pytest.CaptureFixture[str]
) -> None:
    store, seg, third = ingested
    data = seg.read_bytes()
    columns = third + HEADER2_SIZE + NAMES_HEAD.size + NAMES_HEAD.unpack_from(data, third + 36)[0]
    flip_byte(seg, columns + 40)
    refit_checksums(seg, third)  # the checksum holds; decompression fails
    assert "compressed commit body" in check_names(capsys, store, seg, columns)


def test_a_reader_of_one_late_event_reads_the_dictionary_of_its_segment(
    ingested: tuple[str, Path, int],
) -> None:
    store, seg, _ = ingested
    scanned = [
        e for c in CommitScanner(str(seg.parent), pack_location(1, 0), 1) for _, e in c.events
    ]
    factory = FileStoreFactory(Environment("eventfold", {"FILESTORE_PATH": store}))
    try:
        recorder = factory.application_recorder()
        [late] = recorder.select_notifications(len(scanned), 1)  # nothing read before it
    finally:
        factory.close()
    expected = scanned[-1]
    assert (late.id, late.originator_id, late.originator_version, late.state) == (
        expected.id,
        expected.originator_id,
        expected.originator_version,
        expected.state,
    )
    assert isinstance(late.originator_id, UUID)


def test_a_scan_that_goes_on_from_where_it_stopped_reads_no_dictionary_again(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, c, _, _ = ORIGINATORS
    commits(store_path, [[a, b], [c]])
    log, kept = store_path / "stored_events", dict[int, SegmentNames]()
    first = CommitScanner(str(log), pack_location(1, 0), 1, names=kept)
    assert sum(len(commit.events) for commit in first) == 3
    factory = factory_for(store_path)
    recorder_of(factory).insert_events([StoredEvent(a, 2, "t", b"a2"), StoredEvent(c, 2, "t", b"")])
    factory.close()
    read: list[int] = []
    extend = SegmentNames.extend

    def counted(names: SegmentNames, fd: int, path: str, offset: int) -> None:
        read.append(offset)
        extend(names, fd, path, offset)

    monkeypatch.setattr(SegmentNames, "extend", counted)
    later = CommitScanner(str(log), first.end, 4, names=kept)  # as a reader catching up
    [commit] = list(later)
    assert [(e.originator_id, e.state) for _, e in commit.events] == [(a, b"a2"), (c, b"")]
    assert not read
    fresh = CommitScanner(str(log), first.end, 4)  # without the kept dictionary: read once
    assert [e.originator_id for c in fresh for _, e in c.events] == [a, c]
    assert read == [first.end & 0xFFFFFFFFFF]  # up to where it starts
