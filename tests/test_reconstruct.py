"""`eventfold reconstruct`: a trusted summary stands for the lost events of a period.

One store with a gap (an afternoon's lines left out of the file ingested), a
summary of that afternoon, and the lost lines found later: each step's totals
are checked against a reference computed here from the events themselves (raw
events outside a standing reconstruction's period, plus its summary; after
``--retire``, every raw event), through ``catchup``, ``rebuild`` (one process
and several), states as of a position, ``follow``, on the file store, on
PostgreSQL and on a plain persistence module of the library.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from clihelpers import run
from eventfold.application.app import Eventfold, open_store
from eventfold.application.ingest import Ingestor
from eventfold.application.projecting import Projector
from eventfold.application.proving.keyed import parse_moment
from eventfold.application.reconstructing import making
from eventfold.application.reconstructing.plan import MADE_TOPIC, RETIRED_TOPIC, load_plan
from eventfold.domain.model import EXACT, Reconstructions
from eventfold.projections.base import canonical_decimal
from eventfold.projections.builtin import CategoryTotals
from processes import HANG, Following, eventfold, wait_until
from readonly import (
    WAYS,
    make_read_only,
    make_writable,
    mount_available,
    run_read_only,
    tree_digest,
)
from summaryhelpers import Event, write, write_summary

PERIOD = "2026-11-30T12:00Z/2026-11-30T15:00Z"
START, END = making.Period.parse(PERIOD).start, making.Period.parse(PERIOD).end
EVENTS: list[Event] = [
    ("1", "rent", "1200.00", "2026-11-30T09:15:00Z"),
    ("2", "food", "12.50", "2026-11-30T09:40:00Z"),
    ("3", "food", "7.25", "2026-11-30T13:05:00Z"),  # lost
    ("4", "fun", "30", "2026-11-30T14:59:59Z"),  # lost
    ("5", "fun", "1.10", "2026-11-30T16:00:00Z"),
    ("6", "rent", "0.01", "2026-11-30T12:00:00Z"),  # lost: the period's first instant
    ("7", "food", "2.20", "2026-11-30T15:00:00Z"),  # the period's end: outside it
    ("8", "food", "4", None),  # no timestamp: in no period
    ("9", "food", "1.5", "2026-11-30T12:30:00Z"),  # in the period, not lost: replaced
    ("10", "rent", "5", "2026-11-30T18:00:00Z"),  # found later, outside the period
    ("11", "travel", "10", "2026-11-30T13:00:00Z"),  # lost, of a category not in the store
    ("12", "fun", "0.40", "2026-11-30T15:00:00Z"),  # found later, at the period's end
]
LATER = {"3", "4", "6", "10", "11", "12"}  # the lines left out of the file first ingested
FEED = [e for e in EVENTS if e[0] not in LATER]
SUMMARY = {  # the afternoon as the books have it: food exact, fun 0.5 short, travel far off
    "food": (2, Decimal("8.75")),
    "fun": (1, Decimal("29.5")),
    "rent": (1, Decimal("0.01")),
    "travel": (3, Decimal("45")),
}
BY = "auditor@books"


def _when(event: Event) -> datetime | None:
    return None if event[3] is None else parse_moment(event[3])


def in_period(event: Event) -> bool:
    when = _when(event)
    return when is not None and START <= when < END


def reference(
    events: list[Event], summary: dict[str, tuple[int, Decimal]] | None = None
) -> dict[str, Any]:
    """category_totals' categories: the raw events, but those of a summary's categories
    in the period, for which the summary stands instead."""
    sums: dict[str, tuple[int, Decimal]] = {}

    def add(name: str, count: int, total: Decimal) -> None:
        n, t = sums.get(name, (0, Decimal(0)))
        sums[name] = (n + count, EXACT.add(t, total))

    for event in events:
        if summary is None or event[1] not in summary or not in_period(event):
            add(event[1], 1, Decimal(event[2]))
    for name, (count, total) in (summary or {}).items():
        add(name, count, total)
    return {name: {"count": n, "total": canonical_decimal(t)} for name, (n, t) in sums.items() if n}


def raw_in_period(events: list[Event], name: str) -> tuple[int, str]:
    values = [Decimal(e[2]) for e in events if e[1] == name and in_period(e)]
    return len(values), canonical_decimal(sum(values, Decimal(0)))


def doc(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    code, out, err = run(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def ingest(capsys: pytest.CaptureFixture[str], path: Path, events: list[Event], *at: str) -> Any:
    """``ingest`` of ``events``, written to ``path``: its JSON document."""
    return doc(capsys, "ingest", str(write(path, events)), *at)


def scenario(
    capsys: pytest.CaptureFixture[str], work: Path, store: str, *backend: str
) -> dict[str, Any]:
    """The gap, the reconstruction, the lost lines found later, the retirement: each
    step checked against ``reference``; what each step gave, to compare backends."""
    work.mkdir()
    at = ("--store", store, *backend)
    seen: dict[str, Any] = {}
    ingest(capsys, work / "feed.jsonl", FEED, *at)
    before = doc(capsys, "catchup", *at, "--snapshot-every", "1")
    assert before["categories"] == reference(FEED)

    summary = write_summary(work / "afternoon.csv", SUMMARY)
    made = doc(
        capsys,
        "reconstruct",
        "--from",
        str(summary),
        "--period",
        PERIOD,
        *at,
        "--note",
        "disk lost",
    )
    r = made["reconstruction"]
    assert made["action"] == "made"
    assert (r["id"], r["status"], r["start"], r["end"]) == (
        "R1",
        "standing",
        "2026-11-30T12:00:00+00:00",
        "2026-11-30T15:00:00+00:00",
    )
    assert r["summary"] == {
        "path": str(summary),
        "sha256": hashlib.sha256(summary.read_bytes()).hexdigest(),
    }
    assert (r["note"], r["made"]["by"], r["retired"]) == ("disk lost", BY, None)
    assert (r["categories"], r["count"], r["total"]) == (4, 7, "83.26")
    assert r["made"]["position"] > before["position"]
    assert made["rows"] == [
        {
            "category": name,
            "count": n,
            "total": canonical_decimal(t),
            "raw_count": raw_in_period(FEED, name)[0],
            "raw_total": raw_in_period(FEED, name)[1],
            "difference": canonical_decimal(
                EXACT.subtract(Decimal(raw_in_period(FEED, name)[1]), t)
            ),
        }
        for name, (n, t) in sorted(SUMMARY.items())
    ]
    assert made["rows"][0]["raw_count"] == 1  # food's event 9: in the store, now replaced
    assert doc(capsys, "reconstruct", "--list", *at) == {"reconstructions": [r]}
    made_end = doc(capsys, "status", *at)["last_notification_id"]

    ingest(capsys, work / "found.jsonl", EVENTS, *at)
    later_end = doc(capsys, "status", *at)["last_notification_id"]
    caught = doc(capsys, "catchup", *at)
    assert caught["snapshot_used"]["position"] == before["position"] < r["made"]["position"]
    assert caught["categories"] == reference(EVENTS, SUMMARY)
    assert caught["categories"]["travel"] == {"count": 3, "total": "45"}  # the summary alone
    figures = caught["figures"]
    for name, (n, t) in SUMMARY.items():
        assert (figures[name]["reconstructed_count"], figures[name]["reconstructed_total"]) == (
            n,
            canonical_decimal(t),
        )
    assert figures["travel"]["min"] is None and figures["travel"]["first"] is None
    seen["standing"] = caught["categories"], caught["checksum"]
    for workers in ("1", "2", "3"):
        rebuilt = doc(capsys, "rebuild", *at, "--workers", workers)
        assert (rebuilt["checksum"], rebuilt["workers"]) == (caught["checksum"], int(workers))
        assert rebuilt["figures"] == caught["figures"]
    hourly = doc(capsys, "rebuild", *at, "--projection", "hourly_totals")
    assert sum(h["count"] for c in hourly["hours"].values() for h in c.values()) == len(EVENTS)

    retired = doc(capsys, "reconstruct", "--retire", "R1", "--note", "recovered", *at)
    r = retired["reconstruction"]
    assert (retired["action"], r["status"], r["retired"]["by"], r["retired"]["note"]) == (
        "retired",
        "retired",
        BY,
        "recovered",
    )
    assert r["retired"]["position"] > later_end
    rows = {row["category"]: row for row in retired["rows"]}
    for name, (n, t) in SUMMARY.items():
        raw_count, raw_total = raw_in_period(EVENTS, name)
        assert rows[name] == {
            "category": name,
            "count": n,
            "total": canonical_decimal(t),
            "raw_count": raw_count,
            "raw_total": raw_total,
            "difference": canonical_decimal(EXACT.subtract(Decimal(raw_total), t)),
        }
    assert {name: row["difference"] for name, row in rows.items()} == {
        "food": "0",
        "fun": "0.5",
        "rent": "0",
        "travel": "-35",
    }
    seen["retired"] = sorted(rows.items())
    assert doc(capsys, "reconstruct", "--list", *at) == {"reconstructions": [r]}
    after = doc(capsys, "catchup", *at)
    assert after["categories"] == reference(EVENTS)
    assert not any("reconstructed_count" in f for f in after["figures"].values())
    assert doc(capsys, "rebuild", *at)["checksum"] == after["checksum"]
    seen["after"] = after["categories"], after["checksum"]

    end = doc(capsys, "status", *at)["last_notification_id"]
    points = {
        before["position"]: reference(FEED),
        made_end: reference(FEED, SUMMARY),
        later_end: reference(EVENTS, SUMMARY),
        end: reference(EVENTS),
    }
    seen["as_of"] = []
    for position, expected in points.items():
        state = doc(capsys, "rebuild", *at, "--as-of", f"@{position}")
        assert state["categories"] == expected, position
        seen["as_of"].append(state["checksum"])
    return seen


def test_a_reconstruction_stands_for_the_lost_afternoon_until_retired(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVENTFOLD_USER", BY)
    seen = scenario(capsys, tmp_path / "work", str(tmp_path / "store"))
    assert seen["standing"][0] == {
        "rent": {"count": 3, "total": "1205.01"},
        "food": {"count": 5, "total": "27.45"},
        "fun": {"count": 3, "total": "31"},
        "travel": {"count": 3, "total": "45"},
    }
    assert seen["after"][0] == {
        "rent": {"count": 3, "total": "1205.01"},
        "food": {"count": 5, "total": "27.45"},
        "fun": {"count": 3, "total": "31.5"},
        "travel": {"count": 1, "total": "10"},
    }


def test_the_same_on_postgres(
    postgres: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EVENTFOLD_USER", BY)
    on_postgres = scenario(capsys, tmp_path / "pg", str(tmp_path / "pg-local"))
    on_files = scenario(capsys, tmp_path / "files", str(tmp_path / "store"), "--backend", "file")
    assert on_postgres == on_files


def test_a_projection_that_counts_raw_events_its_own_way_folds_no_reconstruction(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A subclass of category_totals with a ``Recorded`` handler of its own (here: rent
    left out) cannot take the store's replaced events as its own: it shows raw events
    only (as hourly_totals does), never a summary less events it did not count."""
    store = small_store(tmp_path, capsys)
    summary = str(write_summary(tmp_path / "afternoon.csv", SUMMARY))
    doc(capsys, "reconstruct", "--from", summary, "--period", PERIOD, "--store", store)
    ingest(capsys, tmp_path / "found.jsonl", EVENTS, "--store", store)
    spec = "userprojections:WithoutRent"
    rebuilt = doc(capsys, "rebuild", "--store", store, "--projection", spec)
    assert rebuilt["categories"] == reference([e for e in EVENTS if e[1] != "rent"])

    class Renamed(CategoryTotals):  # the same fold under another name: it folds them
        name = "renamed"

    assert Renamed.folds_reconstructions and CategoryTotals.folds_reconstructions


# -- the reports ---------------------------------------------------------------


def small_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    store = str(tmp_path / "store")
    ingest(capsys, tmp_path / "feed.jsonl", FEED, "--store", store)
    return store


def test_the_reports_show_the_summary_beside_the_raw_events(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVENTFOLD_USER", BY)
    monkeypatch.setenv("COLUMNS", "200")
    store = small_store(tmp_path, capsys)
    code, out, _ = run(capsys, "reconstruct", "--list", "--store", store)
    assert (code, out.strip()) == (0, "no reconstruction in this store")
    assert doc(capsys, "reconstruct", "--list", "--store", store) == {"reconstructions": []}
    odd = {"[b]fun[/b]": (1, Decimal("29.5")), "food": (2, Decimal("8.75"))}
    summary = write_summary(tmp_path / "[bold]afternoon.csv", odd)
    code, out, err = run(
        capsys,
        "reconstruct",
        "--from",
        str(summary),
        "--period",
        PERIOD,
        "--note",
        "[i]disk[/i] lost",
        "--store",
        store,
    )
    assert (code, err) == (0, "")
    digest = hashlib.sha256(summary.read_bytes()).hexdigest()
    for text in (
        "reconstruction R1 made",
        "R1 (standing): 2026-11-30T12:00:00+00:00/2026-11-30T15:00:00+00:00",
        "2 categories, 3 events, total 38.25",
        "[bold]afternoon.csv",
        f"sha256 {digest}",
        f"by {BY}: [i]disk[/i] lost",
        "replaced count",
        "[b]fun[/b]",
        "reconstruct --retire R1 --store",
    ):
        assert text in out, (text, out)
    code, out, _ = run(capsys, "reconstruct", "--list", "--store", store)
    assert code == 0 and "(standing)" in out and f"sha256 {digest}" in out
    code, out, _ = run(capsys, "catchup", "--store", store)
    assert code == 0 and "2 totals rest in part on reconstructions" in " ".join(out.split())
    code, out, err = run(capsys, "reconstruct", "--retire", "R1", "--store", store)
    assert (code, err) == (0, "")
    assert "reconstruction R1 retired" in out and "Δ total (raw - summary)" in out
    food = next(line for line in out.splitlines() if " food " in line)
    cells = [cell.strip() for cell in food.split("│")[1:-1]]
    assert cells == ["food", "2", "8.75", "1", "1.5", "-7.25"], food
    code, out, _ = run(capsys, "reconstruct", "--list", "--store", store)
    assert code == 0 and "(retired 2" in out and f"retired by {BY}" in out


def test_a_summary_row_of_no_events_stands_for_its_category(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``fun,0,0``: the books say fun had no event in the period. The fun event of the
    period found later is held out while it stands; retiring shows how far that was."""
    store = small_store(tmp_path, capsys)
    summary = {"fun": (0, Decimal(0)), "food": SUMMARY["food"]}
    path = str(write_summary(tmp_path / "afternoon.csv", summary))
    made = doc(capsys, "reconstruct", "--from", path, "--period", PERIOD, "--store", store)
    assert [(row["category"], row["count"]) for row in made["rows"]] == [("food", 2), ("fun", 0)]
    ingest(capsys, tmp_path / "found.jsonl", EVENTS, "--store", store)
    assert doc(capsys, "catchup", "--store", store)["categories"] == reference(EVENTS, summary)
    retired = doc(capsys, "reconstruct", "--retire", "R1", "--store", store)
    fun = next(row for row in retired["rows"] if row["category"] == "fun")
    assert (fun["count"], fun["raw_count"], fun["raw_total"], fun["difference"]) == (
        0,
        1,
        "30",
        "30",
    )
    assert doc(capsys, "catchup", "--store", store)["categories"] == reference(EVENTS)


def test_the_summary_is_read_as_verify_reads_an_expected_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its columns named by --key, --count-col and --total-col, its numbers written as
    --number-format says (a TSV here), or JSON Lines of the canonical measures."""
    store = small_store(tmp_path, capsys)
    books = tmp_path / "books.tsv"
    books.write_text("name\tn\tamount\nfood\t2\t8,75\nrent\t1\t1.000,01\n")
    made = doc(
        capsys,
        "reconstruct",
        "--from",
        str(books),
        "--period",
        PERIOD,
        "--store",
        store,
        "--key",
        "name",
        "--count-col",
        "n",
        "--total-col",
        "amount",
        "--number-format",
        "1.234,56",
    )
    assert [(r["category"], r["count"], r["total"]) for r in made["rows"]] == [
        ("food", 2, "8.75"),
        ("rent", 1, "1000.01"),
    ]
    lines = tmp_path / "fun.jsonl"
    lines.write_text('{"category": "fun", "count": 1, "total": 29.5}\n')
    period = "2026-11-30T12:00Z/2026-11-30T13:00Z"
    made = doc(capsys, "reconstruct", "--from", str(lines), "--period", period, "--store", store)
    assert [(r["category"], r["count"], r["total"]) for r in made["rows"]] == [("fun", 1, "29.5")]
    expected = reference(FEED, {"food": (2, Decimal("8.75")), "rent": (1, Decimal("1000.01"))})
    expected["fun"] = {"count": 2, "total": "30.6"}  # 5 is outside R2's hour
    assert doc(capsys, "catchup", "--store", store)["categories"] == expected


# -- refusals -------------------------------------------------------------------


REFUSED = {
    "overlapping": (
        ["--from", "{fun}", "--period", "2026-11-30T14:00Z/2026-11-30T16:00Z"],
        "reconstruction R2 (2026-11-30T12:00:00+00:00/2026-11-30T15:00:00+00:00) already "
        "stands for 'fun' in an overlapping period: retire it first",
    ),
    "overlapping, several": (
        ["--from", "{both}", "--period", "2026-11-30T11:00Z/2026-11-30T12:00:01Z"],
        "already stands for 'food' and 1 more in an overlapping period",
    ),
    "retired twice": (["--retire", "R1"], "reconstruction R1 was retired already ("),
    "unknown id": (["--retire", "R9"], "no reconstruction 'R9' in this store (made: R1, R2)"),
    "no count column": (
        ["--from", "{no_count}", "--period", "2026-12-01/2026-12-02"],
        "no_count.csv: count missing in 1 row: a reconstruction needs each category's "
        "count and total",
    ),
    "a total of no events": (
        ["--from", "{zero}", "--period", "2026-12-01/2026-12-02"],
        "zero.csv: category 'food' has a total but 0 events",
    ),
    "no row": (
        ["--from", "{empty}", "--period", "2026-12-01/2026-12-02"],
        "empty.csv: no row in it",
    ),
    "no summary file": (
        ["--from", "{missing}", "--period", "2026-12-01/2026-12-02"],
        "missing.csv: cannot be read",
    ),
    "end before start": (
        ["--from", "{fun}", "--period", "2026-12-02/2026-12-01"],
        "--period '2026-12-02/2026-12-01': the period must end after it starts",
    ),
    "empty period": (
        ["--from", "{fun}", "--period", "2026-12-02T10:00Z/2026-12-02T10:00Z"],
        "the period must end after it starts",
    ),
    "not ISO": (
        ["--from", "{fun}", "--period", "yesterday/today"],
        "--period 'yesterday/today': START and END must be ISO 8601 dates or times",
    ),
    "one end": (
        ["--from", "{fun}", "--period", "2026-12-01"],
        "--period '2026-12-01': expected START/END",
    ),
    "no period": (["--from", "{fun}"], "argument --from: needs --period START/END"),
    "period without summary": (
        ["--period", PERIOD],
        "argument --period: goes with --from SUMMARY",
    ),
    "period with retire": (
        ["--retire", "R2", "--period", PERIOD],
        "argument --period: goes with --from SUMMARY",
    ),
    "key without summary": (
        ["--key", "category"],
        "argument --key: reads the summary, so it needs --from SUMMARY",
    ),
    "count column with list": (
        ["--list", "--count-col", "n"],
        "argument --count-col: reads the summary, so it needs --from SUMMARY",
    ),
    "nothing to do": ([], "one of --from SUMMARY, --retire ID or --list is required"),
}


@pytest.fixture
def refusing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[str, dict[str, str]]:
    """A store where R1 (food) was retired and R2 (food, fun; the same period) stands."""
    store = small_store(tmp_path, capsys)
    files = {
        "fun": write_summary(tmp_path / "fun.csv", {"fun": (1, Decimal(30))}),
        "both": write_summary(tmp_path / "both.csv", {k: SUMMARY[k] for k in ("fun", "food")}),
        "food": write_summary(tmp_path / "food.csv", {"food": SUMMARY["food"]}),
        "zero": tmp_path / "zero.csv",
        "no_count": tmp_path / "no_count.csv",
        "missing": tmp_path / "missing.csv",
        "empty": tmp_path / "empty.csv",
    }
    files["empty"].write_text("category,count,total\n")
    files["zero"].write_text("category,count,total\nfood,0,3\n")
    files["no_count"].write_text("category,total\nfood,3\n")
    given = {name: str(path) for name, path in files.items()}
    at = ("--store", store)
    assert doc(capsys, "reconstruct", "--from", given["food"], "--period", PERIOD, *at)
    assert doc(capsys, "reconstruct", "--retire", "R1", *at)
    # R1 is retired: the same period, for the same category, can be made to stand again
    assert doc(capsys, "reconstruct", "--from", given["both"], "--period", PERIOD, *at)
    return store, given


@pytest.mark.parametrize("case", REFUSED)
def test_refusals_exit_2_in_one_line_and_change_nothing(
    case: str, refusing: tuple[str, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    store, given = refusing
    before = doc(capsys, "reconstruct", "--list", "--store", store)
    totals = doc(capsys, "catchup", "--store", store)["categories"]
    args, message = REFUSED[case]
    code, out, err = run(
        capsys, "reconstruct", *[a.format(**given) for a in args], "--store", store
    )
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and err.startswith("eventfold: "), err
    assert message in err, err
    assert doc(capsys, "reconstruct", "--list", "--store", store) == before
    assert doc(capsys, "catchup", "--store", store)["categories"] == totals


def test_a_period_next_to_a_standing_one_is_free(
    refusing: tuple[str, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    """A period ends before its END: the next one may start there, for the same category."""
    store, given = refusing
    after = "2026-11-30T15:00Z/2026-11-30T16:00Z"
    made = doc(capsys, "reconstruct", "--from", given["fun"], "--period", after, "--store", store)
    assert made["reconstruction"]["id"] == "R3"
    standing = [
        r["id"]
        for r in doc(capsys, "reconstruct", "--list", "--store", store)["reconstructions"]
        if r["status"] == "standing"
    ]
    assert standing == ["R2", "R3"]
    fun = [e for e in FEED if e[1] == "fun"]  # 5: 16:00, outside both periods
    expected = reference(fun, {"fun": (2, Decimal("59.5"))})["fun"]
    assert doc(capsys, "catchup", "--store", store)["categories"]["fun"] == expected


@pytest.fixture(params=WAYS)
def way(request: pytest.FixtureRequest) -> str:
    if request.param == "mount" and not mount_available():
        pytest.skip("no read-only bind mount here (needs root and unshare -m)")
    return str(request.param)


def test_a_read_only_store_lists_and_refuses_to_reconstruct(
    way: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = small_store(tmp_path, capsys)
    summary = str(write_summary(tmp_path / "afternoon.csv", SUMMARY))
    assert doc(capsys, "reconstruct", "--from", summary, "--period", PERIOD, "--store", store)
    listed = doc(capsys, "reconstruct", "--list", "--store", store)
    if way == "permissions":
        make_read_only(Path(store))
    try:
        before = tree_digest(Path(store))
        for args in (
            ["--from", summary, "--period", "2026-12-01/2026-12-02"],
            ["--retire", "R1"],
        ):
            done = run_read_only(way, Path(store), ["reconstruct", *args, "--store", store])
            assert done.returncode == 2, done.stderr
            assert (
                done.stderr
                == f"eventfold: store is read-only: {store} (reconstruct writes to it)\n"
            )
        done = run_read_only(
            way, Path(store), ["reconstruct", "--list", "--store", store, "--json"]
        )
        assert (done.returncode, json.loads(done.stdout)) == (0, listed), done.stderr
        assert tree_digest(Path(store)) == before
    finally:
        make_writable(Path(store))


# -- a raw event recorded while a reconstruction is made or retired --------------


@pytest.fixture(params=["file", "postgres"])
def backend(request: pytest.FixtureRequest) -> tuple[str, ...]:
    if request.param == "postgres":
        request.getfixturevalue("postgres")
        return ()
    return ("--backend", "file")


def test_a_raw_event_recorded_between_the_read_and_the_commit_is_counted_once(
    backend: tuple[str, ...],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another process ingests an event of the period into one of the summary's categories
    (and the first event of one it names but the store had none of) after ``make`` read
    their versions and before its commit: the commit fails, is made again from a fresh
    read, and the event is among those replaced; then the same while retiring, where it
    is among those held."""
    store = str(tmp_path / "store")
    at = ("--store", store, *backend)
    ingest(capsys, tmp_path / "feed.jsonl", FEED, *at)
    slipped: list[Event] = [
        ("s1", "food", "0.75", "2026-11-30T14:00:00Z"),
        ("s2", "travel", "2", "2026-11-30T12:10:00Z"),
    ]
    held: list[Event] = [("h1", "fun", "0.25", "2026-11-30T12:45:00Z")]
    sources = {
        "make": write(tmp_path / "slipped.jsonl", slipped),
        "retire": write(tmp_path / "held.jsonl", held),
    }
    real_read, real_versions = making._raw_in_period, making._versions
    attempts: list[str] = []
    doing = [""]

    def versions(app: Eventfold, names: list[str]) -> dict[str, int]:
        attempts.append(doing[0])
        return real_versions(app, names)

    def reading(app: Eventfold, name: str, *args: Any, **kwargs: Any) -> Any:
        if attempts.count(doing[0]) == 1 and name == "food":  # the first attempt, once
            done = subprocess.run(
                eventfold("ingest", str(sources[doing[0]]), *at),
                capture_output=True,
                text=True,
                timeout=HANG,
                check=False,
            )
            assert done.returncode == 0, done.stderr
        return real_read(app, name, *args, **kwargs)

    monkeypatch.setattr(making, "_versions", versions)
    monkeypatch.setattr(making, "_raw_in_period", reading)
    summary = str(write_summary(tmp_path / "afternoon.csv", SUMMARY))
    doing[0] = "make"
    made = doc(capsys, "reconstruct", "--from", summary, "--period", PERIOD, *at)
    assert attempts == ["make", "make"]  # the first commit failed
    rows = {row["category"]: row for row in made["rows"]}
    assert (rows["food"]["raw_count"], rows["food"]["raw_total"]) == (2, "2.25")  # 9 and s1
    assert (rows["travel"]["raw_count"], rows["travel"]["raw_total"]) == (1, "2")
    assert doc(capsys, "catchup", *at)["categories"] == reference(FEED + slipped, SUMMARY)

    doing[0] = "retire"
    retired = doc(capsys, "reconstruct", "--retire", "R1", *at)
    assert attempts[2:] == ["retire", "retire"]
    rows = {row["category"]: row for row in retired["rows"]}
    assert (rows["fun"]["raw_count"], rows["fun"]["raw_total"]) == (1, "0.25")  # h1, held
    everything = FEED + slipped + held
    for name in SUMMARY:
        assert (rows[name]["raw_count"], rows[name]["raw_total"]) == raw_in_period(everything, name)
    caught = doc(capsys, "catchup", *at)
    assert caught["categories"] == reference(everything)
    assert doc(capsys, "rebuild", *at)["checksum"] == caught["checksum"]


# -- follow ----------------------------------------------------------------------


class Watching(Following):
    """``Following`` that keeps each update's position and categories as they were then."""

    def _follow(self) -> None:
        def keep(report: Any) -> None:
            self.seen.append((report.position, report.canonical["categories"]))

        self.result.append(self.projector.follow(self.stop, keep, update_seconds=0.0))

    def categories_at(self, position: int, what: str) -> Any:
        """The categories follow shows once it has seen ``position``."""
        wait_until(lambda: self.seen and self.seen[-1][0] >= position, what)
        return self.seen[-1][1]


def in_another_process(*args: str) -> Any:
    done = subprocess.run(
        eventfold(*args, "--json"),
        capture_output=True,
        text=True,
        timeout=HANG,
        check=False,
        env=os.environ | {"EVENTFOLD_USER": BY},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def store_end(store: str) -> int:
    """The store's last notification id, asked by another process (a reader here would
    share the log that follow's subscription watches, and take its news)."""
    return int(in_another_process("status", "--store", store)["last_notification_id"])


def test_follow_applies_a_reconstruction_made_and_retired_while_it_follows(
    tmp_path: Path,
) -> None:
    store = str(tmp_path / "store")
    in_another_process("ingest", str(write(tmp_path / "feed.jsonl", FEED)), "--store", store)
    summary = str(write_summary(tmp_path / "afternoon.csv", SUMMARY))
    found = str(write(tmp_path / "found.jsonl", EVENTS))
    app = open_store(store)
    try:
        projector = Projector(app, store, CategoryTotals(), snapshot_every=2)
        end = partial(store_end, store)

        follower = Watching(projector)
        with follower:
            assert follower.categories_at(end(), "the catch-up") == reference(FEED)
            in_another_process(
                "reconstruct", "--from", summary, "--period", PERIOD, "--store", store
            )
            shown = follower.categories_at(end(), "the reconstruction")
            assert shown == reference(FEED, SUMMARY)
            in_another_process("ingest", found, "--store", store)
            shown = follower.categories_at(end(), "the lines found later")
            assert shown == reference(EVENTS, SUMMARY)
            in_another_process("reconstruct", "--retire", "R1", "--store", store)
            shown = follower.categories_at(end(), "the retirement")
            assert shown == reference(EVENTS)
        report = follower.report
        assert report.canonical["categories"] == reference(EVENTS)
        rebuilt = Projector(app, store, CategoryTotals()).rebuild()
        assert report.checksum == rebuilt.checksum
        assert report.snapshot_written is not None
    finally:
        app.close()


def test_follow_reads_no_store_as_it_applies_a_reconstruction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process commits just before follow applies a reconstruction, and the log's
    watcher polls only afterwards: were follow to read the store there (refreshing the
    log its subscription shares), the watcher would find no news, and follow would not
    see that commit until another came. It takes the reconstruction from the event."""
    store = str(tmp_path / "store")
    in_another_process("ingest", str(write(tmp_path / "feed.jsonl", FEED)), "--store", store)
    summary = str(write_summary(tmp_path / "afternoon.csv", SUMMARY))
    found = str(write(tmp_path / "found.jsonl", EVENTS))
    app = open_store(store)
    log: Any = app.recorder.log  # type: ignore[attr-defined]
    polls, paused, ingested = type(log)._has_news, threading.Event(), threading.Event()
    monkeypatch.setattr(
        type(log), "_has_news", lambda self: polls(self) and not (paused.is_set() and self is log)
    )
    projector = Projector(app, store, CategoryTotals())
    applying = type(projector)._apply_one
    topics = {MADE_TOPIC, RETIRED_TOPIC}

    def apply_one(self: Projector, state: Any, notification: Any) -> None:
        if notification.topic in topics and not paused.is_set():
            paused.set()  # the watcher's next poll: after this one is applied
            in_another_process("ingest", found, "--store", store)
            ingested.set()
        try:
            applying(self, state, notification)
        finally:
            paused.clear()

    monkeypatch.setattr(type(projector), "_apply_one", apply_one)
    try:
        follower = Watching(projector)
        with follower:
            assert follower.categories_at(store_end(store), "the catch-up") == reference(FEED)
            in_another_process(
                "reconstruct", "--from", summary, "--period", PERIOD, "--store", store
            )
            wait_until(ingested.is_set, "follow to meet R1")
            end = store_end(store)  # the ingest's commit included
            shown = follower.categories_at(end, "the commit made as follow met R1")
            assert shown == reference(EVENTS, SUMMARY)
    finally:
        app.close()


# -- a plain persistence module of the library ------------------------------------


def test_a_library_persistence_module_places_reconstructions_by_reading_notifications(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``positions_by_reading`` reads every notification a page of 1,000 at a time: with
    more than a page before them, the reconstruction's events are on a later page."""
    monkeypatch.setenv("EVENTFOLD_USER", BY)
    state = tmp_path / "state"
    app = Eventfold({"PERSISTENCE_MODULE": "eventsourcing.popo"}, state_dir=str(state))
    filler: list[Event] = [(f"f{i}", "rent", "1", "2026-11-29T10:00:00Z") for i in range(1100)]

    def feed_in(name: str, events: list[Event]) -> None:
        with Ingestor(app, str(state), batch=300, reader_process=False) as ingestor:
            ingestor.run(str(write(tmp_path / name, events)))

    feed_in("feed.jsonl", filler + FEED)
    projector = Projector(app, str(state), CategoryTotals())
    before = projector.rebuild()  # its snapshot: before the reconstruction
    summary = write_summary(tmp_path / "afternoon.csv", SUMMARY)
    made = making.make(app, str(summary), making.Period.parse(PERIOD), "disk lost")
    assert (made.reconstruction.ident, made.reconstruction.by) == ("R1", BY)
    feed_in("found.jsonl", EVENTS)
    standing = projector.catchup()
    assert standing.snapshot_used is not None
    assert standing.snapshot_used.position == before.position < made.reconstruction.made_at
    assert standing.canonical["categories"] == reference(filler + EVENTS, SUMMARY)
    making.retire(app, "R1")

    ident = Reconstructions.create_id()
    last = app.recorder.max_notification_id() or 0
    where = {
        n.topic: n.id
        for n in app.recorder.select_notifications(1, last)
        if n.originator_id == ident
    }
    [r] = load_plan(app).reconstructions
    assert (r.made_at, r.retired_at) == (where[MADE_TOPIC], where[RETIRED_TOPIC])
    assert 1000 < r.made_at < r.retired_at
    caught = projector.catchup()
    assert caught.canonical["categories"] == reference(filler + EVENTS)
    assert caught.checksum == projector.rebuild().checksum
    app.close()


def test_a_period_is_read_in_utc_where_no_offset_is_given() -> None:
    given = making.Period.parse("2026-11-30T13:00+01:00/2026-12-01")
    assert (given.start, given.end) == (START, datetime(2026, 12, 1, tzinfo=UTC))
