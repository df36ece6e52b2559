"""What every command does alike: standard input, absolute source names, ``--quiet``,
truthful snapshot reports, and reconcile's next step when the store and source disagree."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from clihelpers import run

LINES = b"".join(
    b'{"id": %d, "category": "%s", "value": %d.5}\n' % (i, b"ab"[i % 2 : i % 2 + 1], i)
    for i in range(10)
)


def stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


@pytest.fixture
def store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """A store that holds every other line of ``LINES`` (5 of its 10 events)."""
    feed = tmp_path / "feed.jsonl"
    feed.write_bytes(b"".join(LINES.splitlines(keepends=True)[::2]))
    store = str(tmp_path / "store")
    assert run(capsys, "ingest", str(feed), "--store", store, "--quiet")[0] == 0
    return store


def test_reconcile_reads_standard_input(
    store: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stdin(monkeypatch, LINES)
    code, out, err = run(capsys, "reconcile", "-", "--store", store, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["source"], doc["missing"], doc["replayed"]) == ("-", 5, 5)
    assert doc["after"]["status"] == "match" and doc["after"]["source"] == "-"
    stdin(monkeypatch, LINES)  # a second run finds nothing to replay
    doc = json.loads(run(capsys, "reconcile", "-", "--store", store, "--json")[1])
    assert (doc["missing"], doc["replayed"], doc["status"]) == (0, 0, "match")


def test_verify_reads_standard_input(
    store: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stdin(monkeypatch, LINES)
    code, out, _ = run(capsys, "verify", "--source", "-", "--store", store, "--json")
    doc = json.loads(out)
    assert (code, doc["source"], doc["missing_events"]) == (1, "-", 5)


def test_binary_standard_input_is_refused_by_reconcile(
    store: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stdin(monkeypatch, b"\x00\x01binary")
    code, _, err = run(capsys, "reconcile", "-", "--store", store)
    assert code == 2 and err.startswith("eventfold: unusable source: -: looks like binary")


def test_the_json_source_is_absolute_in_every_command(
    store: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "all.jsonl").write_bytes(LINES)
    monkeypatch.chdir(tmp_path)
    absolute = str(tmp_path.resolve() / "all.jsonl")
    docs: list[Any] = []
    for args in (
        ["ingest", "all.jsonl", "--store", store, "--json"],
        ["verify", "--source", "all.jsonl", "--store", store, "--json"],
        ["reconcile", "all.jsonl", "--store", store, "--json", "--dry-run"],
    ):
        docs.append(json.loads(run(capsys, *args)[1]))
    assert [d["source"] for d in docs] == [absolute] * 3
    assert docs[2]["before"]["source"] == absolute


def test_quiet_ingest_and_check_print_only_their_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "s.jsonl"
    source.write_bytes(LINES + b"not json\n")
    store = str(tmp_path / "store")
    code, out, _ = run(capsys, "ingest", str(source), "--store", store, "--quiet")
    assert code == 0
    assert out.splitlines() == [
        f"ingest {source}: read 11, ingested 10, duplicates 0, conflicts 0, invalid 1; "
        f"now at byte {len(LINES) + 9:,} (line 11)"
    ]
    code, out, _ = run(capsys, "--quiet", "check", "--store", store)
    assert code == 0 and len(out.splitlines()) == 1
    assert out.startswith(f"OK store {store}: logs ") and ", events " in out


def test_a_catchup_with_nothing_to_apply_writes_no_snapshot_and_says_so(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "catchup", "--store", store, "--quiet")[0] == 0
    code, out, _ = run(capsys, "catchup", "--store", store, "--json")
    doc = json.loads(out)
    assert (code, doc["events_applied"], doc["snapshot_written"]) == (0, 0, None)
    assert doc["snapshot_used"]["position"] == doc["position"]
    out = run(capsys, "catchup", "--store", store)[1]
    text = " ".join(out.split())  # the panel may wrap
    assert "snapshot written: none (nothing new to apply: the snapshot used is current)" in text


def test_reconcile_names_the_conflicts_it_leaves_and_the_next_step(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "other.jsonl"  # the store's events 0 and 2, with other values
    source.write_bytes(
        b'{"id": 0, "category": "a", "value": 99}\n{"id": 2, "category": "a", "value": 98}\n'
    )
    code, out, _ = run(capsys, "reconcile", str(source), "--store", store, "--json")
    doc = json.loads(out)
    assert (code, doc["replayed"], doc["missing"]) == (1, 0, 0)
    left = doc["unresolved"]
    assert (left["conflicting_events"], left["conflicting_ids"]) == (2, ["0", "2"])
    assert (left["extra_events"], left["duplicated_events"]) == (3, 0)
    assert f"verify --source {source.resolve()}" in left["next_step"]
    code, out, _ = run(capsys, "reconcile", str(source), "--store", store)
    text = " ".join(out.replace("│", " ").split())
    assert code == 1
    assert "not done: 2 conflicting events (the store and the source disagree)" in text
    assert "conflicting ids: 0, 2" in text
    assert f"verify --source {source.resolve()} --store {store}" in text


def test_reconcile_json_has_no_unresolved_when_it_matches(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "all.jsonl"
    source.write_bytes(LINES)
    doc = json.loads(run(capsys, "reconcile", str(source), "--store", store, "--json")[1])
    assert (doc["status"], doc["unresolved"]) == ("match", None)
