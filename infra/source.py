"""Reading JSON Lines sources by the documented rules (README, "Source format").

``read_lines`` splits a byte stream into physical lines with their line number
and byte offset; ``parse_event`` turns one line into a ``SourceEvent`` or the
reason it is invalid. Neither ever raises for bad input.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, BinaryIO, NamedTuple

import msgspec

READ_CHUNK = 1 << 20
# Accepted values have an adjusted exponent in this range (IEEE decimal128's),
# so that exact sums stay a reasonable size whatever the input.
MIN_EXPONENT, MAX_EXPONENT = -6143, 6144
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NOT_UTF8, NOT_JSON, NOT_OBJECT = "not valid UTF-8", "not valid JSON", "not a JSON object"

_decoder = msgspec.json.Decoder(float_hook=Decimal)


class SourceEvent(NamedTuple):
    """One valid source event. ``occurred_at`` is UTC, or None when not given.

    ``occurred_iso`` is ``occurred_at.isoformat()`` (computed once, cheaply
    for the common shapes): the form the store writes.
    """

    event_id: str
    category: str
    value: Decimal
    occurred_at: datetime | None
    occurred_iso: str | None = None

    def same_content(self, other: SourceEvent) -> bool:
        """Same category, numerically equal value and the same instant (or neither has one)."""
        return (
            self.category == other.category
            and self.value == other.value
            and self.occurred_iso == other.occurred_iso
        )


# ``SourceEvent(...)`` runs a Python ``__new__``; this is the same tuple, made in C.
_new: Callable[[type[SourceEvent], tuple[Any, ...]], SourceEvent] = tuple.__new__


class Line(NamedTuple):
    """A physical line: 1-based number, byte offset, bytes without the line ending."""

    number: int
    offset: int
    raw: bytes
    terminated: bool

    @property
    def end(self) -> int:
        """Offset just after this line (and its ``\\n`` when terminated)."""
        return self.offset + len(self.raw) + (1 if self.terminated else 0)


def line_blocks(stream: BinaryIO) -> Iterator[tuple[list[bytes], bool]]:
    """The lines of ``stream`` (without ``\\n``) a block per read, and whether they end in one.

    Every block is terminated lines, but the last: ``([tail], False)`` when the
    stream ends without ``\\n``. A trailing ``\\r`` stays (JSON treats it as whitespace).
    """
    pending = b""
    while chunk := stream.read(READ_CHUNK):
        lines = (pending + chunk if pending else chunk).split(b"\n")
        pending = lines.pop()
        if lines:
            yield lines, True
    if pending:
        yield [pending], False


def read_lines(stream: BinaryIO, offset: int = 0, number: int = 0) -> Iterator[Line]:
    """The lines of ``stream`` read from ``offset`` (after line ``number``).

    The last line is yielded with ``terminated=False`` when the stream ends without ``\\n``.
    """
    for lines, terminated in line_blocks(stream):
        for raw in lines:
            number += 1
            yield Line(number, offset, raw, terminated)
            offset += len(raw) + terminated


def is_whole_object(parsed: SourceEvent | str) -> bool:
    """Whether a line parsed to a JSON object (valid by the rules or not).

    An unterminated last line that is not yet a whole object may still be
    being written: it is left pending rather than quarantined.
    """
    return isinstance(parsed, SourceEvent) or not parsed.startswith(
        (NOT_JSON, NOT_UTF8, NOT_OBJECT)
    )


def is_blank(raw: bytes) -> bool:
    return not raw.strip(b" \t\r")


def parse_event(raw: bytes) -> SourceEvent | str:
    """The event on one line, or why the line is invalid.

    The decoder rejects invalid UTF-8, lone surrogate escapes, ``NaN`` and
    ``Infinity``; numbers with a fraction or exponent arrive as exact decimals.
    """
    try:
        doc = _decoder.decode(raw)
    except UnicodeDecodeError:
        return NOT_UTF8
    except msgspec.DecodeError as e:
        return f"{NOT_JSON} ({e})"
    if type(doc) is not dict:
        return f"{NOT_OBJECT} (a {_json_type(doc)})"
    event_id = doc.get("id")
    if type(event_id) is str:
        if not event_id:
            return "id: empty string"
    elif type(event_id) is int:
        event_id = str(event_id)
    elif event_id is None:
        return "id: missing"
    else:
        return f"id: a {_json_type(event_id)}, not a string or integer"
    category = doc.get("category")
    if type(category) is not str or not category:
        return "category: " + ("missing" if category is None else "not a non-empty string")
    value = doc.get("value")
    if type(value) is not Decimal:
        if type(value) is not int:
            if value is None:
                return "value: missing"
            return f"value: a {_json_type(value)}, not a number"
        value = Decimal(value)
    if value and not MIN_EXPONENT <= value.adjusted() <= MAX_EXPONENT:
        return f"value: exponent out of range [{MIN_EXPONENT}, {MAX_EXPONENT}]"
    stamp = doc.get("timestamp")
    if stamp is None:
        return _new(SourceEvent, (event_id, category, value, None, None))
    if type(stamp) is str and len(stamp) == 20 and stamp[4::3] == "--T::Z":
        # The usual shape, YYYY-MM-DDTHH:MM:SSZ: its isoformat() is read off the text.
        try:
            usual = datetime.fromisoformat(stamp)
        except ValueError:
            pass  # not a real date or time: ``_timestamp`` says why
        else:
            iso = stamp[:19] + "+00:00"
            return _new(SourceEvent, (event_id, category, value, usual, iso))
    occurred_at = _timestamp(stamp)
    if type(occurred_at) is str:
        return occurred_at
    assert isinstance(occurred_at, datetime)
    return _new(SourceEvent, (event_id, category, value, occurred_at, occurred_at.isoformat()))


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


def _timestamp(value: object) -> datetime | str:
    """The instant of a timestamp field (UTC), or why it is invalid."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is None:
                return parsed.replace(tzinfo=UTC)
            return parsed.astimezone(UTC)
        except (ValueError, OverflowError):
            return (f"timestamp: not ISO 8601 ({value[:40]!r})")
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        return (f"timestamp: a {_json_type(value)}, not ISO 8601 or epoch seconds")
    seconds = Decimal(value)
    if not seconds.is_finite() or not -62135596800 <= seconds < 253402300800:
        return ("timestamp: epoch seconds out of range")
    whole = math.floor(seconds)
    micros = int((seconds - whole) * 1_000_000)
    return EPOCH + timedelta(seconds=whole, microseconds=micros)
