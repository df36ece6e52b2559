"""`explain` and `events` under reconstruction: every report tells the raw events counted in a
total from those a standing reconstruction holds out of it, and from the summary standing for
them; the sum is exact (raw counted + reconstructed = projection total), nothing counted
twice, before and after the reconstruction is retired."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from clihelpers import run
from eventfold.application.reconstructing.plan import Part, Plan, Reconstruction
from eventfold.application.reconstructing.standing import standing_as_of
from eventfold.projections.base import RecordedFact

PERIOD = "2026-11-30T12:00Z/2026-11-30T15:00Z"
FIRST = (  # the afternoon's log was lost: one rent event of the period made it in
    '{"id": 1, "category": "rent", "value": 10, "timestamp": "2026-11-30T10:00:00Z"}\n'
    '{"id": 2, "category": "rent", "value": 20, "timestamp": "2026-11-30T11:30:00Z"}\n'
    '{"id": 3, "category": "rent", "value": 1, "timestamp": "2026-11-30T12:05:00Z"}\n'
    '{"id": 4, "category": "rent", "value": 30, "timestamp": "2026-11-30T16:00:00Z"}\n'
    '{"id": 5, "category": "food", "value": 5, "timestamp": "2026-11-30T12:30:00Z"}\n'
)
FOUND = (  # the lost events, found after the reconstruction was made (15:00 is after it)
    '{"id": 10, "category": "rent", "value": 100, "timestamp": "2026-11-30T12:10:00Z"}\n'
    '{"id": 11, "category": "rent", "value": 200, "timestamp": "2026-11-30T14:59:00Z"}\n'
    '{"id": 12, "category": "rent", "value": 7, "timestamp": "2026-11-30T15:00:00Z"}\n'
)
SUMMARY = "category,count,total\nrent,3,290\n"  # 11 short of the raw truth (301)


def figures(count: int, total: str) -> dict[str, Any]:
    return {"count": count, "total": total}


NONE = figures(0, "0")


@pytest.fixture
def store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Path:
    """A gap afternoon reconstructed (R1), a catch-up while it stands (a snapshot), then the
    lost events found and ingested: two of them held out, one after the period."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EVENTFOLD_USER", "auditor")
    (tmp_path / "first.jsonl").write_text(FIRST, encoding="utf-8")
    (tmp_path / "found.jsonl").write_text(FOUND, encoding="utf-8")
    (tmp_path / "sum.csv").write_text(SUMMARY, encoding="utf-8")
    store = tmp_path / "store"
    at = ("--store", str(store))
    assert run(capsys, "ingest", "first.jsonl", *at, "--quiet")[0] == 0
    made = ("reconstruct", "--from", "sum.csv", "--period", PERIOD, "--note", "gap afternoon")
    assert run(capsys, *made, *at)[0] == 0
    assert run(capsys, "catchup", *at)[0] == 0
    assert run(capsys, "ingest", "found.jsonl", *at, "--quiet")[0] == 0
    return store


def explain(capsys: pytest.CaptureFixture[str], store: Path, *args: str) -> dict[str, Any]:
    code, out, err = run(capsys, "explain", "rent", "--store", str(store), "--json", *args)
    assert (code, err) == (0, "")
    doc: dict[str, Any] = json.loads(out)
    return doc


def events(capsys: pytest.CaptureFixture[str], store: Path, *args: str) -> dict[str, Any]:
    code, out, err = run(capsys, "events", "--store", str(store), "--json", *args)
    assert (code, err) == (0, "")
    doc: dict[str, Any] = json.loads(out)
    return doc


def test_explain_gives_the_exact_split_of_a_total_under_reconstruction(
    store: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    doc = explain(capsys, store)
    assert doc["events"] == figures(7, "368")  # every raw event: raw truth
    assert doc["held"] == figures(3, "301")  # id 3 (replaced), 10 and 11 (found later)
    assert doc["counted"] == figures(4, "67")  # 10 + 20 + 30 + 7 (15:00 is not in the period)
    assert doc["reconstructed"] == figures(3, "290") | {"reconstructions": ["R1"]}
    assert doc["projection_total"] == figures(7, "357")  # 67 + 290
    assert (doc["sum_matches"], doc["folds_reconstructions"]) == (True, True)
    [r1] = doc["reconstructions"]
    assert (r1["id"], r1["status"], r1["note"], r1["made"]["by"]) == (
        "R1",
        "standing",
        "gap afternoon",
        "auditor",
    )
    assert (r1["start"], r1["end"]) == ("2026-11-30T12:00:00+00:00", "2026-11-30T15:00:00+00:00")
    digest = hashlib.sha256(SUMMARY.encode()).hexdigest()
    assert r1["summary"] == {"path": str(tmp_path / "sum.csv"), "sha256": digest}
    assert (r1["part"], r1["replaced"], r1["held_since"]) == (
        figures(3, "290"),
        figures(1, "1"),
        figures(2, "300"),
    )
    held = {s["source"]: s["held"] for s in doc["sources"]}
    assert held == {str(tmp_path / "first.jsonl"): figures(1, "1")} | {
        str(tmp_path / "found.jsonl"): figures(2, "300")
    }
    hours = {h["hour"][11:13]: (h["count"], h["held"]) for h in doc["hours"]}
    assert hours == {
        "10": (1, NONE),
        "11": (1, NONE),
        "12": (2, figures(2, "101")),
        "14": (1, figures(1, "200")),
        "15": (1, NONE),
        "16": (1, NONE),
    }
    food = json.loads(run(capsys, "explain", "food", "--store", str(store), "--json")[1])
    assert (food["held"], food["reconstructions"], food["sum_matches"]) == (NONE, [], True)


def test_the_terminal_report_says_the_sum_in_words(
    store: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")
    code, out, err = run(capsys, "explain", "rent", "--store", str(store))
    assert (code, err) == (0, "")
    verdict = (
        "sum of raw events counted 67 (4 events) + reconstructed 290 (3 events, R1) = "
        "projection total 357 (7 events): yes"
    )
    assert verdict in out
    assert "held out: 3 events, total 301" in out
    assert "reconstructed: 3 events, total 290 (R1: a summary, not proven" in out
    assert "reconstructions of rent" in out and "sha256 " in out and "gap afternoon" in out
    assert "held out total" in out  # the source and hour tables separate them
    code, out, _ = run(capsys, "explain", "rent", "--store", str(store), "--quiet")
    assert (code, out) == (0, verdict + "\n")


def test_held_events_are_counted_once(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Counted twice, in the fold or in explain's sum, the figures would be 657 or 658, and
    explain would say NO: the fold from scratch, the catch-up from the snapshot taken while
    R1 stood and explain all hold the same three events out, exactly once."""
    caught_up = json.loads(run(capsys, "catchup", "--store", str(store), "--json")[1])
    rebuilt = json.loads(run(capsys, "rebuild", "--store", str(store), "--json")[1])
    assert caught_up["categories"]["rent"] == rebuilt["categories"]["rent"] == figures(7, "357")
    doc = explain(capsys, store)
    counted, held, everything = doc["counted"], doc["held"], doc["events"]
    assert counted["count"] + held["count"] == everything["count"]
    assert Decimal(counted["total"]) + Decimal(held["total"]) == Decimal(everything["total"])
    listed = events(capsys, store, "--category", "rent")
    assert listed["held"] == held | {"reconstructions": ["R1"]}
    in_total = [Decimal(e["value"]) for e in listed["events"] if e["held_by"] is None]
    assert (len(in_total), sum(in_total)) == (counted["count"], Decimal(counted["total"]))


def test_events_marks_exactly_the_held_events(
    store: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = events(capsys, store)
    marked = {e["event_id"]: e["held_by"] for e in doc["events"]}
    assert marked == {
        "1": None,
        "2": None,
        "3": "R1",  # in the store when R1 was made: it replaced it
        "4": None,
        "5": None,  # food: R1 has no part for it
        "10": "R1",  # found later: held out
        "11": "R1",
        "12": None,  # 15:00: the period ends before it
    }
    assert (doc["count"], doc["total"]) == (8, "373")
    assert doc["held"] == {"count": 3, "total": "301", "reconstructions": ["R1"]}
    out = run(capsys, "events", "--store", str(store), "--csv")[1]
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {r["event_id"]: r["held_by"] for r in rows} == {k: v or "" for k, v in marked.items()}
    out = run(capsys, "events", "--store", str(store), "--jsonl", "--category", "rent")[1]
    assert [json.loads(line)["held_by"] for line in out.splitlines()] == [
        None,
        None,
        "R1",
        None,
        "R1",
        "R1",
        None,
    ]
    monkeypatch.setenv("COLUMNS", "300")
    code, out, _ = run(capsys, "events", "--store", str(store), "--category", "rent")
    assert code == 0 and "held by" in out
    assert out.rstrip().endswith(
        "7 events, total 368; 3 events, total 301, held out of category_totals by R1 (raw, "
        "not in its total: a reconstruction stands for them)"
    )


def test_after_retiring_every_raw_event_counts_again(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, _ = run(capsys, "reconstruct", "--retire", "R1", "--store", str(store))
    assert code == 0
    doc = explain(capsys, store)
    assert doc["events"] == doc["counted"] == doc["projection_total"] == figures(7, "368")
    assert (doc["held"], doc["sum_matches"]) == (NONE, True)
    assert doc["reconstructed"] == NONE | {"reconstructions": []}
    [r1] = doc["reconstructions"]
    assert (r1["status"], r1["retired"]["by"]) == ("retired", "auditor")
    assert (r1["replaced"], r1["held_since"]) == (figures(1, "1"), figures(2, "300"))
    code, out, _ = run(capsys, "explain", "rent", "--store", str(store), "--quiet")
    assert (code, out) == (0, "sum of events = projection total: yes\n")
    listed = events(capsys, store)
    assert {e["held_by"] for e in listed["events"]} == {None}
    assert listed["held"] == {"count": 0, "total": "0", "reconstructions": []}


def test_a_projection_that_folds_no_reconstruction_counts_every_raw_event(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = explain(capsys, store, "--projection", "hourly_totals")
    assert doc["events"] == doc["counted"] == doc["projection_total"] == figures(7, "368")
    assert (doc["folds_reconstructions"], doc["held"], doc["sum_matches"]) == (False, NONE, True)
    assert [r["id"] for r in doc["reconstructions"]] == ["R1"]  # shown, not in the sum


def _at(hour: int) -> datetime:
    return datetime(2026, 11, 30, hour, tzinfo=UTC)


def test_standing_is_read_as_of_a_position() -> None:
    """A reconstruction made after the position is not there; one retired after it stands."""
    part = Part("rent", 3, Decimal(290), 0, Decimal(0), 2, Decimal(300))
    r1 = Reconstruction(
        "R1", _at(12), _at(15), "d", "/s.csv", "", "me", _at(20), 5, {"rent": part}, 10, _at(21)
    )
    plan = Plan([r1])

    def fact(notification_id: int, hour: int) -> RecordedFact:
        return RecordedFact(notification_id, "x", "rent", Decimal(1), _at(hour), "s", 1, 0)

    assert standing_as_of(plan, 4).of("rent") == []
    during = standing_as_of(plan, 8)
    [seen] = during.of("rent")
    assert (seen.retired_on, seen.parts["rent"].held_count) == (None, 0)
    assert during.holding(fact(7, 13)) is seen
    assert during.holding(fact(3, 13)) is seen  # replaced: in the store when it was made
    assert during.holding(fact(7, 15)) is None  # the period ends at 15:00
    after = standing_as_of(plan, 12)
    assert not after and after.holding(fact(7, 13)) is None
    assert after.of("rent") == [r1]
