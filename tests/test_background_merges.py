"""Index runs merged by the worker process (``merging.py``): exact, and crash-safe.

A merge in flight is killed on either side: the worker (the writer then merges
in its own process) or the writer (the worker stops, the inputs stay named by
the checkpoint). Either way every acknowledged commit is there and the index
checks out against the log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from eventfold.application.ingest.dedup import DedupIndex, verify_dedup
from eventfold.infra.filestore import merging
from eventfold.infra.filestore.check import check_log
from eventfold.infra.filestore.checkpoint import read_checkpoint
from eventfold.infra.filestore.runs import ENTRY, STORE_LAYOUT, Run, create_run
from processes import HANG, armed, run_until_failpoint
from store_child import commit_events
from storehelpers import factory_for, recorder_of

CHILD = str(Path(__file__).with_name("merge_child.py"))
SETTINGS = {"segment_bytes": "65536", "index_interval": "150"}


def _runs(directory: Path, sizes: list[int]) -> tuple[list[Run], set[bytes]]:
    """Runs of ``sizes`` entries, all entries distinct, numbered from 1."""
    runs, every, nid = [], set(), 0
    for number, size in enumerate(sizes, 1):
        entries = []
        for _ in range(size):
            nid += 1
            entries.append(ENTRY.pack(os.urandom(16), 1 << 63, nid))
        entries.sort()
        every.update(entries)
        runs.append(create_run(str(directory), number, [entries]))
    return runs, every


def _merges(directory: Path) -> tuple[merging.Merges, list[int]]:
    made = [100]

    def make_run(chunks: object) -> Run:
        made[0] += 1
        return create_run(str(directory), made[0], chunks)  # type: ignore[arg-type]

    return merging.Merges(str(directory), STORE_LAYOUT, make_run), made


def _kill(worker: merging.MergeWorker) -> None:
    assert worker.proc is not None
    os.kill(worker.proc.pid, signal.SIGKILL)


def _entries(runs: list[Run]) -> list[bytes]:
    return [entry for run in runs for entry in run.entries()]


def test_the_worker_merges_runs_and_a_flush_adopts_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(merging, "BACKGROUND_MIN", 0)
    merges, _ = _merges(tmp_path)
    made, every = _runs(tmp_path, [300] * 8)
    runs: list[Run] = []
    obsolete: list[Run] = []
    for run in made:
        obsolete += merges.after_flush(runs, run)
    obsolete += merges.after_flush(runs, None, wait=True)
    assert not merges.merging
    assert sorted(_entries(runs)) == sorted(every)
    assert all(list(r.entries()) == sorted(r.entries()) for r in runs)
    assert any(r.name.startswith("merge-") for r in runs), "no merge was the worker's"
    assert {id(r) for r in obsolete}.isdisjoint(id(r) for r in runs)
    assert len(runs) < len(made)


def test_a_killed_worker_s_merge_is_done_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(merging, "BACKGROUND_MIN", 0)
    merges, made = _merges(tmp_path)
    inputs, every = _runs(tmp_path, [2000] * 4)
    runs: list[Run] = []
    for run in inputs[:3]:
        merges.after_flush(runs, run)
    merges.after_flush(runs, inputs[3])
    assert merges.merging
    _kill(merging.worker())
    obsolete = merges.after_flush(runs, None, wait=True)
    assert len(runs) == 1 and runs[0].name == f"run-{made[0]:08d}.idx"  # merged here
    assert list(runs[0].entries()) == sorted(every)
    assert sorted(r.name for r in obsolete) == sorted(r.name for r in inputs)
    (tmp_path / "more").mkdir()
    more, _ = _runs(tmp_path / "more", [5000] * 3)
    for run in more:
        merges.after_flush(runs, run)
    assert merges.merging  # in a new worker
    merges.after_flush(runs, None, wait=True)
    assert len(runs) == 1 and runs[0].name.startswith("merge-")


def _check(store: Path, acknowledged: dict[int, tuple[int, int]]) -> None:
    """Every acknowledged commit is there, whole; the index checks out; writes go on."""
    factory = factory_for(store, **SETTINGS)
    recorder = recorder_of(factory)
    notifications = recorder.select_notifications(None, 10**9)  # recovers, as a writer
    ids = [n.id for n in notifications]
    assert ids == list(range(1, len(ids) + 1))
    present: dict[int, list[int]] = {}
    for n in notifications:
        present.setdefault(int(n.state.split(b":")[0]), []).append(n.id)
    for commit, (first, size) in acknowledged.items():
        assert present[commit] == list(range(first, first + size))
    assert recorder.insert_events(commit_events(max(present) + 1))
    factory.close()
    log = store / "stored_events"
    report = check_log(str(log))
    assert report.sound and report.index == "ok", report
    doc, _ = read_checkpoint(str(log / "index" / "CHECKPOINT"))
    assert doc is not None
    assert all((log / "index" / r["name"]).exists() for r in doc["runs"])


def _acknowledged(stdout: str) -> dict[int, tuple[int, int]]:
    found = {}
    for line in stdout.split("\n")[1:]:
        if line.strip():
            commit, first, size = map(int, line.split())
            found[commit] = (first, size)
    return found


def test_a_writer_killed_while_its_worker_merges_loses_nothing(store_path: Path) -> None:
    done = run_until_failpoint([sys.executable, CHILD, str(store_path), "0"], "merge.started", 3)
    acknowledged = _acknowledged(done.stdout)
    assert acknowledged
    _check(store_path, acknowledged)
    # and once more, from the store as it was left, killed at its first merge
    done = run_until_failpoint(
        [sys.executable, CHILD, str(store_path), str(max(acknowledged) + 2)], "merge.started", 1
    )
    acknowledged |= _acknowledged(done.stdout)
    _check(store_path, acknowledged)


def test_a_worker_killed_mid_merge_leaves_the_writer_merging_itself(store_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, CHILD, str(store_path), "0", "200"],
        env=armed("merge.worker-chunk", 1),
        capture_output=True,
        text=True,
        timeout=HANG,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "failpoint merge.worker-chunk@1 reached" in done.stderr
    acknowledged = _acknowledged(done.stdout)
    assert sorted(acknowledged) == list(range(200))
    _check(store_path, acknowledged)
    doc, _ = read_checkpoint(str(store_path / "stored_events" / "index" / "CHECKPOINT"))
    assert doc is not None and len(doc["runs"]) <= merging.MAX_RUNS


def test_the_dedup_index_merges_in_the_worker_and_finds_every_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(merging, "BACKGROUND_MIN", 0)
    index = DedupIndex(str(tmp_path / "dedup"), flush_every=200)
    index.open(0)
    keys = [os.urandom(16) for _ in range(3000)]
    for nid, key in enumerate(keys, 1):
        index.add(key, nid, nid.to_bytes(8))
        index.advance(nid)
    index.flush(wait=True)
    index.close()
    names = os.listdir(tmp_path / "dedup")
    assert any(name.startswith("merge-") for name in names)
    again = DedupIndex(str(tmp_path / "dedup"), flush_every=200)
    again.open(len(keys))
    assert again.problem is None
    found = again.find_many(keys, [n.to_bytes(8) for n in range(1, len(keys) + 1)])
    assert found == {i: (i + 1, (i + 1).to_bytes(8)) for i in range(len(keys))}
    again.close()


def _dedup(directory: Path, keys: list[bytes], monkeypatch: pytest.MonkeyPatch) -> DedupIndex:
    """A dedup index whose flushes of 200 ids have the worker extend the filter."""
    monkeypatch.setattr(merging, "BACKGROUND_MIN", 200)
    index = DedupIndex(str(directory), flush_every=200)
    index.open(0)
    for nid, key in enumerate(keys, 1):
        index.add(key, nid, nid.to_bytes(8))
        index.advance(nid)
    return index


def _digests(count: int) -> list[bytes]:
    return [n.to_bytes(8) for n in range(1, count + 1)]


def test_ids_whose_filter_the_worker_extends_are_found_meanwhile_and_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = [os.urandom(16) for _ in range(1050)]
    index = _dedup(tmp_path / "dedup", keys, monkeypatch)
    assert index.flushing, "the last full flush is the worker's"
    expected = {i: (i + 1, (i + 1).to_bytes(8)) for i in range(len(keys))}
    assert index.find_many(keys, _digests(len(keys))) == expected
    index.flush(wait=True)
    index.close()
    assert verify_dedup(str(tmp_path / "dedup")) == ("ok", [])
    again = DedupIndex(str(tmp_path / "dedup"))
    again.open(len(keys))
    assert again.problem is None and again.covered == len(keys) and again.count == len(keys)
    assert again.find_many(keys, _digests(len(keys))) == expected
    assert again.find_many([os.urandom(16) for _ in range(100)]) == {}
    again.close()


def test_a_killed_filter_worker_leaves_the_flush_to_the_ingest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = [os.urandom(16) for _ in range(450)]
    index = _dedup(tmp_path / "dedup", keys, monkeypatch)
    assert index.flushing
    _kill(merging.worker("bloom"))
    index.flush(wait=True)  # adds the ids to the filter itself
    index.close()
    assert verify_dedup(str(tmp_path / "dedup")) == ("ok", [])
    again = DedupIndex(str(tmp_path / "dedup"))
    again.open(len(keys))
    assert again.covered == len(keys)
    assert len(again.find_many(keys, _digests(len(keys)))) == len(keys)
    again.close()


def test_an_ingest_gone_before_its_filter_is_adopted_leaves_the_index_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = [os.urandom(16) for _ in range(650)]
    index = _dedup(tmp_path / "dedup", keys, monkeypatch)
    assert index.flushing
    pending = index._flushing
    assert pending is not None
    pending[0].worker.collect(pending[0], block=True)  # its files are written, not named
    doc, _ = read_checkpoint(str(tmp_path / "dedup" / "CHECKPOINT"))
    assert doc is not None
    index._close_runs()  # gone (as a process killed here), without adopting or flushing
    index.close()
    assert verify_dedup(str(tmp_path / "dedup")) == ("ok", [])
    again = DedupIndex(str(tmp_path / "dedup"))
    again.open(len(keys))
    assert again.problem is None
    assert again.covered == doc["covered"] < len(keys)
    assert sorted(os.listdir(tmp_path / "dedup")) == sorted(
        ["CHECKPOINT", "LOCK", doc["bloom"]["name"], *(r["name"] for r in doc["runs"])]
    )
    found = again.find_many(keys[: again.covered], _digests(again.covered))
    assert len(found) == again.covered  # the rest the next ingest adds from the store
    again.close()


def test_closing_merges_a_size_class_a_lagging_merge_left_under_the_last_flush() -> None:
    """Four runs of one size and the last flush's short run: the policy, which looks at
    the newest runs, merges nothing; closing merges the four (the index keeps as few
    runs as when every merge was made on the write path)."""
    from types import SimpleNamespace
    from typing import Any

    from eventfold.infra.filestore.runs import MERGE_WIDTH, choose_merge, closing_merge

    def runs(*counts: int) -> list[Any]:
        return [SimpleNamespace(count=c) for c in counts]

    lagged = runs(265_000, 264_000, 266_000, 265_500, 42_000)
    assert choose_merge(lagged) == 0
    assert closing_merge(lagged) == (4, MERGE_WIDTH)
    assert closing_merge(runs(1_060_000, 42_000))[1] == 0
    assert closing_merge(runs(66_000, 66_000, 66_000, 66_000)) == (4, MERGE_WIDTH)
    assert closing_merge(runs(1_000_000, 265_000, 66_000, 42_000, 10_000))[1] == 0


def test_the_dedup_filter_keeps_at_least_sixteen_bits_an_id(tmp_path: Path) -> None:
    """Fewer would send about one new id in 150 to read a block of every run."""
    index = DedupIndex(str(tmp_path / "dedup"))
    index.open(0)
    index.reserve(1_000_000)
    assert index.bloom.nbits >= 16 * 1_000_000
    index.close()
