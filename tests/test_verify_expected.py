"""``verify`` of any projection against the worker's own output: CSV, TSV, JSON, JSON Lines.

Each test seeds a known difference (a changed hour, a missing category, an
extra key) and checks that exactly it is found, named by its key; bad numbers
and repeated keys are refused with the row and column (or both lines).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from clihelpers import run

EVENTS = [  # id, category, value, timestamp
    ("e1", "rent", "1200.00", "2026-11-30T09:15:00Z"),
    ("e2", "food", "12.50", "2026-11-30T09:40:00Z"),
    ("e3", "food", "7.25", "2026-11-30T10:05:00Z"),
    ("e4", "fun", "30", "2026-11-30T11:59:59Z"),
    ("e5", "shop-a", "1.10", "2026-11-30T12:00:00Z"),
    ("e6", "shop-b", "2.20", "2026-11-30T12:30:00Z"),
    ("e7", "food", "0.05", None),
]
TOTALS = {  # category -> (count, total), as the store has them
    "rent": (1, "1200"),
    "food": (3, "19.8"),
    "fun": (1, "30"),
    "shop-a": (1, "1.1"),
    "shop-b": (1, "2.2"),
}


def write_events(path: Path, events: list[tuple[str, str, str, str | None]]) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for event_id, category, value, when in events:
            stamp = "" if when is None else f', "timestamp": "{when}"'
            f.write(f'{{"id": "{event_id}", "category": "{category}", "value": {value}{stamp}}}\n')
    return path


@pytest.fixture
def store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    source = write_events(tmp_path / "events.jsonl", EVENTS)
    store = tmp_path / "store"
    assert run(capsys, "ingest", str(source), "--store", str(store))[0] == 0
    return store


def verify_json(
    capsys: pytest.CaptureFixture[str], store: Path, *args: str
) -> tuple[int, dict[str, Any]]:
    code, out, err = run(capsys, "verify", "--store", str(store), *args, "--json")
    assert code in (0, 1), err
    return code, json.loads(out)


def statuses(doc: dict[str, Any]) -> dict[tuple[str, ...], str]:
    return {tuple(d["key"].values()): d["status"] for d in doc["differences"]}


def test_category_totals_from_a_csv_with_mapped_columns(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = tmp_path / "worker.csv"
    rows = [(c, n, t) for c, (n, t) in TOTALS.items() if c != "fun"]  # fun: missing here
    rows = [(c, n, "19.90" if c == "food" else t) for c, n, t in rows]  # food: changed
    rows.append(("travel", 2, "80.00"))  # a key the store has never seen
    with expected.open("w", newline="") as f:
        csv.writer(f).writerows([("name", "n", "amount"), *rows])
    args = ("--expected", str(expected), "--key", "name", "--count-col", "n")
    code, doc = verify_json(capsys, store, *args, "--total-col", "amount")
    assert code == 1
    assert statuses(doc) == {("food",): "changed", ("fun",): "extra", ("travel",): "missing"}
    food = next(d for d in doc["differences"] if d["category"] == "food")
    assert food["delta"] == {"count": 0, "total": "-0.1"}
    assert doc["expected_file"] == {
        "path": str(expected),
        "format": "csv",
        "rows": 5,
        "rows_without": {},
    }
    assert (
        len(doc["expected_checksum"]) == 64 and doc["expected_checksum"] != doc["actual_checksum"]
    )
    code, out, _ = run(capsys, "verify", "--store", str(store), *args, "--total-col", "amount")
    assert code == 1 and "MISSING" in out and "travel" in out and "CHANGED" in out


def test_the_expected_checksum_is_the_canonical_one(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = tmp_path / "same.tsv"
    lines = ["category\tcount\ttotal", *(f"{c}\t{n}\t{t}" for c, (n, t) in TOTALS.items())]
    expected.write_text("\n".join(lines) + "\n")
    code, doc = verify_json(capsys, store, "--expected", str(expected))
    assert code == 0 and doc["expected_file"]["format"] == "tsv"
    rebuilt = run(capsys, "rebuild", "--store", str(store), "--json")[1]
    assert doc["expected_checksum"] == json.loads(rebuilt)["checksum"] == doc["actual_checksum"]


def test_hourly_totals_from_json_lines_find_a_changed_hour(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rebuilt = json.loads(
        run(capsys, "rebuild", "--store", str(store), "--projection", "hourly_totals", "--json")[1]
    )
    rows = [
        {"cat": c, "hour": h, "count": v["count"], "total": v["total"]}
        for c, hours in rebuilt["hours"].items()
        for h, v in hours.items()
    ]
    moved = next(r for r in rows if r["cat"] == "fun")
    moved["hour"] = "2026-11-30T12:00:00+00:00"  # the worker put e4 in the next hour
    expected = tmp_path / "hourly.jsonl"
    expected.write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = ("--projection", "hourly_totals", "--expected", str(expected), "--key", "cat,hour")
    code, doc = verify_json(capsys, store, *args)
    assert code == 1 and doc["keys"] == ["category", "hour"]
    assert statuses(doc) == {
        ("fun", "2026-11-30T11:00:00+00:00"): "extra",
        ("fun", "2026-11-30T12:00:00+00:00"): "missing",
    }
    assert doc["expected_file"]["format"] == "jsonl"
    # --since/--until narrow the buckets compared: the moved hour alone, both sides
    with pytest.raises(SystemExit) as exited:  # not a time: a usage error
        run(capsys, "verify", "--store", str(store), *args, "--until", "13:00")
    assert exited.value.code == 2 and "an ISO 8601 date or time" in capsys.readouterr().err
    code, doc = verify_json(
        capsys, store, *args, "--since", "2026-11-30T12:00", "--until", "2026-11-30T13:00Z"
    )
    assert code == 1 and statuses(doc) == {("fun", "2026-11-30T12:00:00+00:00"): "missing"}
    assert doc["rows_compared"] == 3 and doc["narrowed"]["since"].startswith("2026-11-30T12:00")
    code, doc = verify_json(capsys, store, *args, "--until", "2026-11-30T11:00:00Z")
    assert code == 0 and doc["rows_compared"] == 3  # rent 09, food 09, food 10


def test_a_canonical_json_document_and_an_array_of_rows(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = tmp_path / "rebuilt.json"
    document.write_text(run(capsys, "rebuild", "--store", str(store), "--json")[1])
    assert verify_json(capsys, store, "--expected", str(document))[0] == 0
    keyed = tmp_path / "keyed.json"  # an object by category, without the root key
    keyed.write_text(json.dumps({c: {"count": n, "total": t} for c, (n, t) in TOTALS.items()}))
    assert verify_json(capsys, store, "--expected", str(keyed))[0] == 0
    array = tmp_path / "rows.json"
    rows = [{"category": c, "total": float(t)} for c, (_, t) in TOTALS.items()]  # JSON numbers
    array.write_text(json.dumps(rows))
    code, doc = verify_json(capsys, store, "--expected", str(array))
    assert code == 0 and doc["expected_file"]["rows_without"] == {"count": 5}
    assert doc["expected_checksum"] is None  # without counts it has no checksum of its own
    code, out, _ = run(capsys, "verify", "--store", str(store), "--expected", str(array))
    assert code == 0 and "no count in 5 rows of the expected file" in out


@pytest.mark.parametrize(
    ("cell", "why", "number_format"),
    [
        ("1,200.00", "has a thousands separator", "1,234.56"),
        ("1200,00", "has a decimal comma", "1234,56"),
        ("$1200.00", "has a currency symbol", "$1,234.56"),
        ("1.200,00 €", "has a currency symbol", "1.234,56 €"),
    ],
)
def test_numbers_are_refused_with_row_and_column_unless_a_format_says(
    store: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    cell: str,
    why: str,
    number_format: str,
) -> None:
    expected = tmp_path / "money.csv"
    with expected.open("w", newline="") as f:
        csv.writer(f).writerows([("category", "total"), ("rent", cell)])
    code, out, err = run(capsys, "verify", "--store", str(store), "--expected", str(expected))
    assert (code, out) == (2, "") and err.count("\n") == 1
    assert f"{expected} line 2, column 'total': {cell!r} {why}" in err
    assert "--number-format" in err
    code, doc = verify_json(
        capsys,
        store,
        "--expected",
        str(expected),
        "--number-format",
        number_format,
        "--category",
        "rent",
    )
    assert code == 0, doc["differences"]  # rent's 1200 read exactly, the rest narrowed away


def test_a_key_given_twice_with_different_values_names_both_lines(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = tmp_path / "twice.csv"
    expected.write_text("category,count,total\nrent,1,1200\nfun,1,30\nrent,1,1300\n")
    code, _, err = run(capsys, "verify", "--store", str(store), "--expected", str(expected))
    assert (
        code == 2 and "category=rent is given twice with different values: line 2 and line 4" in err
    )
    expected.write_text("category,count,total\nrent,1,1200\nrent,1,1200.00\n")  # the same row
    code, doc = verify_json(capsys, store, "--expected", str(expected), "--category", "rent")
    assert code == 0 and doc["expected_file"]["rows"] == 2


def test_a_missing_key_column_or_value_is_named(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = tmp_path / "cols.csv"
    expected.write_text("name,total\nrent,1200\n")
    code, _, err = run(capsys, "verify", "--store", str(store), "--expected", str(expected))
    assert code == 2 and "line 1: no column 'category'" in err and "--key" in err
    expected.write_text("category,total\nrent,\n")
    code, _, err = run(capsys, "verify", "--store", str(store), "--expected", str(expected))
    assert code == 2 and "line 2, column 'total': no value" in err
    source = str(tmp_path / "events.jsonl")
    code, _, err = run(capsys, "verify", "--store", str(store), "--key", "name", "--source", source)
    assert code == 2 and "--key: reads an expected file, so it needs --expected FILE" in err


def test_export_holds_every_difference_and_event(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = [e for e in EVENTS if e[0] != "e4"]  # e4 extra in the store
    source = [(i, c, "8.25" if i == "e3" else v, w) for i, c, v, w in source]  # e3 conflicting
    source.append(("e8", "fun", "5", "2026-11-30T13:00:00Z"))  # e8 missing from the store
    other = write_events(tmp_path / "other.jsonl", source)
    csv_path, jsonl_path = tmp_path / "diff.csv", tmp_path / "diff.jsonl"
    code, doc = verify_json(capsys, store, str(other), "--export", str(csv_path), "--limit", "1")
    assert code == 1
    counts = (doc["missing_events"], doc["extra_events"], doc["conflicting_events"])
    assert counts == (1, 1, 1) and doc["differing"] == 2  # food (e3) and fun (e4, e8)
    with csv_path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == doc["differing"] + sum(counts) == doc["export"]["rows"]
    by_status = {(r["kind"], r["status"]): r for r in rows}
    assert by_status[("event", "missing")]["id"] == "e8"
    assert by_status[("event", "missing")]["line"] == "7"
    assert int(by_status[("event", "missing")]["offset"]) > 0
    conflict = by_status[("event", "conflicting")]
    assert (conflict["value"], conflict["store_value"]) == ("8.25", "7.25")
    assert {r["delta_total"] for r in rows if r["kind"] == "key"} == {"-1", "25"}
    verify_json(capsys, store, str(other), "--export", str(jsonl_path))
    lines = [json.loads(line) for line in jsonl_path.read_text().splitlines()]
    assert len(lines) == len(rows) and {r["kind"] for r in lines} == {"key", "event"}
    code, out, _ = run(
        capsys, "verify", "--store", str(store), str(other), "--export", str(csv_path)
    )
    assert f"every difference written to {csv_path}: 2 keys, 3 events" in out.replace("\n", " ")


def test_export_refuses_an_unknown_suffix_before_reading(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("--expected-checksum", "0" * 64, "--export", str(tmp_path / "diff.xlsx"))
    code, out, err = run(capsys, "verify", "--store", str(store), *args)
    assert (code, out) == (2, "") and ".csv, .jsonl or .ndjson" in err
    assert not list(tmp_path.glob("diff*"))


def test_a_user_projection_against_sources_and_a_document(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    projection = ("--projection", "userprojections:LargestValue")
    source = tmp_path / "events.jsonl"
    code, doc = verify_json(capsys, store, str(source), *projection)
    assert code == 0 and doc["same_code"] is True and doc["projection"] == "largest_value"
    out = run(capsys, "verify", "--store", str(store), str(source), *projection)[1]
    assert "the same handler code is on both sides" in out.replace("\n", " ")
    document = tmp_path / "largest.json"
    document.write_text(json.dumps({"largest": {"rent": "1200", "food": "12.6", "fun": "30"}}))
    code, doc = verify_json(capsys, store, "--expected", str(document), *projection)
    assert code == 1
    assert statuses(doc) == {
        ("food",): "changed",
        ("shop-a",): "extra",
        ("shop-b",): "extra",
    }
    assert doc["differences"][0]["delta"] is None  # no measures: rows compare whole
    table = tmp_path / "largest.csv"
    table.write_text("category,value\nrent,1200\n")
    code, _, err = run(
        capsys, "verify", "--store", str(store), "--expected", str(table), *projection
    )
    assert code == 2 and "declares no measures" in err


def test_narrowing_by_category_glob_and_usage_errors(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = tmp_path / "shops.csv"
    expected.write_text("category,count,total\nshop-a,1,1.10\nshop-b,1,2.25\n")
    code, doc = verify_json(capsys, store, "--expected", str(expected), "--category", "shop-*")
    assert code == 1 and statuses(doc) == {("shop-b",): "changed"}
    assert doc["rows_compared"] == 2 and doc["narrowed"]["categories"] == ["shop-*"]
    code, _, err = run(
        capsys,
        "verify",
        "--store",
        str(store),
        "--expected",
        str(expected),
        "--since",
        "2026-11-30",
    )
    assert code == 2 and "category_totals has no time in its keys" in err
    code, _, err = run(
        capsys, "verify", "--store", str(store), "--expected-checksum", "0" * 64, "--category", "x"
    )
    assert code == 2 and "cannot narrow a bare checksum" in err


def test_narrowing_the_event_diff_by_time(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = [e for e in EVENTS if e[0] not in ("e2", "e6")]  # e2 09:40, e6 12:30 extra
    other = write_events(tmp_path / "other.jsonl", source)
    code, doc = verify_json(capsys, store, str(other), "--since", "2026-11-30T12:00Z")
    assert code == 1 and [e["id"] for e in doc["extra"]] == ["e6"]
    code, doc = verify_json(capsys, store, str(other), "--until", "2026-11-30T10:00:00+00:00")
    assert [e["id"] for e in doc["extra"]] == ["e2"]


def test_the_html_report_follows_the_projections_keys(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = tmp_path / "hourly.csv"
    expected.write_text(
        "category,hour,count,total\nrent,2026-11-30T09:00:00+00:00,1,1100\n"
    )  # rent's hour changed; every other row is extra
    page, export = tmp_path / "report.html", tmp_path / "diff.jsonl"
    args = ("--projection", "hourly_totals", "--expected", str(expected), "--category", "rent")
    code, _, _ = run(
        capsys, "verify", "--store", str(store), *args, "--html", str(page), "--export", str(export)
    )
    assert code == 1
    html = page.read_text()
    assert '<th scope="col" data-type="text">hour</th>' in html
    assert '<td class="text">2026-11-30T09:00:00+00:00</td>' in html
    assert "1 of 1 rows differ" in html
    assert f"every difference written to {export}: 1 key, 0 events" in html
    (row,) = [json.loads(line) for line in export.read_text().splitlines()]
    assert row["key"] == {"category": "rent", "hour": "2026-11-30T09:00:00+00:00"}
    assert row["delta"] == {"count": 0, "total": "100"}
