"""States as of a point on a store with a reconstruction (``rebuild --as-of``,
``--as-of-recorded``, ``verify --as-of``, ``diff A B``).

A small day, every figure worked out by hand: food, rent and fun events, the
period 12:00-15:00 of food and rent lost and a summary made to stand for it
(R1: food 3 events, 60; rent 1 event, 650), one event of the period found while
it stands, R1 retired, one more found after. Each state as of a point is checked
against those figures.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from clihelpers import run

PERIOD = "2026-11-30T12:00Z/2026-11-30T15:00Z"
START, END = "2026-11-30T12:00:00+00:00", "2026-11-30T15:00:00+00:00"

FIRST = [  # ingested before R1 is made
    ("e1", "food", "10", "10:00"),
    ("e2", "food", "20", "12:30"),  # in the period: R1 replaces it
    ("e3", "rent", "700", "13:00"),  # in the period: R1 replaces it
    ("e4", "food", "5", "16:00"),
    ("e5", "fun", "3", "13:30"),  # in the period, but R1 has no part for fun
]
FOUND = [  # ingested while R1 stands
    ("e6", "food", "7", "14:00"),  # in the period: held out
    ("e7", "rent", "40", "17:00"),
]
LATE = [("e8", "food", "1", "12:15")]  # ingested after R1 is retired: counts

State = dict[str, tuple[int, str]]
RAW_FIRST: State = {"food": (3, "35"), "rent": (1, "700"), "fun": (1, "3")}
MADE: State = {"food": (5, "75"), "rent": (1, "650"), "fun": (1, "3")}
STANDING: State = {"food": (5, "75"), "rent": (2, "690"), "fun": (1, "3")}
RETIRED: State = {"food": (4, "42"), "rent": (2, "740"), "fun": (1, "3")}
END_STATE: State = {"food": (5, "43"), "rent": (2, "740"), "fun": (1, "3")}


def write(path: Path, rows: list[tuple[str, str, str, str]]) -> str:
    with path.open("w") as f:
        for event_id, category, value, hour in rows:
            doc = {"id": event_id, "category": category, "timestamp": f"2026-11-30T{hour}:00Z"}
            f.write(json.dumps(doc)[:-1] + f', "value": {value}}}\n')
    return str(path)


def last_position(capsys: pytest.CaptureFixture[str], store: str) -> int:
    code, out, _ = run(capsys, "status", "--store", store, "--json")
    assert code == 0
    position: int = json.loads(out)["last_notification_id"]
    return position


def ingest(capsys: pytest.CaptureFixture[str], store: str, source: str) -> None:
    assert run(capsys, "ingest", source, "--store", store, "--quiet")[0] == 0
    # a snapshot at the end of each step: as of a later position folds on from it
    assert run(capsys, "catchup", "--store", store, "--snapshot-every", "1")[0] == 0


def doc_of(capsys: pytest.CaptureFixture[str], store: str, *args: str) -> dict[str, Any]:
    code, out, err = run(capsys, *args, "--store", store, "--json")
    assert code == 0, err
    doc: dict[str, Any] = json.loads(out)
    return doc


def state_of(doc: dict[str, Any]) -> State:
    return {name: (row["count"], row["total"]) for name, row in doc["categories"].items()}


def as_of(capsys: pytest.CaptureFixture[str], store: str, *point: str) -> dict[str, Any]:
    return doc_of(capsys, store, "rebuild", *point)


@pytest.fixture
def standing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """The store up to R1 standing with e6 held: positions and R1 as made."""
    store = str(tmp_path / "store")
    ingest(capsys, store, write(tmp_path / "first.jsonl", FIRST))
    summary = tmp_path / "summary.csv"
    summary.write_text("category,count,total\nfood,3,60\nrent,1,650\n")
    made = doc_of(capsys, store, "reconstruct", "--from", str(summary), "--period", PERIOD)
    ingest(capsys, store, write(tmp_path / "found.jsonl", FOUND))
    return {
        "store": store,
        "tmp": tmp_path,
        "made": made,
        "made_at": made["reconstruction"]["made"]["position"],
        "made_on": datetime.fromisoformat(made["reconstruction"]["made"]["at"]),
    }


@pytest.fixture
def retired(standing: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """The store on: R1 retired, then e8 ingested."""
    store = standing["store"]
    done = doc_of(capsys, store, "reconstruct", "--retire", "R1")["reconstruction"]["retired"]
    ingest(capsys, store, write(standing["tmp"] / "late.jsonl", LATE))
    retired_on = datetime.fromisoformat(done["at"])
    return standing | {"retired_at": done["position"], "retired_on": retired_on}


def test_as_of_a_position_follows_the_reconstructions_made_and_retired_there(
    retired: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    store, made, gone = retired["store"], retired["made_at"], retired["retired_at"]
    for position, expected, standing in (
        (made - 1, RAW_FIRST, []),
        (made, MADE, ["R1"]),
        (gone - 1, STANDING, ["R1"]),
        (gone, RETIRED, []),
        (last_position(capsys, store), END_STATE, []),
    ):
        doc = as_of(capsys, store, "--as-of", f"@{position}")
        assert state_of(doc) == expected, position
        assert doc["as_of"]["reconstructions"] == standing, position
        assert doc["as_of"]["snapshot_used"] is not None  # folded on from a snapshot
    doc = as_of(capsys, store, "--as-of", f"@{made}")
    assert doc["figures"]["food"]["reconstructed_count"] == 3
    assert doc["figures"]["rent"]["reconstructed_total"] == "650"
    assert (
        as_of(capsys, store, "--as-of", "now")["categories"]
        == as_of(capsys, store, "--as-of", f"@{last_position(capsys, store)}")["categories"]
    )
    code, out, _ = run(capsys, "rebuild", "--store", store, "--as-of", f"@{made}")
    assert code == 0 and "summaries counted for the periods of R1" in out


def test_diff_across_the_made_position_sums_to_the_reconstruction_adjustments(
    retired: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    store, made, gone = retired["store"], retired["made_at"], retired["retired_at"]
    doc = doc_of(capsys, store, "diff", f"@{made - 1}", f"@{made}")
    rows = {r["category"]: r for r in retired["made"]["rows"]}  # summary and replaced
    assert {d["category"] for d in doc["differences"]} == set(rows) == {"food", "rent"}
    for d in doc["differences"]:
        row = rows[d["category"]]
        assert d["delta"]["count"] == row["count"] - row["raw_count"]
        assert d["delta"]["total"] == str(int(row["total"]) - int(row["raw_total"]))
        assert d["reconstructions"] == ["R1"]
    assert doc["reconstructions"] == [
        {"id": "R1", "start": START, "end": END, "from": False, "to": True}
    ]
    doc = doc_of(capsys, store, "diff", f"@{gone - 1}", f"@{gone}")
    deltas = {d["category"]: (d["delta"], d["reconstructions"]) for d in doc["differences"]}
    assert deltas == {  # the summary out, the replaced e2, e3 and the held e6 back
        "food": ({"count": -1, "total": "-33"}, ["R1"]),
        "rent": ({"count": 0, "total": "50"}, ["R1"]),
    }
    assert [(r["from"], r["to"]) for r in doc["reconstructions"]] == [(True, False)]
    doc = doc_of(capsys, store, "diff", f"@{made}", f"@{gone - 1}")  # R1 stood throughout
    assert [(d["category"], d["reconstructions"]) for d in doc["differences"]] == [("rent", [])]
    assert doc["reconstructions"] == []
    code, out, _ = run(capsys, "diff", f"@{made - 1}", f"@{made}", "--store", store)
    assert code == 0 and "reconstruction" in out and "counts at @" in out
    assert out.count("R1") >= 3  # each row and the line below the table


def test_as_of_a_recorded_time_is_the_prefix_recorded_by_then(
    retired: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    store = retired["store"]
    tick = timedelta(microseconds=1)
    made_on, retired_on = retired["made_on"], retired["retired_on"]
    for moment, expected, standing in (
        (made_on - tick, RAW_FIRST, []),  # R1 made after it: it does not stand
        (made_on, MADE, ["R1"]),
        (retired_on - tick, STANDING, ["R1"]),  # retired after it: stands, e6 held
        (retired_on, RETIRED, []),
    ):
        doc = as_of(capsys, store, "--as-of-recorded", moment.isoformat())
        assert state_of(doc) == expected, moment
        assert doc["as_of"]["reconstructions"] == standing, moment
        same = as_of(capsys, store, "--as-of", f"@{doc['as_of']['position']}")
        assert same["checksum"] == doc["checksum"]
    doc = as_of(capsys, store, "--as-of-recorded", (made_on - tick).isoformat())
    assert doc["as_of"]["position"] == retired["made_at"] - 1
    assert doc["as_of"]["left_out"] == len(FOUND) + len(LATE)
    doc = doc_of(
        capsys, store, "diff", (made_on - tick).isoformat(), made_on.isoformat(), "--recorded"
    )
    assert {d["category"]: d["reconstructions"] for d in doc["differences"]} == {
        "food": ["R1"],
        "rent": ["R1"],
    }


def test_as_of_an_occurred_time_counts_a_standing_reconstruction_whole(
    standing: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    store = standing["store"]
    doc = as_of(capsys, store, "--as-of", "2026-11-30T16:00Z")  # the period ends before
    assert state_of(doc) == {"food": (5, "75"), "rent": (1, "650"), "fun": (1, "3")}
    a = doc["as_of"]
    assert (a["reconstructions"], a["left_out_reconstructed"], a["left_out"]) == (["R1"], 3, 1)
    assert doc["figures"]["rent"]["min"] is None  # only the summary stands for rent
    doc = as_of(capsys, store, "--as-of", "2026-11-30T15:00Z")  # at the period's end
    assert state_of(doc) == {"food": (4, "70"), "rent": (1, "650"), "fun": (1, "3")}
    doc = as_of(capsys, store, "--as-of", "2026-11-30T11:00Z")  # before the period
    assert state_of(doc) == {"food": (1, "10")}
    assert doc["as_of"]["reconstructions"] == []
    doc = doc_of(capsys, store, "diff", "2026-11-30T11:00Z", "2026-11-30T16:00Z")
    assert {d["category"]: d["reconstructions"] for d in doc["differences"]} == {
        "food": ["R1"],
        "rent": ["R1"],
        "fun": [],
    }
    expected = standing["tmp"] / "at16.csv"
    expected.write_text("category,count,total\nfood,5,75\nrent,1,650\nfun,1,3\n")
    code, _, err = run(
        capsys,
        "verify",
        "--store",
        store,
        "--expected",
        str(expected),
        "--as-of",
        "2026-11-30T16:00Z",
    )
    assert code == 0, err
    source = write(standing["tmp"] / "day.jsonl", FIRST + FOUND)  # read as the store is
    code, out, err = run(
        capsys, "verify", source, "--store", store, "--as-of", "2026-11-30T16:00Z", "--json"
    )
    assert code == 0 and json.loads(out)["status"] == "match", err


@pytest.mark.parametrize("inside", ["2026-11-30T13:00Z", "2026-11-30T12:00Z"])
def test_an_occurred_time_inside_a_standing_period_is_refused(
    standing: dict[str, Any], capsys: pytest.CaptureFixture[str], inside: str
) -> None:
    store = standing["store"]
    for args in (
        ("rebuild", "--as-of", inside),
        ("diff", "2026-11-30T11:00Z", inside),
        ("verify", "--expected-checksum", "0" * 64, "--as-of", inside),
    ):
        code, out, err = run(capsys, *args, "--store", store)
        assert (code, out) == (2, ""), args
        assert err.count("\n") == 1 and "Traceback" not in err
        assert "R1" in err and f"{START}/{END}" in err and "@N" in err
        assert f"before {START}" in err and f"at or after {END}" in err


def test_as_of_an_occurred_time_after_retirement_counts_the_raw_events(
    retired: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    doc = as_of(capsys, retired["store"], "--as-of", "2026-11-30T13:00Z")  # R1 retired: no split
    assert state_of(doc) == {"food": (3, "31"), "rent": (1, "700")}
    assert (doc["as_of"]["reconstructions"], doc["as_of"]["left_out_reconstructed"]) == ([], 0)
