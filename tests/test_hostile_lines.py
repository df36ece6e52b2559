"""Hostile lines: every line is accepted or quarantined, whatever it holds, with its physical
line number. Each test is named as the rule it enforces."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from eventfold.application.app import open_store
from eventfold.application.demo.sample import write_sample
from eventfold.application.ingest import Ingestor
from eventfold.application.ingest.rules import SourceEvent, parse_event
from eventfold.application.proving.reference import expected_from_source
from ingesthelpers import agreed_totals, ingest_json, store_totals

# -- every line is accepted or quarantined ---------------------------------------


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"[" * 100_000, "not valid JSON (nested too deeply)"),
        (b'{"a":' * 100_000, "not valid JSON (nested too deeply)"),
        (b'{"id":"a","category":"x","value":0e999999999999999999999}', "not valid JSON"),
        (b'{"id":"a","category":"x","value":0e-999999999}', "value: exponent out of range"),
        (b'{"id":"a","category":"x","value":0e-999999999999999999}', "value: exponent out"),
        (b'{"id":"a","category":"x","value":1' + b"0" * 7000 + b"}", "value: exponent out"),
        (b'{"id":[' + b"9" * 5000 + b'],"category":"x","value":1}', "id: a array"),
        (b"[" + b"9" * 5000 + b"]", "not a JSON object (an array)"),
        (b'{"id":"a","category":' + b"9" * 5000 + b',"value":1}', "category: not a non-empty"),
    ],
)
def test_any_parser_failure_on_a_line_is_that_lines_reason(raw: bytes, why: str) -> None:
    reason = parse_event(raw)
    assert isinstance(reason, str) and reason.startswith(why), reason


def test_the_exponent_rule_applies_to_zero_as_to_any_value() -> None:
    for good in (b"0", b"0.000", b"-0", b"0e-6143", b"0E+6144"):
        parsed = parse_event(b'{"id":"a","category":"x","value":' + good + b"}")
        assert isinstance(parsed, SourceEvent) and parsed.value == 0, good
    for bad in (b"0e-6144", b"0e6145", b"0e-999999999"):
        assert parse_event(b'{"id":"a","category":"x","value":' + bad + b"}") == (
            "value: exponent out of range [-6143, 6144]"
        )


def test_an_integer_of_any_length_is_read_as_its_decimal_digits() -> None:
    digits = "7" * 4400
    parsed = parse_event(f'{{"id":{digits},"category":"x","value":{digits}}}'.encode())
    assert isinstance(parsed, SourceEvent)
    assert parsed.event_id == digits and parsed.value == Decimal(digits)
    spelled = parse_event(f'{{"id":"{digits}","category":"x","value":7.7e4399}}'.encode())
    assert isinstance(spelled, SourceEvent) and spelled.event_id == digits
    parsed = parse_event(f'{{"id":-0,"category":"x","value":1,"n":{digits}}}'.encode())
    assert isinstance(parsed, SourceEvent) and parsed.event_id == "0"
    wide_stamp = parse_event(f'{{"id":1,"category":"x","value":1,"timestamp":{digits}}}'.encode())
    assert wide_stamp == "timestamp: epoch seconds out of range"


def test_hostile_lines_never_stop_ingest_and_agree_with_the_reference(tmp_path: Path) -> None:
    digits = "3" * 4400
    source = tmp_path / "s.jsonl"
    source.write_bytes(
        b"\n".join(
            [
                b'{"id":"first","category":"x","value":1}',
                b"[" * 1000,
                b'{"id":"z","category":"x","value":0e-999999999}',
                f'{{"id":{digits},"category":"wide","value":{digits}}}'.encode(),
                # the same id again, spelled as a string: a conflict
                f'{{"id":"{digits}","category":"wide","value":1}}'.encode(),
                b'{"id":"last","category":"x","value":2}',
            ]
        )
        + b"\n"
    )
    for reader in ("0", "1"):
        store = tmp_path / f"store-{reader}"
        code, doc, err = ingest_json(source, store)
        assert code == 0, err
        assert (doc["ingested"], doc["invalid"], doc["conflicts"]) == (3, 2, 1)
        assert agreed_totals(source, store)["wide"] == (1, Decimal(digits))


def test_epoch_fractions_below_a_microsecond_are_dropped_never_rounded_up() -> None:
    raw = b'{"id":"a","category":"x","value":1,"timestamp":1767225599.' + b"9" * 40 + b"}"
    parsed = parse_event(raw)
    assert isinstance(parsed, SourceEvent)
    assert parsed.occurred_iso == "2025-12-31T23:59:59.999999+00:00"
    later = parse_event(b'{"id":"a","category":"x","value":1,"timestamp":1767225599.999999}')
    assert isinstance(later, SourceEvent) and later.same_content(parsed)  # a duplicate
    negative = parse_event(b'{"id":"a","category":"x","value":1,"timestamp":-1.0000005}')
    assert isinstance(negative, SourceEvent)
    assert negative.occurred_iso == "1969-12-31T23:59:58.999999+00:00"  # toward the past


# -- physical line numbers --------------------------------------------------------


def test_lines_after_an_unterminated_last_line_keep_their_physical_numbers(
    tmp_path: Path,
) -> None:
    source, store = tmp_path / "s.jsonl", tmp_path / "store"
    source.write_bytes(b'{"id":"a","category":"x","value":1}')  # complete, unterminated
    code, doc, err = ingest_json(source, store)
    assert code == 0 and doc["ingested"] == 1, err
    with source.open("ab") as f:
        f.write(b"\nBAD LINE\n")
    code, doc, err = ingest_json(source, store)
    assert code == 0, err
    assert [(b["line"], b["offset"], b["raw"]) for b in doc["invalid_lines"]] == [
        (2, 36, "BAD LINE")
    ]
    assert (doc["line"], doc["position"]) == (2, source.stat().st_size)


def test_bytes_appended_to_an_unterminated_last_line_belong_to_that_line(
    tmp_path: Path,
) -> None:
    source, store = tmp_path / "s.jsonl", tmp_path / "store"
    source.write_bytes(b'{"id":"a","category":"x","value":1}')
    assert ingest_json(source, store)[0] == 0
    with source.open("ab") as f:
        f.write(b' trailing\n{"id":"b","category":"x","value":2}\n')
    code, doc, err = ingest_json(source, store)
    assert code == 0, err
    assert [(b["line"], b["offset"]) for b in doc["invalid_lines"]] == [(1, 35)]
    assert doc["ingested"] == 1 and doc["line"] == 2
    reference = expected_from_source(str(source))
    assert reference.records["b"].line == 2


def test_the_reader_process_agrees_with_reading_in_process_on_hostile_lines(
    tmp_path: Path,
) -> None:
    source = tmp_path / "s.jsonl"
    with source.open("wb") as f:
        write_sample(f, 3000)
        f.write(b"[" * 5000 + b"\n" + b"y" * 3000 + b"\n")
        write_sample(f, 3000, first_id=10_000)
    results = []
    for reader in (False, True):
        store = tmp_path / f"store-{reader}"
        app = open_store(str(store))
        try:
            with Ingestor(
                app, str(store), batch=100, reader_process=reader, max_line=2000
            ) as ingestor:
                report = ingestor.run(str(source))
            results.append((report.ingested, report.invalid, store_totals(app)))
        finally:
            app.close()
    assert results[0] == results[1]
    assert results[0][1] == 2
