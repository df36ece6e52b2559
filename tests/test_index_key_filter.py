"""The store index's filter of its runs' keys: a key never indexed reads no run block.

Kept while the index has seen every key of its runs (from none: a new store, or an
index rebuilt); an index opened with runs has none and reads the runs as before.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from eventfold.infra.filestore.index import LogIndex, originator_key
from eventfold.infra.filestore.keyfilter import KeyFilter
from eventfold.infra.filestore.runs import Run


def test_the_filter_holds_every_key_added_and_few_others() -> None:
    keys = [os.urandom(16) for _ in range(100_000)]
    kept = KeyFilter()
    kept.add_many(keys[:40_000])
    kept.add_many(keys[40_000:50_000])
    assert all(key in kept for key in keys[:50_000])
    false_positives = sum(key in kept for key in keys[50_000:])
    assert false_positives < 1000  # under 1 in 50


def index_with(path: Path, streams: int, flushes: int) -> LogIndex:
    """An index of ``streams`` originators (3 events each), flushed ``flushes`` times."""
    index = LogIndex(str(path))
    assert index.load() is None
    nid = 1
    per_flush = -(-streams // flushes)
    for start in range(0, streams, per_flush):
        keys = [originator_key(f"s{k}") for k in range(start, min(streams, start + per_flush))]
        for version in (1, 2, 3):
            index.add_many(nid, keys, [version] * len(keys), [0] * len(keys))
            nid += len(keys)
        index.flush(None, 0, {})
    return index


def test_an_absent_key_reads_no_run_of_a_new_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = index_with(tmp_path, 3000, 3)
    assert index.runs and index.key_filter is not None
    reads: list[str] = []
    last_version = Run.last_version

    def counted(run: Run, key: bytes) -> int | None:
        reads.append(run.name)
        return last_version(run, key)

    monkeypatch.setattr(Run, "last_version", counted)
    absent = [originator_key(f"new{k}") for k in range(1000)]
    assert all(index.max_version(key) is None for key in absent)
    assert len(reads) < 30  # false positives only
    assert all(index.max_version(originator_key(f"s{k}")) == 3 for k in range(0, 3000, 7))
    index.close()
    # Opened again, its runs' keys are not known: every run answers, the same.
    reopened = LogIndex(str(tmp_path))
    assert reopened.load() is None and reopened.key_filter is None
    reads.clear()
    assert reopened.max_version(absent[0]) is None and len(reads) == len(reopened.runs)
    assert reopened.max_version(originator_key("s5")) == 3
    reopened.close()


def test_a_key_is_added_to_the_filter_once_however_many_flushes_hold_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Streams written across flushes (a category met in every batch), each looked up
    first as a writer does, are added to the filter when first indexed only."""
    added: list[bytes] = []
    add_many = KeyFilter.add_many

    def counted(kept: KeyFilter, keys: list[bytes]) -> None:
        added.extend(keys)
        add_many(kept, keys)

    monkeypatch.setattr(KeyFilter, "add_many", counted)
    index = LogIndex(str(tmp_path))
    assert index.load() is None
    keys = [originator_key(f"s{k}") for k in range(500)]
    nid = 1
    for version in (1, 2, 3, 4):
        assert all(index.max_version(key) == (version - 1 or None) for key in keys)
        index.add_many(nid, keys, [version] * len(keys), [0] * len(keys))
        nid += len(keys)
        index.flush(None, 0, {})
    assert sorted(added) == sorted(keys)
    assert index.key_filter is not None and all(key in index.key_filter for key in keys)
    assert all(index.max_version(key) == 4 for key in keys)
    assert index.versions(keys[7]) == [(v, 8 + 500 * (v - 1)) for v in (1, 2, 3, 4)]
    index.close()
