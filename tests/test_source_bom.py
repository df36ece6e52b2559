"""A UTF-8 byte order mark: accepted at the very start of a source, named anywhere else.

Ingest (in this process and in its reader process), the independent reference of
``verify --source`` and ``reconcile`` agree; offsets stay the file's byte offsets.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from eventfold.application.app import open_store
from eventfold.application.ingest import Ingestor
from eventfold.application.ingest.rules import parse_event
from eventfold.application.proving.reference import expected_from_source
from eventfold.cli import main
from eventfold.infra.lines import BOM, skip_bom
from ingesthelpers import store_totals

FIRST = b'{"id": "a", "category": "x", "value": 1.5}'
SECOND = b'{"id": "b", "category": "x", "value": 2}'
THIRD = b'{"id": "c", "category": "y", "value": 3}'
SOURCE = BOM + FIRST + b"\n" + SECOND + b"\n" + BOM + THIRD + b"\n"  # two marks: one misplaced


def test_a_mark_inside_a_line_is_named_as_the_reason() -> None:
    assert parse_event(BOM + THIRD) == (
        "not valid JSON (byte order mark (U+FEFF) inside a line, at byte 0)"
    )
    between = b'{"id": "c",' + BOM + b'"category": "y", "value": 3}'
    assert parse_event(between) == (
        "not valid JSON (byte order mark (U+FEFF) inside a line, at byte 11)"
    )
    inside_a_string = b'{"id": "c", "category": "\xef\xbb\xbfy", "value": 3}'
    assert not isinstance(parse_event(inside_a_string), str)  # a character like any other


def test_skip_bom_only_at_the_start_of_a_source() -> None:
    stream = io.BytesIO(BOM + FIRST)
    assert (skip_bom(stream, 0), stream.read()) == (3, FIRST)
    peekable = io.BufferedReader(io.BytesIO(FIRST))  # peeked, not consumed
    assert (skip_bom(peekable, 0), peekable.read()) == (0, FIRST)
    stream = io.BytesIO(BOM + FIRST)
    stream.seek(3)
    assert skip_bom(stream, 3) == 3


@pytest.mark.parametrize("reader_process", [False, True])
def test_ingest_accepts_a_leading_mark_and_quarantines_a_misplaced_one(
    tmp_path: Path, reader_process: bool
) -> None:
    source = tmp_path / "s.jsonl"
    source.write_bytes(SOURCE)
    app = open_store(str(tmp_path / "store"))
    try:
        with Ingestor(app, str(tmp_path / "store"), reader_process=reader_process) as ingestor:
            report = ingestor.run(str(source))
        assert (report.read, report.ingested, report.invalid) == (3, 2, 1)
        assert report.position == len(SOURCE)  # the file's own byte offsets
        [invalid] = report.invalid_samples
        assert (invalid.line, invalid.offset) == (3, len(BOM + FIRST + SECOND) + 2)
        assert "byte order mark (U+FEFF) inside a line" in invalid.reason
        totals = store_totals(app)
    finally:
        app.close()
    expected = expected_from_source(str(source))
    assert totals == {name: (n, t) for name, (n, t) in expected.totals.items()}
    assert (expected.lines, expected.invalid) == (3, 1)
    record = expected.records["a"]
    assert (record.line, record.offset, record.length) == (1, 3, len(FIRST))


def test_verify_and_reconcile_accept_a_leading_mark(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "s.jsonl"
    source.write_bytes(SOURCE)
    partial = tmp_path / "partial.jsonl"
    partial.write_bytes(SECOND + b"\n")
    store = str(tmp_path / "store")
    assert main(["ingest", str(partial), "--store", store, "--quiet"]) == 0
    capsys.readouterr()
    assert main(["reconcile", str(source), "--store", store, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["missing"], doc["replayed"], doc["status"]) == (1, 1, "match")
    assert doc["plan"][0]["offset"] == 3  # line 1 begins after the mark
    assert main(["verify", "--source", str(source), "--store", store, "--quiet"]) == 0


def test_an_expected_document_may_begin_with_a_mark(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "s.jsonl"
    source.write_bytes(FIRST + b"\n")
    store = str(tmp_path / "store")
    assert main(["ingest", str(source), "--store", store, "--quiet"]) == 0
    expected = tmp_path / "expected.json"
    expected.write_bytes(BOM + b'{"categories": {"x": {"count": 1, "total": "1.5"}}}')
    assert main(["verify", "--expected", str(expected), "--store", store, "--quiet"]) == 0
