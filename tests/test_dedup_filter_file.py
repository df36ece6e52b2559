"""The dedup index's filter file is written as the ids grow, not at every flush.

The worker adds each flush's ids to the filter this process maps from a shared
file; the filter's own file is written only when a quarter of the ids would
lack from it, and the checkpoint names the runs it lacks. Opening the index
after a crash adds those runs back, so no id is ever missed; closing writes
the file whole.
"""

from __future__ import annotations

import errno
import itertools
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from eventfold.application.ingest import dedup as dedup_module
from eventfold.application.ingest.dedup import DedupIndex, verify_dedup
from eventfold.infra import fileio
from eventfold.infra.filestore import merging
from eventfold.infra.filestore.bloom import Bloom, share
from eventfold.infra.filestore.checkpoint import read_checkpoint, write_checkpoint

FLUSH = 200  # ids a flush, each one's filter extended by the worker


def _digests(count: int) -> list[bytes]:
    return [n.to_bytes(8) for n in range(1, count + 1)]


def _fill(
    directory: Path,
    keys: list[bytes],
    monkeypatch: pytest.MonkeyPatch,
    seen: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[DedupIndex, list[dict[str, Any]]]:
    """An index given ``keys`` (notification ids from 1), and each checkpoint it wrote
    (each also given to ``seen`` as it is written)."""
    monkeypatch.setattr(merging, "BACKGROUND_MIN", FLUSH)
    index = DedupIndex(str(directory), flush_every=FLUSH)
    index.open(0)
    checkpoints: list[dict[str, Any]] = []
    for nid, key in enumerate(keys, 1):
        index.add(key, nid, nid.to_bytes(8))
        index.advance(nid)
        if nid % FLUSH == 1:  # the flush of the ids before this one was just adopted
            doc, _ = read_checkpoint(str(directory / "CHECKPOINT"))
            if doc is not None:
                checkpoints.append(doc)
                if seen is not None:
                    seen(doc)
    return index, checkpoints


def _closed(
    directory: Path, count: int, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[bytes], str, dict[str, Any]]:
    """An index given ``count`` new ids, then closed: the ids' keys, its checkpoint's
    path and the checkpoint."""
    keys = [os.urandom(16) for _ in range(count)]
    index, _ = _fill(directory, keys, monkeypatch)
    index.flush(wait=True)
    index.close()
    path = str(directory / "CHECKPOINT")
    doc, _ = read_checkpoint(path)
    assert doc is not None
    return keys, path, doc


def _lacking(doc: dict[str, Any]) -> int:
    return sum(r["count"] for r in doc["runs"] if r["name"] in doc["bloom"]["lacks"])


def test_the_filter_file_is_written_when_a_quarter_of_the_ids_lack_from_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = [os.urandom(16) for _ in range(30 * FLUSH + 50)]
    index, checkpoints = _fill(tmp_path / "dedup", keys, monkeypatch)
    index.flush(wait=True)
    index.close()
    assert len(checkpoints) >= 29
    written = {str(doc["bloom"]["name"]) for doc in checkpoints}
    assert 3 <= len(written) <= 15, "written as the ids grow, not at every flush"
    assert any(doc["bloom"]["lacks"] for doc in checkpoints)
    for before, doc in itertools.pairwise(checkpoints):
        runs = {r["name"] for r in doc["runs"]}
        assert set(doc["bloom"]["lacks"]) <= runs
        if 4 * _lacking(before) >= before["count"]:
            assert doc["bloom"]["name"] != before["bloom"]["name"]
    closed, _ = read_checkpoint(str(tmp_path / "dedup" / "CHECKPOINT"))
    assert closed is not None and closed["format"] == 4 and closed["bloom"]["lacks"] == []
    assert verify_dedup(str(tmp_path / "dedup")) == ("ok", [])


def test_after_a_crash_opening_adds_the_runs_the_filter_file_lacks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The index as a crash would leave it after each flush (a copy of its files), merges
    that took runs the file lacks included: every id it covers is found."""
    keys = [os.urandom(16) for _ in range(25 * FLUSH + 50)]
    crashes: list[Path] = []
    lacked: list[str] = []

    def copy(doc: dict[str, Any]) -> None:
        """The files the checkpoint names (the rest a crash leaves are strays)."""
        if doc["bloom"]["lacks"]:
            lacked.extend(doc["bloom"]["lacks"])
            crashes.append(tmp_path / f"crash-{len(crashes)}")
            crashes[-1].mkdir()
            names = ["CHECKPOINT", doc["bloom"]["name"], *(r["name"] for r in doc["runs"])]
            for name in names:
                shutil.copy(tmp_path / "dedup" / name, crashes[-1] / name)

    index, _ = _fill(tmp_path / "dedup", keys, monkeypatch, copy)
    index.flush(wait=True)
    index.close()
    assert len(crashes) >= 5
    assert any(name.startswith("merge-") for name in lacked), "a merge took a run lacked"
    for crash in crashes:
        doc, _ = read_checkpoint(str(crash / "CHECKPOINT"))
        assert doc is not None
        assert verify_dedup(str(crash)) == ("ok", [])
        covered = int(doc["covered"])
        with open(crash / doc["bloom"]["name"], "rb") as f:
            filed = Bloom(int(doc["bloom"]["bits"]), bytearray(f.read()))
        assert not all(filed.maybe_many(keys[:covered])), "the file alone misses some ids"
        again = DedupIndex(str(crash))
        again.open(len(keys))
        assert again.problem is None and again.covered == covered
        expected = {i: (i + 1, (i + 1).to_bytes(8)) for i in range(covered)}
        assert again.find_many(keys[:covered], _digests(covered)) == expected
        again.close()


def test_an_index_of_format_3_is_read_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Format 3 names no runs the filter lacks: its file holds every id."""
    keys, path, doc = _closed(tmp_path / "dedup", 5 * FLUSH + 10, monkeypatch)
    assert doc["bloom"].pop("lacks") == []
    write_checkpoint(path, doc | {"format": 3})
    again = DedupIndex(str(tmp_path / "dedup"))
    again.open(len(keys))
    assert again.problem is None and again.count == len(keys)
    assert len(again.find_many(keys, _digests(len(keys)))) == len(keys)
    again.close()


def test_a_checkpoint_whose_filter_lacks_a_run_it_does_not_name_is_damaged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys, path, doc = _closed(tmp_path / "dedup", 3 * FLUSH + 10, monkeypatch)
    doc["bloom"]["lacks"] = ["run-99999999.idx"]
    write_checkpoint(path, doc)
    status, problems = verify_dedup(str(tmp_path / "dedup"))
    assert status == "damaged" and "run-99999999.idx" in problems[0][2]
    again = DedupIndex(str(tmp_path / "dedup"))
    again.open(len(keys))
    assert again.problem is not None and "run-99999999.idx" in again.problem
    again.close()


def test_a_checkpoint_written_before_a_larger_filter_is_filed_names_the_file_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Made anew, larger (``reserve``), the filter is not in its file until a flush writes
    it; a checkpoint meanwhile (its worker failed, say) names the file as it is."""
    keys = [os.urandom(16) for _ in range(2 * FLUSH)]
    index, _ = _fill(tmp_path / "dedup", keys, monkeypatch)
    index.flush(wait=True)
    filed = index.filed
    index.reserve(10_000_000)
    assert index.bloom.nbits > filed.bits
    index._persist(None, None, index.covered, index.marks)
    index._close_runs()  # gone, as a process killed here
    index.close()
    doc, _ = read_checkpoint(str(tmp_path / "dedup" / "CHECKPOINT"))
    assert doc is not None and doc["bloom"]["bits"] == filed.bits
    again = DedupIndex(str(tmp_path / "dedup"))
    again.open(len(keys))
    assert again.problem is None
    assert len(again.find_many(keys, _digests(len(keys)))) == len(keys)
    again.close()


def test_without_a_shared_filter_the_ingest_adds_the_ids_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk too full for the shared file (or a file system that cannot map it shared):
    no worker extends the filter; every flush is added, and filed, here."""

    def full(path: str, bits: object) -> object:
        raise OSError(errno.ENOSPC, "No space left on device", path)

    monkeypatch.setattr(dedup_module, "share", full)
    keys = [os.urandom(16) for _ in range(6 * FLUSH + 10)]
    index, checkpoints = _fill(tmp_path / "dedup", keys, monkeypatch)
    assert not index.flushing and len(checkpoints) >= 5
    assert all(not name.startswith("shared-") for name in os.listdir(tmp_path / "dedup"))
    index.flush(wait=True)
    index.close()
    assert verify_dedup(str(tmp_path / "dedup")) == ("ok", [])
    again = DedupIndex(str(tmp_path / "dedup"))
    again.open(len(keys))
    assert len(again.find_many(keys, _digests(len(keys)))) == len(keys)
    again.close()


def test_the_shared_filter_file_is_removed_when_it_cannot_be_written(tmp_path: Path) -> None:
    path = tmp_path / "shared-1.bloom"

    def failing(fd: int, data: object, offset: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fileio, "write_all", failing)
        with pytest.raises(OSError):
            share(str(path), bytearray(4096))
    assert not path.exists()
    mapped = share(str(path), bytearray(b"\x01" * 4096))
    assert path.read_bytes() == b"\x01" * 4096 and len(mapped) == 4096
    mapped.close()
