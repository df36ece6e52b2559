"""``verify --expected`` and narrowing at their edges: what a careful user tries."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from test_verify_expected import EVENTS, write_events

from clihelpers import run


@pytest.fixture
def store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    source = write_events(tmp_path / "events.jsonl", EVENTS)
    store = tmp_path / "store"
    assert run(capsys, "ingest", str(source), "--store", str(store))[0] == 0
    return store


def verify(capsys: pytest.CaptureFixture[str], store: Path, *args: str) -> tuple[int, str, str]:
    return run(capsys, "verify", "--store", str(store), *args)


def as_json(capsys: pytest.CaptureFixture[str], store: Path, *args: str) -> dict[str, Any]:
    code, out, err = verify(capsys, store, *args, "--json")
    assert code in (0, 1), err
    doc: dict[str, Any] = json.loads(out)
    return doc


def test_a_window_over_category_totals_counts_the_windows_events_on_both_sides(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    feed = write_events(tmp_path / "feed.jsonl", [e for e in EVENTS if e[0] != "e1"])  # 09:15
    narrow = tmp_path / "narrow"
    assert run(capsys, "ingest", str(feed), "--store", str(narrow))[0] == 0
    full = str(tmp_path / "events.jsonl")
    after = as_json(capsys, narrow, full, "--since", "2026-11-30T10:00Z")
    assert after["status"] == "match" and after["missing_events"] == 0
    assert {d["category"] for d in after["differences"]} == set()
    before = as_json(capsys, narrow, full, "--until", "2026-11-30T10:00Z")
    assert before["status"] == "mismatch" and [d["category"] for d in before["differences"]] == [
        "rent"
    ]
    assert before["differences"][0]["expected"] == {"count": 1, "total": "1200"}


def test_narrowing_to_nothing_is_not_a_match(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = tmp_path / "e.csv"
    expected.write_text("category,count,total\nrent,1,1200\n")
    for narrowing in (["--category", "nosuch"], ["--category", ""]):
        code, out, err = verify(capsys, store, "--expected", str(expected), *narrowing)
        assert (code, out) == (2, "") and "nothing to compare" in err
    hourly = ("--projection", "hourly_totals", str(tmp_path / "events.jsonl"))
    code, _, err = verify(capsys, store, *hourly, "--since", "2026-12-01", "--until", "2026-11-30")
    assert code == 2 and "is not before --until" in err


def test_damaged_or_unreadable_expected_files_are_refused(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = "category,count,total\n" + "".join(f"c{i},1,{i}\n" for i in range(5000))
    whole = gzip.compress(rows.encode())
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    code, out, err = verify(capsys, store, "--expected", str(cut))
    assert (code, out) == (2, "") and "cannot be read whole" in err and str(cut) in err
    for total, why in (
        ("1e999999999", "exponent out of range"),
        ("1e99999999999999999999", "exponent"),
    ):
        big = tmp_path / "big.csv"
        big.write_text(f"category,total\nrent,{total}\n")
        code, _, err = verify(capsys, store, "--expected", str(big))
        assert code == 2 and "line 2, column 'total'" in err and why in err
    code, _, err = verify(capsys, store, "--expected", str(tmp_path))
    assert code == 2 and "is a directory, not an expected file" in err
    blank = tmp_path / "blank.json"
    blank.write_text("  \n")
    code, _, err = verify(capsys, store, "--expected", str(blank))
    assert code == 2 and "empty" in err


def test_zero_rows_are_left_out_and_repeats_are_refused(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = tmp_path / "zeros.csv"
    expected.write_text("category,count,total\nrent,1,1200\nghost,0,0\nghost2,0,0.00\n")
    assert (
        as_json(capsys, store, "--expected", str(expected), "--category", "rent")["rows_compared"]
        == 1
    )
    twice = tmp_path / "twice.json"
    rent, other = '"rent": {"count": 1, "total": "1200"}', '"rent": {"count": 2, "total": "1"}'
    twice.write_text(f'{{"categories": {{{rent}, {other}}}}}')
    code, _, err = verify(capsys, store, "--expected", str(twice))
    assert code == 2 and "'rent' is given twice with different values" in err
    header = tmp_path / "header.csv"
    header.write_text("category,total,total\nrent,1200,1\n")
    code, _, err = verify(capsys, store, "--expected", str(header))
    assert code == 2 and "the column 'total' is named twice" in err


def test_a_user_projections_measure_names_are_its_columns(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sums = ("--projection", "userprojections:CountAndSum", "--category", "food")
    expected = tmp_path / "sums.csv"
    expected.write_text("category,n,sum\nfood,3,19.80\n")
    assert as_json(capsys, store, "--expected", str(expected), *sums)["status"] == "match"
    renamed = tmp_path / "renamed.csv"
    renamed.write_text("category,events,amount\nfood,3,19.8\n")
    args = ("--expected", str(renamed), "--count-col", "events", "--total-col", "amount")
    assert as_json(capsys, store, *args, *sums)["status"] == "match"
    code, out, _ = run(
        capsys, "rebuild", "--store", str(store), "--projection", "userprojections:CountAndSum"
    )
    assert code == 0 and "food" in out and "19.8" in out and "no events applied" not in out


def test_hour_keys_are_read_as_instants(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hourly = ("--projection", "hourly_totals", "--category", "rent")
    expected = tmp_path / "hours.csv"
    expected.write_text("category,hour,count,total\nrent,2026-11-30T10:00:00+01:00,1,1200\n")
    assert as_json(capsys, store, "--expected", str(expected), *hourly)["status"] == "match"
    expected.write_text("category,hour,count,total\nrent,2026-11-30T09:00Z,1,1200\n")
    assert as_json(capsys, store, "--expected", str(expected), *hourly)["status"] == "match"
    expected.write_text("category,hour,count,total\nrent,2026-11-30T09:30:00Z,1,1200\n")
    code, _, err = verify(capsys, store, "--expected", str(expected), *hourly)
    assert code == 2 and "line 2, column 'hour'" in err and "not the start of an hour" in err
    document = tmp_path / "hourly.json"
    rebuilt = run(
        capsys, "rebuild", "--store", str(store), "--projection", "hourly_totals", "--json"
    )
    document.write_text(rebuilt[1])
    code, _, err = verify(capsys, store, "--expected", str(document))
    assert code == 2 and "a document of the projection hourly_totals" in err


def test_spaces_of_every_kind_group_thousands(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = tmp_path / "fr.csv"
    expected.write_text("category;total\n", encoding="utf-8")
    expected.write_text('category,total\nrent,"1\u202f200,00 €"\n', encoding="utf-8")
    args = ("--expected", str(expected), "--number-format", "1 234,56 €", "--category", "rent")
    assert as_json(capsys, store, *args)["status"] == "match"


def test_look_alike_names_are_told_apart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "s.jsonl"
    source.write_text('{"id": "1", "category": "caf\u00e9", "value": 1}\n', encoding="utf-8")
    store = tmp_path / "store"
    assert run(capsys, "ingest", str(source), "--store", str(store))[0] == 0
    expected = tmp_path / "nfd.csv"
    expected.write_text("category,count,total\ncafe\u0301,1,1\n", encoding="utf-8")
    code, out, _ = verify(capsys, store, "--expected", str(expected))
    assert code == 1 and "(cafe\\u0301)" in out and "(caf\\xe9)" in out


def test_generations_by_the_name_they_are_kept_under(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = "userprojections:LargestValue"
    assert run(capsys, "rebuild", "--store", str(store), "--projection", spec)[0] == 0
    code, out, _ = run(
        capsys, "generations", "--store", str(store), "--projection", "largest_value", "--json"
    )
    (generation,) = json.loads(out)["generations"]
    assert code == 0 and generation["current"] and len(generation["checksum"]) == 64


def written(fmt: str, rows: list[dict[str, str]]) -> str:
    """``rows`` (name, n, amount) written in ``fmt``."""
    if fmt in ("csv", "tsv"):
        sep = "," if fmt == "csv" else "\t"
        lines = [
            sep.join(rows[0]),
            *(sep.join(f'"{v}"' if sep in v else v for v in r.values()) for r in rows),
        ]
        return "\n".join(lines) + "\n"
    if fmt == "json":
        return json.dumps(rows)
    return "".join(json.dumps(r) + "\n" for r in rows)


@pytest.mark.parametrize("fmt", ["csv", "tsv", "json", "jsonl"])
def test_each_format_with_a_mapping_and_with_a_bad_number(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    rows = [
        {"name": "rent", "n": "1", "amount": "1200.00"},
        {"name": "food", "n": "3", "amount": "19.8"},
    ]
    expected = tmp_path / f"worker.{fmt}"
    expected.write_text(written(fmt, rows))
    mapping = ("--key", "name", "--count-col", "n", "--total-col", "amount")
    narrowed = ("--category", "rent", "--category", "food")
    doc = as_json(capsys, store, "--expected", str(expected), *mapping, *narrowed)
    assert (doc["status"], doc["expected_file"]["format"], doc["rows_compared"]) == (
        "match",
        fmt,
        2,
    )
    rows[1]["amount"] = "1,019.80"
    expected.write_text(written(fmt, rows))
    code, out, err = verify(capsys, store, "--expected", str(expected), *mapping)
    where = {"csv": "line 3", "tsv": "line 3", "json": "row 2", "jsonl": "line 2"}[fmt]
    assert (code, out) == (2, "") and f"{where}, column 'amount'" in err, err
    assert "'1,019.80' has a thousands separator" in err


def test_a_category_named_like_a_pattern_is_that_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "s.jsonl"
    lines = [
        '{"id": "1", "category": "shop-*", "value": 1}',
        '{"id": "2", "category": "shop-a", "value": 2}',
    ]
    source.write_text("\n".join(lines) + "\n")
    store = tmp_path / "store"
    assert run(capsys, "ingest", str(source), "--store", str(store))[0] == 0
    code, out, _ = run(capsys, "events", "--store", str(store), "--category", "shop-*", "--json")
    assert code == 0 and json.loads(out)["count"] == 1
    code, out, _ = run(capsys, "events", "--store", str(store), "--category", "shop-?", "--json")
    assert json.loads(out)["count"] == 2  # no category is named "shop-?": a pattern
    doc = as_json(capsys, store, str(source), "--category", "shop-*")
    assert doc["rows_compared"] == 1 and doc["status"] == "match"
