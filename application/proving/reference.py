"""The expected state of sources, by the documented rules, on a path of its own.

``verify`` compares the store with what this module computes. The sources are
read in the order given (as ingest reads them: ``application/sources.py``
resolves the list); the first valid occurrence of an id, in that order, counts.
Positions in a compressed file are in its uncompressed bytes. It
shares no parsing or folding code with ingest or the projections (it uses the
standard library's ``json``, not ``msgspec``, and its own checks of the
README's rules), so one bug cannot hide on both sides of the comparison.
"""

from __future__ import annotations

import io
import json
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal, localcontext
from typing import Any, BinaryIO

from eventfold.application.progress import BYTES, READING_SOURCE, Progress, tell
from eventfold.infra.compression import Damage, LineAlignedReader, compression_of_file
from eventfold.infra.lines import MAX_LINE_BYTES
from eventfold.infra.sourcefile import SourceFile, open_source, source_name

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EXPONENTS = range(-6143, 6145)
EPOCH_RANGE = (-62135596800, 253402300800)
PROGRESS_LINES = 4096  # lines read between two reports of progress
READ_CHUNK = 1 << 16  # bytes read at a time from a compressed source


@dataclass(frozen=True)
class SourceRecord:
    """The first valid occurrence of an id: its content and where it is (its file, the
    ``file``-th source read, named ``source``; its line and uncompressed offset)."""

    category: str
    value: Decimal
    occurred_at: datetime | None
    line: int
    offset: int
    length: int  # bytes of the line, without its line ending
    source: str = "-"
    file: int = 0


@dataclass
class FileFigures:
    """What one source file held: lines (non-blank), valid events (first occurrences and
    repeats), invalid lines, repeats (ids seen before, in it or an earlier file), its
    compression (or None) and where its compressed data was damaged (or None)."""

    source: str
    lines: int = 0
    valid: int = 0
    invalid: int = 0
    repeats: int = 0
    compression: str | None = None
    damage: Damage | None = None

    def to_json(self) -> dict[str, Any]:
        """A ``files`` row of ``verify --json``."""
        keys = ("source", "lines", "valid", "invalid", "repeats", "compression")
        return {key: getattr(self, key) for key in keys}


@dataclass
class ExpectedState:
    """Per-category totals of the sources' first valid occurrences, those records (in
    reading order: file, then line), and the figures of each file."""

    totals: dict[str, list[Any]] = field(default_factory=dict)  # name -> [count, total]
    records: dict[str, SourceRecord] = field(default_factory=dict)
    lines: int = 0
    invalid: int = 0
    repeats: int = 0
    files: list[FileFigures] = field(default_factory=list)

    @property
    def sources(self) -> list[str]:
        """The names of the files read, in reading order."""
        return [f.source for f in self.files]

    @property
    def damaged(self) -> list[FileFigures]:
        """The compressed files whose data could not be read whole."""
        return [f for f in self.files if f.damage is not None]

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
    """``expected_from_sources`` of one file."""
    return expected_from_sources([path], max_line, progress)


def expected_from_sources(
    paths: Sequence[str],
    max_line: int = MAX_LINE_BYTES,
    progress: Progress | None = None,
    names: Sequence[str] | None = None,
) -> ExpectedState:
    """Read ``paths`` (JSON Lines, maybe compressed), in order, by the rules; the first
    valid occurrence of an id, in that order, counts.

    Streams each file; memory grows with the number of distinct ids (one record each),
    never with the length of a line: a line over ``max_line`` bytes is invalid.
    ``names`` are the files' names in records and figures (default: ``source_name``).
    A compressed file cut short or corrupt is read as far as it can be and its
    ``FileFigures.damage`` set: the caller decides (``verify`` refuses it).
    ``progress`` is told the bytes read over all files (of their total size when
    every one is an uncompressed regular file, else of an unknown total).
    """
    state = ExpectedState()
    names = [source_name(p) for p in paths] if names is None else names
    sizes = [_plain_size(p) for p in paths]
    total = None if None in sizes else sum(s or 0 for s in sizes)
    done = 0
    with localcontext() as ctx:
        ctx.prec, ctx.Emax, ctx.Emin = 10**6, 10**6, -(10**6)
        for index, (path, name) in enumerate(zip(paths, names, strict=True)):
            with open_source(path) as source:
                figures = FileFigures(name, compression=source.compression)
                state.files.append(figures)
                done = _read(source, state, figures, index, max_line, progress, done, total)
                figures.damage = source.damage
    tell(progress, READING_SOURCE, done, total and max(total, done), BYTES)
    return state


def _plain_size(path: str) -> int | None:
    """The size of an uncompressed regular file (its bytes are its lines), else None
    (standard input, a FIFO, a compressed file: their uncompressed size is not known)."""
    try:
        if path == "-" or not stat.S_ISREG(os.stat(path).st_mode):
            return None
        return None if compression_of_file(path) else os.stat(path).st_size
    except OSError:
        return None  # open_source says why, when it is read


def _read(
    source: SourceFile,
    state: ExpectedState,
    figures: FileFigures,
    index: int,
    max_line: int,
    progress: Progress | None,
    done: int,
    total: int | None,
) -> int:
    """Read one open source into ``state``; the bytes read over all files so far."""
    name = figures.source
    offset = _past_byte_order_mark(source.stream)
    for number, (raw, length, terminated) in enumerate(_lines(source.stream, max_line), 1):
        start, offset = offset, offset + length + terminated
        if number % PROGRESS_LINES == 0:
            tell(
                progress, READING_SOURCE, done + offset, total and max(total, done + offset), BYTES
            )
        if raw is not None and not raw.strip(b" \t\r"):
            continue
        doc = None if raw is None else _object(raw)
        if not terminated and not isinstance(doc, dict):
            break  # pending: the last line is not yet a whole object
        state.lines += 1
        figures.lines += 1
        event = _valid(doc)
        if event is None:
            state.invalid += 1
            figures.invalid += 1
            continue
        figures.valid += 1
        event_id, category, value, when = event
        if event_id in state.records:
            state.repeats += 1
            figures.repeats += 1
            continue
        record = SourceRecord(category, value, when, number, start, length, name, index)
        state.records[event_id] = record
        entry = state.totals.setdefault(category, [0, Decimal(0)])
        entry[0] += 1
        entry[1] += value
    return done + offset


def _past_byte_order_mark(stream: BinaryIO) -> int:
    """Read past a UTF-8 byte order mark at the start of a source: its length, or 0."""
    assert isinstance(stream, io.BufferedReader | LineAlignedReader)  # as ``open_source`` opens
    if stream.peek(3)[:3] != "\ufeff".encode():
        return 0
    return len(stream.read(3))


class _LineReader:
    """``readline(limit)`` over a stream that has only ``read`` (a compressed source's)."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._held = b""
        self._at = 0

    def readline(self, limit: int) -> bytes:
        while True:
            end = self._held.find(b"\n", self._at, self._at + limit)
            if end >= 0 or len(self._held) - self._at >= limit:
                stop = end + 1 if end >= 0 else self._at + limit
                line, self._at = self._held[self._at : stop], stop
                return line
            more = self._stream.read(READ_CHUNK)
            if not more:
                line, self._held, self._at = self._held[self._at :], b"", 0
                return line
            self._held = self._held[self._at :] + more
            self._at = 0


def _lines(stream: BinaryIO, max_line: int) -> Iterator[tuple[bytes | None, int, bool]]:
    """(bytes or None when over ``max_line``, length without ``\\n``, terminated) per line."""
    reader = stream if isinstance(stream, io.BufferedReader) else _LineReader(stream)
    while line := reader.readline(max_line + 1):
        if line.endswith(b"\n"):
            yield line[:-1], len(line) - 1, True
        elif len(line) <= max_line:
            yield line, len(line), False  # the last line, unterminated
        else:  # too long: read past it, keeping only its length
            length = len(line)
            while (more := reader.readline(1 << 20)) and not more.endswith(b"\n"):
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
