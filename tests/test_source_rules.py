"""The source format's rules, one line at a time (README, "Source format")."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from eventfold.application.ingest.rules import SourceEvent, parse_event
from eventfold.infra.lines import read_lines


def event(raw: bytes) -> SourceEvent:
    parsed = parse_event(raw)
    assert isinstance(parsed, SourceEvent), parsed
    return parsed


def reason(raw: bytes) -> str:
    parsed = parse_event(raw)
    assert isinstance(parsed, str), parsed
    return parsed


def test_valid_event_keeps_id_category_exact_value_and_time() -> None:
    e = event(b'{"id":"a-1","category":"rent","value":12.50,"timestamp":"2026-03-01T10:15:00Z"}')
    assert e.event_id == "a-1" and e.category == "rent"
    assert e.value == Decimal("12.50") and str(e.value) == "12.50"
    assert e.occurred_at == datetime(2026, 3, 1, 10, 15, tzinfo=UTC)
    assert e.occurred_iso == e.occurred_at.isoformat()


def test_integer_id_stands_for_its_decimal_string() -> None:
    assert event(b'{"id":42,"category":"x","value":1}').event_id == "42"
    assert event(b'{"id":-7,"category":"x","value":1}').event_id == "-7"


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (b"1e3", "1E+3"),
        (b"1.5E-3", "0.0015"),
        (b"-0.000", "-0.000"),
        (b"123456789012345678901234567890.123456789", "123456789012345678901234567890.123456789"),
        (b"0.1", "0.1"),
        (b"7", "7"),
    ],
)
def test_values_are_exact_decimals_never_floats(raw: bytes, value: str) -> None:
    parsed = event(b'{"id":"v","category":"x","value":' + raw + b"}")
    assert type(parsed.value) is Decimal
    assert parsed.value == Decimal(value)


def test_ten_times_a_tenth_is_exactly_one() -> None:
    total = sum(
        (event(b'{"id":"t","category":"x","value":0.1}').value for _ in range(10)), Decimal(0)
    )
    assert total == Decimal(1)


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        (b'"2026-01-02T03:04:05"', datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        (b'"2026-01-02T03:04:05Z"', datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),  # the usual shape
        (b'"2026-01-02 03:04:05Z"', datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        (b'"2026-W01-5T03:04:05Z"', datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),  # a week date
        (b'"2026-01-02T05:04:05+02:00"', datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        (b'"2026-01-02T03:04:05.250Z"', datetime(2026, 1, 2, 3, 4, 5, 250000, tzinfo=UTC)),
        (b"1767323045", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        (b"1767323045.5", datetime(2026, 1, 2, 3, 4, 5, 500000, tzinfo=UTC)),
        (b"null", None),
    ],
)
def test_timestamps_iso_8601_or_epoch_seconds_in_utc(
    stamp: bytes, expected: datetime | None
) -> None:
    e = event(b'{"id":"t","category":"x","value":1,"timestamp":' + stamp + b"}")
    assert e.occurred_at == expected
    if expected is not None:
        assert e.occurred_iso == expected.isoformat()


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"not json", "not valid JSON"),
        (b'{"id":"a","category":"x","value":1', "not valid JSON"),
        (b'["id","a"]', "not a JSON object (an array)"),
        (b'"text"', "not a JSON object (a string)"),
        (b"null", "not a JSON object (null)"),
        (b"7", "not a JSON object (a number)"),
        (b'{"category":"x","value":1}', "id: missing"),
        (b'{"id":"","category":"x","value":1}', "id: empty string"),
        (b'{"id":1.5,"category":"x","value":1}', "id: a number"),
        (b'{"id":true,"category":"x","value":1}', "id: a boolean"),
        (b'{"id":"a","value":1}', "category: missing"),
        (b'{"id":"a","category":"","value":1}', "category: not a non-empty string"),
        (b'{"id":"a","category":7,"value":1}', "category: not a non-empty string"),
        (b'{"id":"a","category":"x"}', "value: missing"),
        (b'{"id":"a","category":"x","value":null}', "value: missing"),
        (b'{"id":"a","category":"x","value":"12.5"}', "value: a string"),
        (b'{"id":"a","category":"x","value":true}', "value: a boolean"),
        (b'{"id":"a","category":"x","value":false}', "value: a boolean"),
        (b'{"id":"a","category":"x","value":[1]}', "value: a array"),
        (b'{"id":"a","category":"x","value":NaN}', "not valid JSON"),
        (b'{"id":"a","category":"x","value":Infinity}', "not valid JSON"),
        (b'{"id":"a","category":"x","value":1e999999}', "value: exponent out of range"),
        (b'{"id":"a","category":"x","value":1,"timestamp":"yesterday"}', "timestamp: not ISO"),
        (
            b'{"id":"a","category":"x","value":1,"timestamp":"2026-13-01T00:00:00Z"}',
            "timestamp: not ISO",
        ),  # the usual shape, but no such month
        (b'{"id":"a","category":"x","value":1,"timestamp":true}', "timestamp: a boolean"),
        (b'{"id":"a","category":"x","value":1,"timestamp":1e30}', "timestamp: epoch seconds"),
        (b'{"id":"a","category":"caf\xe9","value":1}', "not valid UTF-8"),
        (b'{"id":"a","category":"\\ud800","value":1}', "not valid JSON"),
    ],
)
def test_each_kind_of_invalid_line_has_a_reason(raw: bytes, why: str) -> None:
    assert reason(raw).startswith(why)


def test_category_is_compared_exactly_and_any_unicode_is_allowed() -> None:
    names = [" rent", "Rent", "rent", "[bold red]x[/]", "\x1b[31mred\x1b[0m", "日本", "😀"]
    import json

    for name in names:
        raw = json.dumps({"id": "a", "category": name, "value": 1}).encode()
        assert event(raw).category == name


def test_other_fields_are_ignored() -> None:
    assert event(b'{"id":"a","category":"x","value":1,"note":{"deep":[1,2]}}').value == 1


def test_lines_crlf_offsets_and_unterminated_tail() -> None:
    data = b'{"a":1}\r\n\n{"b":2}\n{"c":'
    lines = list(read_lines(io.BytesIO(data)))
    assert [(ln.number, ln.offset, ln.raw, ln.terminated) for ln in lines] == [
        (1, 0, b'{"a":1}\r', True),
        (2, 9, b"", True),
        (3, 10, b'{"b":2}', True),
        (4, 18, b'{"c":', False),
    ]
    assert lines[0].end == 9 and lines[3].end == len(data)
    assert event(b'{"id":"r","category":"x","value":1}\r').event_id == "r"


def test_reading_resumes_from_an_offset_and_line_number() -> None:
    data = b"one\ntwo\nthree\n"
    stream = io.BytesIO(data)
    stream.seek(4)
    assert [(ln.number, ln.offset, ln.raw) for ln in read_lines(stream, 4, 1)] == [
        (2, 4, b"two"),
        (3, 8, b"three"),
    ]
