"""Reading JSON Lines sources by the documented rules (README, "Source format").

``read_lines`` splits a byte stream into physical lines with their line number
and byte offset; ``parse_event`` turns one line into a ``SourceEvent`` or the
reason it is invalid. Neither ever raises for bad input.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import BinaryIO

import msgspec

READ_CHUNK = 1 << 20
# Accepted values have an adjusted exponent in this range (IEEE decimal128's),
# so that exact sums stay a reasonable size whatever the input.
MIN_EXPONENT, MAX_EXPONENT = -6143, 6144
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_decoder = msgspec.json.Decoder(float_hook=Decimal)


@dataclass(frozen=True, slots=True)
class SourceEvent:
    """One valid source event. ``occurred_at`` is UTC, or None when not given."""

    event_id: str
    category: str
    value: Decimal
    occurred_at: datetime | None

    def same_content(self, other: SourceEvent) -> bool:
        """Same category, numerically equal value and the same instant."""
        return (
            self.category == other.category
            and self.value == other.value
            and self.occurred_at == other.occurred_at
        )


@dataclass(frozen=True, slots=True)
class Line:
    """A physical line: 1-based number, byte offset, bytes without the line ending."""

    number: int
    offset: int
    raw: bytes
    terminated: bool

    @property
    def end(self) -> int:
        """Offset just after this line (and its ``\\n`` when terminated)."""
        return self.offset + len(self.raw) + (1 if self.terminated else 0)


def read_lines(stream: BinaryIO, offset: int = 0, number: int = 0) -> Iterator[Line]:
    """The lines of ``stream`` read from ``offset`` (after line ``number``).

    A trailing ``\\r`` stays in ``raw`` (JSON treats it as whitespace). The last
    line is yielded with ``terminated=False`` when the stream ends without ``\\n``.
    """
    pending = b""
    while True:
        chunk = stream.read(READ_CHUNK)
        if not chunk:
            break
        data = pending + chunk if pending else chunk
        start = 0
        while (end := data.find(b"\n", start)) >= 0:
            number += 1
            yield Line(number, offset, data[start:end], True)
            offset += end - start + 1
            start = end + 1
        pending = data[start:]
    if pending:
        yield Line(number + 1, offset, pending, False)


def is_blank(raw: bytes) -> bool:
    return not raw.strip(b" \t\r")


def parse_event(raw: bytes) -> SourceEvent | str:
    """The event on one line, or why the line is invalid."""
    try:
        doc = _decoder.decode(raw)
    except UnicodeDecodeError:
        return "not valid UTF-8"
    except msgspec.DecodeError as e:
        return f"not valid JSON ({e})"
    if not isinstance(doc, dict):
        return f"not a JSON object (a {_json_type(doc)})"
    event_id = _event_id(doc.get("id"))
    if isinstance(event_id, _Invalid):
        return event_id.reason
    category = doc.get("category")
    if not isinstance(category, str) or not category:
        return "category: " + ("missing" if category is None else "not a non-empty string")
    if not _utf8_encodable(category):
        return "category: contains a lone surrogate"
    value = _value(doc.get("value"))
    if isinstance(value, _Invalid):
        return value.reason
    occurred_at = _timestamp(doc.get("timestamp"))
    if isinstance(occurred_at, _Invalid):
        return occurred_at.reason
    return SourceEvent(event_id, category, value, occurred_at)


class _Invalid:
    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "number"


def _utf8_encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _event_id(value: object) -> str | _Invalid:
    if isinstance(value, str):
        if not value:
            return _Invalid("id: empty string")
        if not _utf8_encodable(value):
            return _Invalid("id: contains a lone surrogate")
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if value is None:
        return _Invalid("id: missing")
    return _Invalid(f"id: a {_json_type(value)}, not a string or integer")


def _value(value: object) -> Decimal | _Invalid:
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int) and not isinstance(value, bool):
        number = Decimal(value)
    elif value is None:
        return _Invalid("value: missing")
    else:
        return _Invalid(f"value: a {_json_type(value)}, not a number")
    if not number.is_finite():
        return _Invalid("value: not finite")
    if number and not MIN_EXPONENT <= number.adjusted() <= MAX_EXPONENT:
        return _Invalid(f"value: exponent out of range [{MIN_EXPONENT}, {MAX_EXPONENT}]")
    return number


def _timestamp(value: object) -> datetime | _Invalid | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is None:
                return parsed.replace(tzinfo=UTC)
            return parsed.astimezone(UTC)
        except (ValueError, OverflowError):
            return _Invalid(f"timestamp: not ISO 8601 ({value[:40]!r})")
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        return _Invalid(f"timestamp: a {_json_type(value)}, not ISO 8601 or epoch seconds")
    seconds = Decimal(value)
    if not seconds.is_finite() or not -62135596800 <= seconds < 253402300800:
        return _Invalid("timestamp: epoch seconds out of range")
    whole = math.floor(seconds)
    micros = int((seconds - whole) * 1_000_000)
    return EPOCH + timedelta(seconds=whole, microseconds=micros)
