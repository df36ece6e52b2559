"""`eventfold quarantine`: the quarantined lines of every source, from the store's events,
filtered by source and reason, as a table, JSON, JSON Lines or raw lines to fix and feed
back to ingest."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from clihelpers import run
from eventfold.cli import main

GOOD = '{"id": "%s", "category": "rent", "value": 1}\n'


@pytest.fixture
def store(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> tuple[str, Path, Path]:
    """A store of two files and standard input, each with invalid lines."""
    logs = tmp_path / "logs"
    logs.mkdir()
    first, second = logs / "first.jsonl", logs / "second.jsonl"
    first.write_text(
        GOOD % "a1"
        + '{"id": "a2", "category": "rent", "value": "1.5"}\n'  # value: a string
        + "[bold red]not json[/]\n"
        + '{"id": "a4", "category": "rent", "value": 2, "timestamp": "yesterday"}\n'
    )
    second.write_text('{"id": "b1", "value": 3}\n' + GOOD % "b2")
    store = str(tmp_path / "store")
    monkeypatch.chdir(tmp_path)
    for path in (first, second):
        assert run(capsys, "ingest", str(path), "--store", store, "--quiet")[0] == 0
    data = io.BytesIO(b"still not json\n")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(data))
    assert run(capsys, "ingest", "-", "--store", store, "--quiet")[0] == 0
    return store, first, second


def _lines(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    code, out, err = run(capsys, "quarantine", *args, "--jsonl")
    assert (code, err) == (0, "")
    return [json.loads(line) for line in out.splitlines()]


def test_every_quarantined_line_in_source_then_line_order(
    store: tuple[str, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path, first, second = store
    code, out, err = run(capsys, "quarantine", "--store", path, "--json")
    assert (code, err) == (0, "")
    doc = json.loads(out)
    found = [(q["source"], q["line"]) for q in doc["lines"]]
    a, b = str(first.resolve()), str(second.resolve())
    assert found == [(a, 2), (a, 3), (a, 4), (b, 1), ("-", 1)]
    assert doc["count"] == 5
    [missing] = [q for q in doc["lines"] if q["source"] == b]
    assert missing == {
        "source": b,
        "line": 1,
        "offset": 0,
        "reason": missing["reason"],
        "raw": '{"id": "b1", "value": 3}',
    }
    assert "category" in missing["reason"]


def test_jsonl_has_the_shape_of_the_store_quarantine_files(
    store: tuple[str, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path, _, _ = store
    kept = sorted(
        line
        for file in (Path(path) / "quarantine").iterdir()
        for line in file.read_text().splitlines()
    )
    code, out, _ = run(capsys, "quarantine", "--store", path, "--jsonl")
    assert code == 0 and sorted(out.splitlines()) == kept  # the same bytes, line for line
    listed = [json.loads(line) for line in out.splitlines()]
    assert all(list(q) == ["source", "line", "offset", "reason", "raw"] for q in listed)


def test_source_is_a_path_or_a_pattern_and_reason_a_substring(
    store: tuple[str, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path, first, second = store
    a, b = str(first.resolve()), str(second.resolve())
    by_relative_path = _lines(capsys, "--store", path, "--source", "logs/first.jsonl")
    assert {q["source"] for q in by_relative_path} == {a} and len(by_relative_path) == 3
    by_pattern = _lines(capsys, "--store", path, "--source", "logs/*.jsonl")
    assert [q["source"] for q in by_pattern] == [a, a, a, b]
    assert _lines(capsys, "--store", path, "--source", "*/sec*")[0]["source"] == b
    assert [q["source"] for q in _lines(capsys, "--store", path, "--source", "-")] == ["-"]
    assert _lines(capsys, "--store", path, "--source", "logs/none.jsonl") == []
    not_json = _lines(capsys, "--store", path, "--reason", "NOT VALID json")
    assert [(q["source"], q["line"]) for q in not_json] == [(a, 3), ("-", 1)]
    both = _lines(capsys, "--store", path, "--reason", "not valid json", "--source", "logs/*")
    assert [(q["source"], q["line"]) for q in both] == [(a, 3)]
    code, out, _ = run(capsys, "quarantine", "--store", path, "--json", "--limit", "2")
    doc = json.loads(out)
    assert (code, len(doc["lines"]), doc["count"]) == (0, 2, 5)


def test_raw_lines_fixed_and_fed_back_are_ingested(
    store: tuple[str, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _, _ = store
    code, out, err = run(capsys, "quarantine", "--store", path, "--raw", "--source", "logs/*")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        '{"id": "a2", "category": "rent", "value": "1.5"}',
        "[bold red]not json[/]",
        '{"id": "a4", "category": "rent", "value": 2, "timestamp": "yesterday"}',
        '{"id": "b1", "value": 3}',
    ]
    fixed = (
        out.replace('"1.5"', "1.5")
        .replace("[bold red]not json[/]", GOOD.strip() % "a3")
        .replace('"yesterday"', '"2026-11-30T00:00:00Z"')
        .replace('{"id": "b1",', '{"id": "b1", "category": "food",')
    )
    fix = tmp_path / "fix.jsonl"
    fix.write_text(fixed)
    code, out, _ = run(capsys, "ingest", str(fix), "--store", path, "--json")
    doc = json.loads(out)
    assert (code, doc["ingested"], doc["invalid"]) == (0, 4, 0)


def test_raw_leaves_out_lines_kept_only_in_part_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "long.jsonl"
    long_line = '{"id": "x", "category": "rent", "value": 1, "pad": "' + "p" * 2000 + '"}'
    source.write_text("oops\n" + long_line + "\n")
    store = str(tmp_path / "store")
    args = ("--store", store)
    assert run(capsys, "ingest", str(source), *args, "--max-line-bytes", "1500", "--quiet")[0] == 0
    code, out, err = run(capsys, "quarantine", *args, "--raw")
    assert (code, out) == (0, "oops\n")
    assert err.startswith("eventfold: warning: 1 of 2 lines left out: longer than the line limit")
    [_, kept] = _lines(capsys, *args)
    assert kept["raw"].endswith("…") and len(kept["raw"].encode()) < len(long_line)


def test_the_terminal_shows_raw_text_inert_and_a_count(
    store: tuple[str, Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, _, _ = store
    monkeypatch.setenv("COLUMNS", "300")
    code, out, err = run(capsys, "quarantine", "--store", path)
    assert (code, err) == (0, "")
    assert "[bold red]not json[/]" in out  # shown as text, never as markup
    assert out.rstrip().endswith("5 quarantined lines")
    code, out, _ = run(capsys, "quarantine", "--store", path, "--limit", "1")
    assert out.rstrip().endswith("5 quarantined lines, the first 1 shown (--limit 0 shows all)")


def test_a_rescanned_source_shows_only_its_current_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "s.jsonl"
    source.write_text("old bad\n" + GOOD % "1")
    store = str(tmp_path / "store")
    assert run(capsys, "ingest", str(source), "--store", store, "--quiet")[0] == 0
    source.write_text(GOOD % "1" + "new bad\n")
    assert run(capsys, "ingest", str(source), "--store", store, "--rescan", "--quiet")[0] == 0
    assert [q["raw"] for q in _lines(capsys, "--store", store)] == ["new bad"]
    [listed] = json.loads(run(capsys, "sources", "--store", store, "--json")[1])["sources"]
    assert (listed["generation"], listed["state"]) == (1, "complete")


def test_one_output_format_at_a_time(
    store: tuple[str, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path, _, _ = store
    with pytest.raises(SystemExit) as exit_info:
        main(["quarantine", "--store", path, "--json", "--raw"])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    last = captured.err.splitlines()[-1]
    assert last == "eventfold: usage: argument --raw: not allowed with argument --json"
