"""`eventfold events`: the recorded events that make up a total, in store order, selected by
category, time and source, as a table, CSV, one JSON document or JSON Lines, read a page at a
time."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import eventfold.application.admin.events as events_module
from clihelpers import run
from eventfold.application.recorded import recorded_pages
from eventfold.cli import main
from eventfold.domain.model import exact_sum

LINES = [
    '{"id": "r1", "category": "rent", "value": 0.1, "timestamp": "2024-05-01T09:59:59Z"}',
    '{"id": "r2", "category": "rent", "value": 0.2, "timestamp": "2024-05-01T10:00:00Z"}',
    '{"id": "f1", "category": "food", "value": 3, "timestamp": "2024-05-01T10:30:00Z"}',
    '{"id": "r3", "category": "rent", "value": 12345678901234567890.123}',
    '{"id": "r2", "category": "rent", "value": 0.20, "timestamp": "2024-05-01T10:00:00Z"}',
    '{"id": "r4", "category": "rent", "value": -1e-20, "timestamp": "2024-05-01T11:00:00Z"}',
    '{"id": "c1", "category": "cat-a", "value": 5, "timestamp": "2024-05-01T11:00:00+02:00"}',
    '{"id": "c2", "category": "cat-b", "value": 6, "timestamp": "2024-05-01T12:00:00Z"}',
]
OTHER = ['{"id": "r5", "category": "rent", "value": 100, "timestamp": "2024-05-02T00:00:00Z"}']


@pytest.fixture
def store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Path:
    """Two sources ingested two lines a commit: rent, food and cat-* events, one rent event
    without a timestamp, one duplicate."""
    monkeypatch.chdir(tmp_path)
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.jsonl").write_text("\n".join(LINES) + "\n", encoding="utf-8")
    (logs / "b.jsonl").write_text("\n".join(OTHER) + "\n", encoding="utf-8")
    store = tmp_path / "store"
    for name in ("a.jsonl", "b.jsonl"):
        code, _, err = run(
            capsys, "ingest", str(logs / name), "--store", str(store), "--batch", "2", "--quiet"
        )
        assert (code, err) == (0, "")
    return store


def events(capsys: pytest.CaptureFixture[str], store: Path, *args: str) -> dict[str, Any]:
    code, out, err = run(capsys, "events", "--store", str(store), *args, "--json")
    assert (code, err) == (0, "")
    doc: dict[str, Any] = json.loads(out)
    return doc


def ids(doc: dict[str, Any]) -> list[str]:
    return [e["event_id"] for e in doc["events"]]


def test_the_events_of_a_category_sum_exactly_to_its_projection_total(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "catchup", "--store", str(store), "--json")
    assert code == 0
    totals = json.loads(out)["categories"]
    for category in ("rent", "food", "cat-a"):
        doc = events(capsys, store, "--category", category)
        assert {"count": doc["count"], "total": doc["total"]} == totals[category]
        values = [Decimal(e["value"]) for e in doc["events"]]
        assert Decimal(doc["total"]) == exact_sum(values)  # no rounding
    rent = events(capsys, store, "--category", "rent")
    assert rent["total"] == "12345678901234567990.42299999999999999999"
    assert ids(rent) == ["r1", "r2", "r3", "r4", "r5"]  # store order; the duplicate is not one


def test_every_field_of_an_event_is_given_exactly(
    store: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    doc = events(capsys, store, "--category", "rent")
    notification_ids = [e["notification_id"] for e in doc["events"]]
    assert notification_ids == sorted(notification_ids)
    r3, r4 = doc["events"][2], doc["events"][3]
    a = str((tmp_path / "logs" / "a.jsonl").resolve())
    offset = sum(len(line) + 1 for line in LINES[:3])
    assert r3 == {
        "notification_id": r3["notification_id"],
        "event_id": "r3",
        "category": "rent",
        "value": "12345678901234567890.123",
        "occurred_at": None,
        "source": a,
        "line": 4,
        "offset": offset,
        "held_by": None,
    }
    assert (r4["value"], r4["occurred_at"]) == ("-1E-20", "2024-05-01T11:00:00+00:00")


def test_since_is_inclusive_until_exclusive_and_untimed_events_are_left_out(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = events(
        capsys, store, "--category", "rent", "--since", "2024-05-01T10:00", "--until", "2024-05-02"
    )
    assert ids(doc) == ["r2", "r4"]  # r1 before, r5 at --until, r3 has no timestamp
    assert (doc["count"], doc["total"], doc["untimed"]) == (2, "0.19999999999999999999", 1)
    with pytest.raises(SystemExit) as exit_info:
        main(["events", "--store", str(store), "--until", "yesterday"])
    err = capsys.readouterr().err.splitlines()[-1]
    assert exit_info.value.code == 2
    assert err.startswith("eventfold: usage: argument --until: expected an ISO 8601")
    code, _, err = run(
        capsys, "events", "--store", str(store), "--since", "2024-05-02", "--until", "2024-05-01"
    )
    assert code == 2 and err.startswith("eventfold: usage: --since")


def test_a_zone_is_taken_into_account(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = events(
        capsys, store, "--since", "2024-05-01T10:00:00+01:00", "--until", "2024-05-01T10:00"
    )
    assert ids(doc) == ["r1", "c1"]  # 09:00Z <= 09:59:59Z, 11:00+02:00 (09:00Z) < 10:00Z
    cat = events(capsys, store, "--category", "cat-a", "--until", "2024-05-01T09:00:01")
    assert ids(cat) == ["c1"]  # 11:00+02:00 is 09:00Z


def test_categories_by_name_repeated_and_by_pattern(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ids(events(capsys, store, "--category", "cat-*")) == ["c1", "c2"]
    both = events(capsys, store, "--category", "food", "--category", "cat-b")
    assert ids(both) == ["f1", "c2"]
    assert (both["count"], both["total"]) == (2, "9")
    none = events(capsys, store, "--category", "Rent")  # names are case-sensitive
    assert (none["events"], none["count"], none["total"]) == ([], 0, "0")


def test_source_selects_by_the_recorded_source_name(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ids(events(capsys, store, "--source", "logs/b.jsonl")) == ["r5"]
    assert len(ids(events(capsys, store, "--source", "logs/*.jsonl"))) == 8
    assert ids(events(capsys, store, "--source", "logs/a*", "--category", "cat-b")) == ["c2"]
    assert events(capsys, store, "--source", "elsewhere.jsonl")["count"] == 0


def test_limit_lists_the_first_events_and_counts_them_all(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = events(capsys, store, "--category", "rent", "--limit", "2")
    assert ids(doc) == ["r1", "r2"]
    assert (doc["count"], doc["total"]) == (5, events(capsys, store, "--category", "rent")["total"])
    code, out, _ = run(capsys, "events", "--store", str(store), "--jsonl", "--limit", "3")
    assert code == 0
    assert [json.loads(line)["event_id"] for line in out.splitlines()] == ["r1", "r2", "f1"]
    code, out, _ = run(capsys, "events", "--store", str(store), "--limit", "1")
    assert code == 0
    assert "r1" in out and "r2" not in out
    assert out.rstrip().endswith(
        "8 events, total 12,345,678,901,234,568,004.42299999999999999999; "
        "the first 1 shown (--limit 0 shows all)"
    )


def test_csv_is_a_header_and_a_row_per_event(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "events", "--store", str(store), "--category", "rent", "--csv")
    assert (code, err) == (0, "")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == [
        "notification_id",
        "event_id",
        "category",
        "value",
        "occurred_at",
        "source",
        "line",
        "offset",
        "held_by",
    ]
    assert [(r["event_id"], r["value"], r["occurred_at"]) for r in rows[2:4]] == [
        ("r3", "12345678901234567890.123", ""),
        ("r4", "-1E-20", "2024-05-01T11:00:00+00:00"),
    ]
    jsonl = run(capsys, "events", "--store", str(store), "--category", "rent", "--jsonl")[1]
    assert [json.loads(line) for line in jsonl.splitlines()] == events(
        capsys, store, "--category", "rent"
    )["events"]


def test_the_table_shows_untrusted_text_as_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "x.jsonl"
    source.write_text('{"id": "[red]x[/red]", "category": "a\\u001b[2Jb", "value": 1}\n')
    store = str(tmp_path / "store")
    assert run(capsys, "ingest", str(source), "--store", store, "--quiet")[0] == 0
    code, out, _ = run(capsys, "events", "--store", store)
    assert code == 0
    assert "[red]x[/red]" in out and "a\\x1b[2Jb" in out and "\x1b" not in out
    assert out.rstrip().endswith("1 event, total 1")


class _Pages:
    """The pages ``events`` reads, counted as they are read."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.read = 0
        self.sizes: list[int] = []
        real = recorded_pages

        def counted(*args: Any, **kwargs: Any) -> Iterator[Any]:
            for page in real(*args, **kwargs):
                self.read += 1
                self.sizes.append(len(page))
                yield page

        monkeypatch.setattr(events_module, "recorded_pages", counted)


class _Output(io.StringIO):
    """Standard output that notes how many pages had been read at each write."""

    def __init__(self, pages: _Pages) -> None:
        super().__init__()
        self.pages = pages
        self.writes: list[tuple[int, str]] = []

    def write(self, text: str) -> int:
        self.writes.append((self.pages.read, text))
        return super().write(text)


@pytest.mark.parametrize("output", ["--jsonl", "--json", "--csv"])
def test_events_are_written_as_each_page_is_read(
    output: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With pages of 5 events, the first event is written after the first page is read and
    the last after the last: no more than a page is ever held."""
    source = tmp_path / "many.jsonl"
    source.write_text(
        "".join(f'{{"id": {i}, "category": "c{i % 3}", "value": {i}}}\n' for i in range(200))
    )
    store = str(tmp_path / "store")
    assert main(["ingest", str(source), "--store", store, "--batch", "5", "--quiet"]) == 0
    monkeypatch.setattr(events_module, "PAGE", 5)
    pages = _Pages(monkeypatch)
    out = _Output(pages)
    monkeypatch.setattr(sys, "stdout", out)
    assert main(["events", "--store", store, "--category", "c0", output]) == 0
    assert pages.read == 40 and max(pages.sizes) == 5  # a commit of 5 events a page
    events_written = [read for read, text in out.writes if "c0" in text]
    assert len(events_written) == 67
    assert events_written[0] == 1  # the first page holds event 0: written before the second
    assert events_written[-1] == 40
    # each page's events were written before the next page was read
    assert events_written == sorted(events_written)
    assert len(set(events_written)) == 40


def test_a_store_that_does_not_exist_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "events", "--store", str(tmp_path / "none"))
    assert (code, out) == (2, "")
    assert err.startswith("eventfold: unusable store:")


def test_a_reader_that_stops_reading_the_table_ends_it_quietly(tmp_path: Path) -> None:
    """``events | head -1``: the table outgrows the pipe, the reader closes it; exit 0."""
    import os
    import subprocess

    from processes import HANG, eventfold

    source = tmp_path / "many.jsonl"
    source.write_text(
        "".join(f'{{"id": "{i}", "category": "c{i % 7}", "value": {i}}}\n' for i in range(3000))
    )
    store = str(tmp_path / "store")
    assert (
        subprocess.run(
            eventfold("ingest", str(source), "--store", store), timeout=HANG, capture_output=True
        ).returncode
        == 0
    )
    child = subprocess.Popen(
        eventfold("events", "--store", store, "--limit", "0"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "COLUMNS": "100"},
    )
    assert child.stdout is not None and child.stderr is not None
    assert child.stdout.readline()  # the first line arrives; then the reader goes away
    child.stdout.close()
    assert child.wait(timeout=HANG) == 0
    assert child.stderr.read() == b""
