"""Index runs: lookups across fence blocks agree with a plain sorted list; compressed
blocks are checked before use; older runs are read; merging rewrites little."""

from __future__ import annotations

import itertools
import os
from array import array
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventfold.infra import fileio
from eventfold.infra.filestore import runs as runs_module
from eventfold.infra.filestore.format import crc32
from eventfold.infra.filestore.index import originator_key, sorted_entries
from eventfold.infra.filestore.runs import (
    BLOCK_ENTRIES,
    CHUNK_BLOCKS,
    ENTRY,
    ENTRY_SIZE,
    MERGE_WIDTH,
    RUN_MAGIC,
    VERSION_BIAS,
    IndexDamagedError,
    Run,
    push_run,
    write_run,
)
from storehelpers import flip_byte


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


class Reads:
    """How many times ``os.pread`` was called (a run reads its blocks with it)."""

    count = 0


@pytest.fixture
def preads(monkeypatch: pytest.MonkeyPatch) -> Reads:
    """``os.pread`` counted, and the runs' tables of last versions holding no keys yet."""
    from eventfold.infra.filestore import runs

    monkeypatch.setattr(runs, "_tables", [0])
    reads = Reads()
    pread = os.pread

    def counted(fd: int, n: int, offset: int) -> bytes:
        reads.count += 1
        return pread(fd, n, offset)

    monkeypatch.setattr(os, "pread", counted)
    return reads


@pytest.mark.parametrize("table_keys", [1 << 18, 100])
def test_many_keys_looked_up_are_answered_from_a_table_read_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, preads: Reads, table_keys: int
) -> None:
    # Keys with 1 to 5 versions each, some spanning blocks, over a dozen blocks: once the
    # run has been asked for as many keys as it has blocks, it reads each block once into
    # a table of last versions and answers the rest without reading; past the table's
    # limit of keys (the second case) it keeps reading a block a lookup. Both agree with
    # the entries.
    from eventfold.infra.filestore import runs

    monkeypatch.setattr(runs, "TABLE_KEYS", table_keys)
    last = {originator_key(f"cat-{i}"): 1 + i % 5 for i in range(BLOCK_ENTRIES * 4)}
    pairs = [(k, v) for k, top in last.items() for v in range(1, top + 1)]
    entries = sorted(ENTRY.pack(k, v + VERSION_BIAS, n + 1) for n, (k, v) in enumerate(pairs))
    count, crc = write_run(str(tmp_path / "run.idx"), [entries])
    run = Run(str(tmp_path / "run.idx"), count, crc)
    try:
        keys = list(last)
        blocks = -(-count // BLOCK_ENTRIES)
        for key in keys[::-1][:blocks]:  # as many lookups as blocks: the table is made
            assert run.last_version(key) == last[key]
        preads.count = 0
        for key in keys:
            assert run.last_version(key) == last[key]
        assert run.last_version(originator_key("absent")) is None
        if table_keys > len(last):
            assert preads.count == 0
        else:
            assert preads.count > 0
    finally:
        run.close()


def test_the_tables_of_a_process_share_one_limit_of_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, preads: Reads
) -> None:
    # Two runs of 1,200 keys under a limit of 2,000: the first run asked for many keys
    # keeps a table, the second cannot (it reads a block a lookup) until the first closes.
    from eventfold.infra.filestore import runs

    monkeypatch.setattr(runs, "TABLE_KEYS", 2000)
    monkeypatch.setattr(runs, "CACHED_BLOCKS", 1)  # a block read again is read again

    def make(name: str) -> tuple[Run, list[bytes]]:
        keys = sorted(originator_key(f"{name}-{i}") for i in range(1200))
        entries = [ENTRY.pack(k, 1 + VERSION_BIAS, n + 1) for n, k in enumerate(keys)]
        count, crc = write_run(str(tmp_path / f"{name}.idx"), [entries])
        return Run(str(tmp_path / f"{name}.idx"), count, crc), keys

    def reads_of(run: Run, keys: list[bytes]) -> int:
        for key in keys:  # the first lookups make the table, if it fits
            assert run.last_version(key) == 1
        preads.count = 0
        for key in keys:
            assert run.last_version(key) == 1
        return preads.count

    (first, first_keys), (second, second_keys) = make("a"), make("b")
    try:
        assert reads_of(first, first_keys) == 0
        assert reads_of(second, second_keys) > 0
        first.close()
        third, third_keys = make("c")
        assert reads_of(third, third_keys) == 0
        third.close()
    finally:
        second.close()


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

    from eventfold.infra.filestore.runs import merge_runs

    rng = random.Random(left * 7 + right)
    all_entries = sorted({rng.randbytes(32) for _ in range(left + right)})
    rng.shuffle(all_entries)
    runs = []
    for name, part in (("a", all_entries[:left]), ("b", all_entries[left:])):
        count, crc = write_run(str(tmp_path / name), [sorted(part)])
        runs.append(Run(str(tmp_path / name), count, crc))
    rows = b"".join(merge_runs(runs, blocks))
    merged = [rows[i : i + ENTRY_SIZE] for i in range(0, len(rows), ENTRY_SIZE)]
    assert merged == sorted(all_entries)
    for run in runs:
        run.close()


FIXTURES = Path(__file__).parent / "fixtures"


def test_a_run_of_the_older_uncompressed_form_is_still_read() -> None:
    # Written by the previous release (EFI2): 40 originators, 15 versions each, ids 1..600.
    run = Run(str(FIXTURES / "run-efi2.idx"), 600, 462003515)
    try:
        assert run.verify() is None
        for i in range(0, 600, 7):
            key = originator_key(f"agg-{i % 40}")
            assert run.find(key, i // 40 + 1) == i + 1
        key = originator_key("agg-3")
        assert run.last_version(key) == 15
        assert [nid for _, nid in run.versions(key, after=13)] == [524, 564]  # versions 14, 15
    finally:
        run.close()


def sample_run(tmp_path: Path, count: int = 3000) -> tuple[str, list[bytes]]:
    entries = sorted(
        ENTRY.pack(originator_key(f"agg-{i % 97}"), i // 97 + VERSION_BIAS, i + 1)
        for i in range(count)
    )
    path = str(tmp_path / "run.idx")
    write_run(path, [entries])
    return path, entries


def test_a_compressed_run_is_far_smaller_and_gives_back_its_entries(tmp_path: Path) -> None:
    path, entries = sample_run(tmp_path)
    assert Path(path).read_bytes()[:4] == RUN_MAGIC
    assert Path(path).stat().st_size < len(entries) * ENTRY_SIZE / 5
    count, crc = len(entries), 0
    for entry in entries:
        crc = crc32(entry, crc)
    run = Run(path, count, crc)
    try:
        assert run.verify() is None
        assert list(run.entries()) == entries
        assert [len(c) for c in run.chunks(1)] == [BLOCK_ENTRIES] * 5 + [3000 - 5 * BLOCK_ENTRIES]
    finally:
        run.close()


@pytest.mark.parametrize("where", ["block", "footer", "header"])
def test_a_flipped_byte_in_a_compressed_run_is_named_with_file_and_offset(
    tmp_path: Path, where: str
) -> None:
    path, entries = sample_run(tmp_path)
    count, crc = len(entries), 0
    for entry in entries:
        crc = crc32(entry, crc)
    intact = Run(path, count, crc)
    block_at = intact._offsets[2]  # the third block's first compressed byte
    footer_at = intact._offsets[-1]
    intact.close()
    offset = {"block": block_at + 9, "footer": footer_at + 30, "header": 13}[where]
    flip_byte(Path(path), offset)
    if where != "block":
        with pytest.raises(IndexDamagedError) as opening:
            Run(path, count, crc)
        assert opening.value.path == path
        assert opening.value.offset == (footer_at if where == "footer" else 0)
        return
    run = Run(path, count, crc)  # the header and footer are intact
    try:
        key, biased, _ = ENTRY.unpack(entries[2 * BLOCK_ENTRIES + 5])
        with pytest.raises(IndexDamagedError) as lookup:
            run.find(key, biased - VERSION_BIAS)
        assert (lookup.value.path, lookup.value.offset) == (path, block_at)
        assert "checksum" in str(lookup.value)
        problem = run.verify()
        assert problem is not None and (problem.path, problem.offset) == (path, block_at)
    finally:
        run.close()


def test_a_truncated_run_is_refused_when_opened(tmp_path: Path) -> None:
    path, entries = sample_run(tmp_path)
    count, crc = len(entries), 0
    for entry in entries:
        crc = crc32(entry, crc)
    size = Path(path).stat().st_size
    for cut in (size - 1, size // 2, 10):
        os.truncate(path, cut)
        with pytest.raises(IndexDamagedError) as opening:
            Run(path, count, crc)
        assert (opening.value.path, opening.value.offset) == (path, 0)


class FakeRun:
    """What ``push_run`` looks at: a size; merging adds sizes and counts rewrites."""

    rewritten = 0

    def __init__(self, count: int) -> None:
        self.count = count


def test_merging_keeps_few_runs_and_rewrites_each_entry_a_few_times(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def merged(tail: list[FakeRun]) -> list[FakeRun]:
        return tail

    def make_run(tail: Any) -> Any:
        total = sum(r.count for r in tail)
        FakeRun.rewritten += total
        return FakeRun(total)

    monkeypatch.setattr(runs_module, "merge_runs", merged)
    runs: list[Any] = []
    flush, flushes = 65_536, 160  # about 10M entries
    most = 0
    for n in range(flushes):
        # An ingest's last flush is short now and then.
        new: Any = FakeRun(flush if n % 50 else 1_000)
        push_run(runs, new, make_run)
        most = max(most, len(runs))
    total = sum(r.count for r in runs)
    assert total == sum(flush if n % 50 else 1_000 for n in range(flushes))
    assert most <= 3 * (MERGE_WIDTH - 1) + 2
    assert FakeRun.rewritten / total < 4  # merging pairs: log2(160) = 7.3 times


@given(
    st.lists(
        st.tuples(
            st.sampled_from([bytes(16), b"\xff" * 16]) | st.binary(min_size=16, max_size=16),
            st.sampled_from([0, 1, -1, 2**63 - 1, -(2**63)]) | st.integers(-(2**63), 2**63 - 1),
        ),
        max_size=60,
    ),
    st.integers(1, 2**40),
)
def test_a_flush_sorts_its_entries_as_their_packed_bytes_sort(
    events: list[tuple[bytes, int]], first: int
) -> None:
    """``sorted_entries`` (numpy columns) gives the entries packed one by one, then sorted."""
    keys = [key for key, _ in events]
    versions = array("q", [version for _, version in events])
    expected = sorted(
        ENTRY.pack(key, version + VERSION_BIAS, first + i)
        for i, (key, version) in enumerate(events)
    )
    assert sorted_entries(keys, versions, first) == b"".join(expected)


def test_a_run_written_from_entries_laid_end_to_end_is_the_run_written_from_a_list(
    tmp_path: Path,
) -> None:
    """``write_run`` takes sorted entries as lists or as bytes, mixed, cut anywhere."""
    _, entries = sample_run(tmp_path, (CHUNK_BLOCKS + 3) * BLOCK_ENTRIES + 41)
    listed = write_run(str(tmp_path / "listed.idx"), [entries])
    cuts = [0, 5, BLOCK_ENTRIES + 3, 2 * BLOCK_ENTRIES, (CHUNK_BLOCKS + 1) * BLOCK_ENTRIES]
    cuts.append(len(entries))
    chunks: list[list[bytes] | bytes] = [
        b"".join(entries[a:b]) if i % 2 else entries[a:b]
        for i, (a, b) in enumerate(itertools.pairwise(cuts))
    ]
    assert write_run(str(tmp_path / "rows.idx"), chunks) == listed
    assert (tmp_path / "rows.idx").read_bytes() == (tmp_path / "listed.idx").read_bytes()


def test_a_long_run_is_made_durable_as_it_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An fsync every ``SYNC_BYTES`` written, then the last: a merge leaves little unwritten
    for the log writer's fsyncs to wait on. The run is the one written in one go."""
    _, entries = sample_run(tmp_path, 40 * BLOCK_ENTRIES)
    whole = write_run(str(tmp_path / "whole.idx"), [entries])
    synced: list[int] = []
    every = 1 << 10
    monkeypatch.setattr(runs_module, "SYNC_BYTES", every)
    monkeypatch.setattr(fileio, "fsync", lambda fd: synced.append(os.fstat(fd).st_size))
    chunks = [entries[i : i + BLOCK_ENTRIES] for i in range(0, len(entries), BLOCK_ENTRIES)]
    assert write_run(str(tmp_path / "synced.idx"), chunks) == whole
    size = (tmp_path / "whole.idx").stat().st_size
    assert size > 8 * every
    assert len(synced) >= size // every // 2 and synced == sorted(synced)
    assert (tmp_path / "synced.idx").read_bytes() == (tmp_path / "whole.idx").read_bytes()


@pytest.mark.parametrize("width", [24, 32])
def test_merging_runs_whose_entries_tie_in_their_first_words_gives_the_sorted_union(
    tmp_path: Path, width: int
) -> None:
    """Few distinct first words (as a store index's keys), so that each step's cut and
    sort compare the later words: three runs of one layout, unequal, cut into chunks."""
    import random

    from eventfold.infra.filestore.runs import Layout, merge_runs

    rng = random.Random(width)
    heads = [rng.randbytes(8) for _ in range(3)]
    every = sorted(
        {rng.choice(heads) + rng.randbytes(width - 8) for _ in range(500)}
        | {rng.choice(heads) + bytes(width - 16) + rng.randbytes(8) for _ in range(4000)}
    )
    rng.shuffle(every)
    layout = Layout(0, width // 8, 0, 64)
    runs = []
    for n, part in enumerate((every[:700], every[700:3100], every[3100:])):
        path = str(tmp_path / f"run-{n}.idx")
        count, crc = write_run(path, [sorted(part)], layout)
        runs.append(Run(path, count, crc))
    rows = b"".join(merge_runs(runs, 2))
    assert [rows[i : i + width] for i in range(0, len(rows), width)] == sorted(every)
    for run in runs:
        run.close()
