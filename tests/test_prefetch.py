"""New files read ahead by the prefetching process give exactly what the writer's own
reading gives; a file that is not the one read ahead is read by the writer."""

from __future__ import annotations

import bz2
import gzip
import os
from pathlib import Path

import pytest

from clihelpers import run
from eventfold.application.app import open_store
from eventfold.application.ingest import Ingestor
from eventfold.application.ingest.many import IngestSetReport, ingest_all
from eventfold.application.ingest.prefetch import Prefetcher
from eventfold.domain.model import Source


def rows(first: int, last: int) -> bytes:
    return b"".join(
        b'{"id":"%d","category":"c%d","value":1.5}\n' % (i, i % 3) for i in range(first, last)
    )


def sources(directory: Path) -> list[str]:
    """Plain (with a byte order mark), gzip, a gzip cut short, bzip2 with a pending tail."""
    directory.mkdir()
    (directory / "a.jsonl").write_bytes(b"\xef\xbb\xbf" + rows(0, 3000))
    (directory / "b.jsonl.gz").write_bytes(gzip.compress(rows(3000, 6000)))
    cut = gzip.compress(rows(6000, 9000))
    (directory / "c.jsonl.gz").write_bytes(cut[: len(cut) // 2])
    (directory / "d.jsonl.bz2").write_bytes(bz2.compress(rows(9000, 9500) + b'{"id":"x"'))
    return sorted(str(p) for p in directory.iterdir())


def ingest(store: Path, paths: list[str], prefetch: bool) -> tuple[IngestSetReport, list[str]]:
    app = open_store(str(store))
    try:
        with Ingestor(app, app.state_dir, batch=500, reader_process=prefetch) as ingestor:
            report = ingest_all(ingestor, paths)
        found: list[Source] = [
            app.repository.get(Source.create_id(os.path.realpath(p))) for p in paths
        ]
        digests = [str(source.digest) for source in found]
    finally:
        app.close()
    return report, digests


def outcome(report: IngestSetReport) -> list[tuple[object, ...]]:
    return [
        (f.read, f.ingested, f.position, f.line, f.damage, f.pending_tail) for f in report.files
    ]


def test_files_read_ahead_give_what_the_writer_reads_itself(tmp_path: Path) -> None:
    paths = sources(tmp_path / "in")
    ahead, ahead_digests = ingest(tmp_path / "a", paths, prefetch=True)
    itself, itself_digests = ingest(tmp_path / "b", paths, prefetch=False)
    assert outcome(ahead) == outcome(itself)
    assert ahead_digests == itself_digests and all(ahead_digests)
    damaged = ahead.files[2].damage
    assert damaged is not None and damaged.position == ahead.files[2].position
    assert ahead.files[3].pending_tail is not None
    again, _ = ingest(tmp_path / "a", paths, prefetch=True)  # resumed: nothing to read
    assert [f.read for f in again.files] == [0, 0, 0, 0]
    assert [f.resumed_from for f in again.files] == [f.position for f in ahead.files]


def test_a_file_replaced_after_it_was_read_ahead_is_read_by_the_writer(tmp_path: Path) -> None:
    paths = sources(tmp_path / "in")
    with Prefetcher(paths, 500) as prefetch:
        second = prefetch.take(paths[1])  # its start frame: the process has opened it
        assert second is not None
        with open(paths[1], "rb") as f:
            assert second.same_file(f.fileno())
        replaced = Path(paths[1])
        replaced.unlink()
        replaced.write_bytes(gzip.compress(rows(20000, 20010)))
        with open(paths[1], "rb") as f:
            assert not second.same_file(f.fileno())
        assert prefetch.take(paths[3]) is not None  # the third is skipped, unread
        assert prefetch.take(paths[0]) is None  # behind: not read ahead any more


def test_a_renamed_file_is_not_taken_from_the_prefetched_batches(tmp_path: Path) -> None:
    first = tmp_path / "events.jsonl"
    first.write_bytes(rows(0, 2000))
    ingest(tmp_path / "st", [str(first)], prefetch=True)
    rotated = tmp_path / "events.jsonl.1.gz"
    rotated.write_bytes(gzip.compress(rows(0, 2500)))
    first.unlink()
    other = tmp_path / "other.jsonl"
    other.write_bytes(rows(5000, 5100))
    report, _ = ingest(tmp_path / "st", [str(rotated), str(other)], prefetch=True)
    renamed = report.files[0]
    assert renamed.renamed_from == str(first.resolve())
    assert (renamed.read, renamed.ingested, renamed.duplicates) == (500, 500, 0)
    assert report.files[1].ingested == 100


def test_a_partition_refuses_a_compressed_file_before_anything_is_recorded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = tmp_path / "a.jsonl"
    plain.write_bytes(rows(0, 10))
    packed = tmp_path / "b.jsonl.gz"
    packed.write_bytes(gzip.compress(rows(10, 20)))
    store = tmp_path / "st"
    code, _, err = run(
        capsys, "ingest", str(plain), str(packed), "--store", str(store), "--partition", "1/2"
    )
    assert code == 2
    assert "b.jsonl.gz: gzip data; --partition on the file store reads uncompressed" in err
    assert not store.exists()
