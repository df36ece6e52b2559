"""`eventfold verify` and `reconcile` over many sources: files, directories, patterns,
compressed files, standard input; the file and line of each event."""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from clihelpers import run, write_rows
from eventfold.application.app import open_app
from eventfold.application.recorded import recorded_facts

ROWS = [(i, ["rent", "food", "fun"][i % 3], f"{i}.25") for i in range(60)]


def gzipped(path: Path, rows: list[tuple[Any, str, str]]) -> Path:
    """A gzip-compressed JSON Lines source of ``rows``."""
    plain = write_rows(path.with_suffix(".tmp"), rows)
    path.write_bytes(gzip.compress(plain.read_bytes()))
    plain.unlink()
    return path


def json_of(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code, out, err = run(capsys, *args, "--json")
    assert out, err
    return code, json.loads(out)


@pytest.fixture
def store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A store of all of ``ROWS``."""
    whole = write_rows(tmp_path / "whole.jsonl", ROWS)
    assert run(capsys, "ingest", str(whole), "--store", str(tmp_path / "store"))[0] == 0
    return tmp_path / "store"


def test_a_gzip_source_proves_what_the_same_plain_source_proves(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    packed = gzipped(tmp_path / "whole.jsonl.gz", ROWS)
    code, plain = json_of(capsys, "verify", "--store", str(store), str(tmp_path / "whole.jsonl"))
    assert (code, plain["status"]) == (0, "match")
    code, doc = json_of(capsys, "verify", "--store", str(store), "--source", str(packed))
    assert (code, doc["status"]) == (0, "match")
    assert doc["expected_checksum"] == plain["expected_checksum"]
    assert doc["files"] == [
        {
            "source": str(packed.resolve()),
            "lines": 60,
            "valid": 60,
            "invalid": 0,
            "repeats": 0,
            "compression": "gzip",
        }
    ]


def test_a_directory_a_pattern_and_source_options_are_read_together(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "logs").mkdir()
    write_rows(tmp_path / "dir" / "a.jsonl", ROWS[:20])
    write_rows(tmp_path / "dir" / "b.jsonl", ROWS[20:30])
    gzipped(tmp_path / "logs" / "c.jsonl.gz", ROWS[30:50])
    write_rows(tmp_path / "logs" / "skipped.txt", ROWS[50:])  # the pattern leaves it out
    rest = write_rows(tmp_path / "rest.jsonl", ROWS[50:])
    args = ["verify", "--store", str(store), "--source", str(rest), str(tmp_path / "dir")]
    code, doc = json_of(capsys, *args, str(tmp_path / "logs" / "*.jsonl.gz"))
    assert (code, doc["status"], doc["source"]) == (0, "match", None)
    names = [Path(name).name for name in doc["sources"]]
    assert names == ["rest.jsonl", "a.jsonl", "b.jsonl", "c.jsonl.gz"]
    assert [f["lines"] for f in doc["files"]] == [10, 20, 10, 20]
    assert [f["compression"] for f in doc["files"]] == [None, None, None, "gzip"]


def test_a_cut_gzip_source_is_unusable_evidence_naming_the_file_and_where(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    whole = gzipped(tmp_path / "whole.jsonl.gz", ROWS)
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    code, out, err = run(capsys, "verify", "--store", str(store), str(cut), str(whole))
    assert (code, out) == (2, "")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert str(cut.resolve()) in err and "near compressed byte" in err, err
    assert str(whole.resolve()) not in err  # only the damaged file is named


def test_the_first_occurrence_in_reading_order_wins_and_order_mtime_changes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = write_rows(tmp_path / "a.jsonl", [(1, "rent", "10"), (2, "food", "5")])
    second = write_rows(tmp_path / "b.jsonl", [(1, "rent", "99"), (3, "fun", "1")])
    os.utime(first, (2_000_000_000, 2_000_000_000))  # a.jsonl is the newer one
    os.utime(second, (1_000_000_000, 1_000_000_000))
    store = str(tmp_path / "store")
    assert run(capsys, "ingest", str(first), "--store", store)[0] == 0
    assert run(capsys, "ingest", str(second), "--store", store)[0] == 0  # id 1: a duplicate
    by_name = json_of(capsys, "verify", "--store", store, str(tmp_path))[1]
    assert by_name["status"] == "match"
    code, by_mtime = json_of(capsys, "verify", "--store", store, str(tmp_path), "--order", "mtime")
    assert (code, by_mtime["status"]) == (1, "mismatch")
    assert by_mtime["expected_checksum"] != by_name["expected_checksum"]
    assert [Path(s).name for s in by_mtime["sources"]] == ["b.jsonl", "a.jsonl"]
    rent = next(d for d in by_mtime["differences"] if d["category"] == "rent")
    assert rent["expected"] == {"count": 1, "total": "99"}  # b.jsonl's version, read first
    (conflict,) = by_mtime["conflicting"]
    assert (
        conflict["source"].items()
        >= {
            "category": "rent",
            "value": "99",
            "source": str(second.resolve()),
            "line": 1,
        }.items()
    )
    assert (conflict["store"]["source"], conflict["store"]["line"]) == (str(first.resolve()), 1)
    assert [f["repeats"] for f in by_mtime["files"]] == [0, 1]


def test_missing_events_are_named_by_their_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one = write_rows(tmp_path / "one.jsonl", ROWS[:30])
    two = gzipped(tmp_path / "two.jsonl.gz", ROWS[30:])
    store = str(tmp_path / "store")
    partial = write_rows(tmp_path / "partial.jsonl", ROWS[:29] + ROWS[31:])
    assert run(capsys, "ingest", str(partial), "--store", store)[0] == 0
    code, doc = json_of(capsys, "verify", "--store", store, str(one), str(two))
    assert (code, doc["missing_events"], doc["extra_events"]) == (1, 2, 0)
    rows = [(Path(r["source"]).name, r["line"], r["id"]) for r in doc["missing"]]
    assert rows == [("one.jsonl", 30, "29"), ("two.jsonl.gz", 1, "30")]
    page = tmp_path / "r.html"
    code, out, _ = run(capsys, "verify", "--store", store, str(one), str(two), "--html", str(page))
    shown = " ".join(out.replace("│", " ").split())
    assert code == 1 and re.search(r"\b30 rent 30\.25 \S*two\.jsonl\.gz 1\b", shown), shown
    assert re.search(r"<td[^>]*>[^<]*two\.jsonl\.gz</td>", page.read_text(encoding="utf-8"))


def test_reconcile_replays_from_two_files_each_event_keeping_its_own_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one = write_rows(tmp_path / "one.jsonl", ROWS[:30])
    two = gzipped(tmp_path / "two.jsonl.gz", ROWS[30:])
    store = str(tmp_path / "store")
    partial = write_rows(tmp_path / "partial.jsonl", ROWS[:10] + ROWS[20:40] + ROWS[50:])
    assert run(capsys, "ingest", str(partial), "--store", store)[0] == 0
    code, plan = json_of(capsys, "reconcile", str(one), str(two), "--store", store, "--dry-run")
    assert (code, plan["missing"], plan["source"]) == (1, 20, None)
    gaps = [(Path(g["source"]).name, g["first_line"], g["last_line"]) for g in plan["gaps"]]
    assert gaps == [("one.jsonl", 11, 20), ("two.jsonl.gz", 11, 20)]
    code, doc = json_of(capsys, "reconcile", str(one), str(two), "--store", store)
    assert (code, doc["replayed"], doc["after"]["status"]) == (0, 20, "match")
    code, after = json_of(capsys, "verify", "--store", store, str(one), str(two))
    assert (code, after["missing"], after["extra"], after["conflicting"]) == (0, [], [], [])
    app = open_app(store)
    try:
        facts = [f for page in recorded_facts(app, 0, 1 << 62) for f in page]
    finally:
        app.close()
    where = {f.event_id: (f.source, f.line) for f in facts}
    assert where["15"] == (str(one.resolve()), 16)
    assert where["45"] == (str(two.resolve()), 16)
    packed = gzip.decompress(two.read_bytes())
    offset = next(f.offset for f in facts if f.event_id == "45")
    assert json.loads(packed[offset:].split(b"\n")[0])["id"] == 45  # uncompressed offset


def test_standard_input_beside_a_file_for_verify_and_reconcile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    one = write_rows(tmp_path / "one.jsonl", ROWS[:30])
    piped = write_rows(tmp_path / "piped.jsonl", ROWS[30:]).read_bytes()
    store = str(tmp_path / "store")
    assert run(capsys, "ingest", str(one), "--store", store)[0] == 0

    def stdin() -> None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(piped))))

    stdin()
    code, doc = json_of(capsys, "verify", "--store", store, str(one), "-")
    assert (code, doc["missing_events"], doc["sources"][1]) == (1, 30, "-")
    stdin()
    code, doc = json_of(capsys, "reconcile", "--store", store, "-", str(one))
    assert (code, doc["replayed"], doc["after"]["status"]) == (0, 30, "match")
    assert {p["source"] for p in doc["plan"]} == {"-"}
    stdin()
    code, doc = json_of(capsys, "verify", "--store", store, str(one), "-")
    assert (code, doc["status"], doc["extra"]) == (0, "match", [])


def test_a_binary_file_among_good_ones_is_refused_before_anything_is_read(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write_rows(tmp_path / "good.jsonl", ROWS[:10])
    binary = tmp_path / "picture.jsonl"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    before = sorted((p.name, p.stat().st_size) for p in store.rglob("*") if p.is_file())
    for command in ("verify", "reconcile"):
        code, out, err = run(capsys, command, str(good), str(binary), "--store", str(store))
        assert (code, out) == (2, "") and str(binary) in err and "not JSON Lines" in err, err
        assert len(err.strip().splitlines()) == 1
    after = sorted((p.name, p.stat().st_size) for p in store.rglob("*") if p.is_file())
    assert after == before


def test_sources_cannot_be_combined_with_an_expected_state(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write_rows(tmp_path / "good.jsonl", ROWS)
    for other in (["--expected-checksum", "0" * 64], ["--expected", str(good)]):
        code, out, err = run(capsys, "verify", str(good), *other, "--store", str(store))
        assert (code, out) == (2, "") and err.startswith("eventfold: usage: argument --exp"), err
    with pytest.raises(SystemExit) as exited:
        run(capsys, "verify", "--source", str(good), "--expected", str(good))
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "not allowed with argument --source" in err
