"""`eventfold sources` and the sources line of `status`: every source the store knows, and
whether its file is complete, grew, was rewritten or vanished since it was ingested."""

from __future__ import annotations

import gzip
import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from clihelpers import run, write_rows


def _stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


def _by_path(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["path"]: s for s in doc["sources"]}


@pytest.fixture
def changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[str, dict[str, Path]]:
    """A store of five sources: one left as it was, one grown (a whole line and a pending
    tail), one rewritten to the same size, one deleted, and standard input."""
    store = str(tmp_path / "store")
    files = {
        name: write_rows(
            tmp_path / f"{name}.jsonl", [(f"{name}{i}", "rent", f"{i}.5") for i in range(3)]
        )
        for name in ("same", "grew", "rewritten", "gone")
    }
    with files["grew"].open("a") as f:
        f.write("not json\n")
    for path in files.values():
        assert run(capsys, "ingest", str(path), "--store", store, "--quiet")[0] == 0
    _stdin(monkeypatch, b'{"id": "s1", "category": "food", "value": 2}\n')
    assert run(capsys, "ingest", "-", "--store", store, "--quiet")[0] == 0
    with files["grew"].open("a") as f:
        f.write('{"id": "g9", "category": "rent", "value": 1}\n{"id": "g10", "cat')
    data = files["rewritten"].read_bytes()
    files["rewritten"].write_bytes(data.replace(b"rent", b"RENT"))  # same size, other bytes
    files["gone"].unlink()
    return store, files


def test_sources_lists_every_source_in_order_with_its_state_and_counts(
    changed: tuple[str, dict[str, Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    store, files = changed
    code, out, err = run(capsys, "sources", "--store", store, "--json")
    assert (code, err) == (0, "")
    doc = json.loads(out)
    paths = [s["path"] for s in doc["sources"]]
    assert paths == [str(files[n].resolve()) for n in ("same", "grew", "rewritten", "gone")] + ["-"]
    sources = _by_path(doc)
    same, grew, rewritten, gone, stdin = (sources[p] for p in paths)
    assert (same["state"], same["new_bytes"], same["digest_checked"]) == ("complete", None, True)
    assert same["position"] == same["size_on_disk"] == files["same"].stat().st_size
    assert (same["ingested"], same["quarantined"], same["read"], same["line"]) == (3, 0, 3, 3)
    tail = len('{"id": "g10", "cat')
    assert grew["state"] == "grew"
    assert grew["new_bytes"] == len('{"id": "g9", "category": "rent", "value": 1}\n') + tail
    assert grew["pending_tail_bytes"] == tail
    assert (grew["ingested"], grew["quarantined"], grew["read"]) == (3, 1, 4)
    assert (rewritten["state"], rewritten["digest_checked"]) == ("rewritten", True)
    assert (gone["state"], gone["size_on_disk"], gone["kind"]) == ("vanished", None, "file")
    assert (stdin["kind"], stdin["state"], stdin["ingested"]) == ("stdin", "not a file", 1)
    assert stdin["identity"].startswith("stdin:")
    assert all(s["partition"] is None and s["generation"] == 0 for s in doc["sources"])
    totals = doc["totals"]
    assert (totals["sources"], totals["files"]) == (5, 4)
    states = ("complete", "grew", "rewritten", "vanished", "not_a_file")
    assert [totals[k] for k in states] == [1, 1, 1, 1, 1]
    assert (totals["ingested"], totals["quarantined"], totals["read"]) == (13, 1, 14)


def test_quick_decides_by_size_and_says_so(
    changed: tuple[str, dict[str, Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    store, files = changed
    doc = json.loads(run(capsys, "sources", "--store", store, "--json", "--quick")[1])
    sources = _by_path(doc)
    rewritten = sources[str(files["rewritten"].resolve())]
    assert (rewritten["state"], rewritten["digest_checked"]) == ("complete", False)
    assert sources[str(files["grew"].resolve())]["state"] == "grew"
    code, out, _ = run(capsys, "sources", "--store", store, "--quick")
    text = " ".join(out.split())
    assert code == 0
    assert "--quick: states by size only, no prefix hashed" in text


def test_the_terminal_report_is_a_table_and_a_totals_line(
    changed: tuple[str, dict[str, Path]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store, files = changed
    monkeypatch.setenv("COLUMNS", "300")  # the paths on one line each
    code, out, _ = run(capsys, "sources", "--store", store)
    text = " ".join(out.split())
    assert code == 0
    assert str(files["gone"].resolve()) in out and "vanished" in out and "not a file" in out
    assert (
        "5 sources (4 files): 1 complete, 1 grew, 1 rewritten, 1 vanished, 1 not a file; "
        "read 14, ingested 13, duplicates 0, conflicts 0, quarantined 1" in text
    )
    assert "pending tail: 18 bytes" in text


def test_status_counts_the_changed_files_by_size_only(
    changed: tuple[str, dict[str, Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    store, _ = changed
    code, out, _ = run(capsys, "status", "--store", store, "--json")
    doc = json.loads(out)
    assert code == 0 and "projections" in doc and "events" in doc  # the keys it had stay
    assert doc["sources"] == {
        "count": 5,
        "files": 4,
        "complete": 2,  # the rewritten file has its size: only a digest tells
        "grew": 1,
        "rewritten": 0,
        "vanished": 1,
        "unreadable": 0,
        "unchecked": 0,
        "not_a_file": 1,
    }
    out = run(capsys, "status", "--store", store)[1]
    assert "sources: 4 files (1 grew, 1 vanished, by size), 1 other source" in " ".join(out.split())


def test_a_partitioned_file_is_one_source_per_partition_on_one_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_rows(tmp_path / "p.jsonl", [(i, "abcd"[i % 4], str(i)) for i in range(20)])
    store = str(tmp_path / "store")
    for k in ("1/2", "2/2"):
        assert run(capsys, "ingest", str(source), "--store", store, "--partition", k)[0] == 0
    doc = json.loads(run(capsys, "sources", "--store", store, "--json")[1])
    found = [(s["path"], s["partition"], s["state"]) for s in doc["sources"]]
    path = str(source.resolve())
    assert found == [(path, "1/2", "complete"), (path, "2/2", "complete")]
    assert doc["sources"][0]["identity"] == path + "#partition=1/2"


def test_a_compressed_file_is_read_through_or_left_unchecked_by_quick(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = write_rows(tmp_path / "p.jsonl", [(i, "a", str(i)) for i in range(50)])
    packed = tmp_path / "p.jsonl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    store = str(tmp_path / "store")
    assert run(capsys, "ingest", str(packed), "--store", store, "--quiet")[0] == 0
    [source] = json.loads(run(capsys, "sources", "--store", store, "--json")[1])["sources"]
    assert (source["compression"], source["state"]) == ("gzip", "complete")
    assert source["position"] == plain.stat().st_size  # uncompressed bytes
    assert source["size_on_disk"] == packed.stat().st_size
    [quick] = json.loads(run(capsys, "sources", "--store", store, "--json", "--quick")[1])[
        "sources"
    ]
    assert quick["state"] == "unchecked"
    packed.write_bytes(
        gzip.compress(plain.read_bytes() + b'{"id": 99, "category": "a", "value": 1}\n')
    )
    [grown] = json.loads(run(capsys, "sources", "--store", store, "--json")[1])["sources"]
    assert (grown["state"], grown["new_bytes"], grown["pending_tail_bytes"]) == ("grew", 40, 0)


def test_a_store_with_no_commit_has_no_sources(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "empty.jsonl"
    source.write_bytes(b"")
    store = str(tmp_path / "store")
    assert run(capsys, "ingest", str(source), "--store", store, "--quiet")[0] == 0
    code, out, _ = run(capsys, "sources", "--store", store, "--json")
    doc = json.loads(out)
    assert (code, doc["sources"], doc["totals"]["sources"]) == (0, [], 0)
    out = run(capsys, "sources", "--store", store)[1]
    assert "none yet: eventfold ingest FILE records one" in out


def test_sources_of_a_missing_store_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "sources", "--store", str(tmp_path / "none"))
    assert (code, out) == (2, "")
    assert err.startswith("eventfold: unusable store: ")


def test_hashing_tells_its_progress_up_to_the_total(
    changed: tuple[str, dict[str, Path]], tmp_path: Path
) -> None:
    from eventfold.application.admin.sources import source_states
    from eventfold.application.app import open_app

    store, _ = changed
    told: list[tuple[str, int, int | None, str]] = []
    app = open_app(store, create=False)
    try:
        report = source_states(app, progress=lambda *args, **_: told.append(args))
    finally:
        app.close()
    positions = [s.position for s in report.sources if s.kind == "file"]
    assert {(phase, unit) for phase, _, _, unit in told} == {("checking sources", "bytes")}
    done = [d for _, d, _, _ in told]
    assert done == sorted(done) and done[-1] == sum(positions)  # the vanished file counted too
    assert {total for _, _, total, _ in told} == {sum(positions)}
