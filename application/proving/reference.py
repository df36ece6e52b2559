"""The expected state of a source, by the documented rules, on a path of its own.

``verify --source`` compares the store with what this module computes. It
shares no parsing or folding code with ingest or the projections (it uses the
standard library's ``json``, not ``msgspec``, and its own checks of the
README's rules), so one bug cannot hide on both sides of the comparison.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal, localcontext
from typing import Any, BinaryIO

from eventfold.application.progress import BYTES, READING_SOURCE, Progress, tell
from eventfold.infra.lines import MAX_LINE_BYTES
from eventfold.infra.sourcefile import open_source

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EXPONENTS = range(-6143, 6145)
EPOCH_RANGE = (-62135596800, 253402300800)
PROGRESS_LINES = 4096  # lines read between two reports of progress


@dataclass(frozen=True)
class SourceRecord:
    """The first valid occurrence of an id: its content and where it is."""

    category: str
    value: Decimal
    occurred_at: datetime | None
    line: int
    offset: int
    length: int  # bytes of the line, without its line ending


@dataclass
class ExpectedState:
    """Per-category totals of a source's first valid occurrences, and those records."""

    totals: dict[str, list[Any]] = field(default_factory=dict)  # name -> [count, total]
    records: dict[str, SourceRecord] = field(default_factory=dict)
    lines: int = 0
    invalid: int = 0
    repeats: int = 0

    def canonical(self) -> dict[str, Any]:
        from eventfold.projections.base import canonical_decimal

        return {
            "categories": {
                name: {"count": n, "total": canonical_decimal(t)}
                for name, (n, t) in self.totals.items()
                if n
            }
        }


def expected_from_source(
    path: str, max_line: int = MAX_LINE_BYTES, progress: Progress | None = None
) -> ExpectedState:
    """Read ``path`` (JSON Lines) by the rules; the first valid occurrence of an id counts.

    Streams the file; memory grows with the number of distinct ids (one record each),
    never with the length of a line: a line over ``max_line`` bytes is invalid.
    ``progress`` is told the bytes read (of the file's size, when it is a file).
    """
    state = ExpectedState()
    with open_source(path) as source, localcontext() as ctx:
        ctx.prec, ctx.Emax, ctx.Emin = 10**6, 10**6, -(10**6)
        offset = _past_byte_order_mark(source.stream)
        size = os.fstat(source.fd).st_size if source.fd is not None else None
        for number, (raw, length, terminated) in enumerate(_lines(source.stream, max_line), 1):
            start, offset = offset, offset + length + terminated
            if number % PROGRESS_LINES == 0:
                tell(progress, READING_SOURCE, offset, size and max(size, offset), BYTES)
            if raw is not None and not raw.strip(b" \t\r"):
                continue
            doc = None if raw is None else _object(raw)
            if not terminated and not isinstance(doc, dict):
                break  # pending: the last line is not yet a whole object
            state.lines += 1
            event = _valid(doc)
            if event is None:
                state.invalid += 1
                continue
            event_id, category, value, when = event
            if event_id in state.records:
                state.repeats += 1
                continue
            state.records[event_id] = SourceRecord(category, value, when, number, start, length)
            entry = state.totals.setdefault(category, [0, Decimal(0)])
            entry[0] += 1
            entry[1] += value
        tell(progress, READING_SOURCE, offset, size and max(size, offset), BYTES)
    return state


def _past_byte_order_mark(stream: BinaryIO) -> int:
    """Read past a UTF-8 byte order mark at the start of a source: its length, or 0."""
    assert isinstance(stream, io.BufferedReader)  # as ``open_source`` opens every source
    if stream.peek(3)[:3] != "\ufeff".encode():
        return 0
    return len(stream.read(3))


def _lines(stream: BinaryIO, max_line: int) -> Iterator[tuple[bytes | None, int, bool]]:
    """(bytes or None when over ``max_line``, length without ``\\n``, terminated) per line."""
    while line := stream.readline(max_line + 1):
        if line.endswith(b"\n"):
            yield line[:-1], len(line) - 1, True
        elif len(line) <= max_line:
            yield line, len(line), False  # the last line, unterminated
        else:  # too long: read past it, keeping only its length
            length = len(line)
            while (more := stream.readline(1 << 20)) and not more.endswith(b"\n"):
                length += len(more)
            if more:
                yield None, length + len(more) - 1, True
            else:
                yield None, length, False


class _Wide(str):
    """An integer literal longer than Python's int reads from text (4,300 digits)."""


def _integer(text: str) -> int | _Wide:
    return int(text) if len(text) < 4000 else _Wide(text)


def _object(raw: bytes) -> Any:
    try:
        return json.loads(
            raw.decode("utf-8"),
            parse_float=Decimal,
            parse_int=_integer,
            parse_constant=_no_constant,
        )
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def _no_constant(name: str) -> Any:
    raise ValueError(name)


def _valid(doc: Any) -> tuple[str, str, Decimal, datetime | None] | None:
    if not isinstance(doc, dict):
        return None
    raw_id, category, value = doc.get("id"), doc.get("category"), doc.get("value")
    if type(raw_id) is int:
        event_id = str(raw_id)
    elif type(raw_id) is _Wide:
        event_id = "0" if raw_id == "-0" else str.__str__(raw_id)
    elif type(raw_id) is str and raw_id and _encodable(raw_id):
        event_id = raw_id
    else:
        return None
    if type(category) is not str or not category or not _encodable(category):
        return None
    if type(value) is int or type(value) is _Wide:
        value = Decimal(value)
    if type(value) is not Decimal or not value.is_finite():
        return None
    if value.adjusted() not in EXPONENTS:  # zero too: 0E-999999999 would cost a sum dearly
        return None
    when = _instant(doc.get("timestamp"))
    if when is False:
        return None
    return event_id, category, value, when  # type: ignore[return-value]


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _instant(stamp: Any) -> datetime | bool | None:
    """The UTC instant of a timestamp field; None when absent; False when invalid."""
    if stamp is None:
        return None
    if type(stamp) is str:
        try:
            parsed = datetime.fromisoformat(stamp)
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
        except (ValueError, OverflowError):
            return False
    if type(stamp) not in (int, Decimal, _Wide):
        return False
    seconds = Decimal(stamp)
    if not seconds.is_finite() or not EPOCH_RANGE[0] <= seconds < EPOCH_RANGE[1]:
        return False
    whole = int(seconds.to_integral_value(rounding=ROUND_FLOOR))
    return EPOCH + timedelta(seconds=whole, microseconds=int((seconds - whole) * 1_000_000))
