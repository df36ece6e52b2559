"""An expected state from a file the user already has: CSV, TSV, JSON or JSON Lines.

The format is found from the content: ``{`` starts a JSON document (or JSON
Lines, when more than one value follows), ``[`` a JSON array of rows, and
anything else a table with a header line (TSV when the header has a tab, CSV
otherwise). A JSON document nested as the projection's canonical state (for
``category_totals``: ``{"categories": {NAME: {"count", "total"}}}``, the form
``rebuild --json`` prints) is read as it is; rows (a table, an array, JSON
Lines) name their key and value columns, mapped by ``Columns``.

Every total is read exactly from its text (``numbers.NumberFormat``; a JSON
number as plain text, never through a float); a key given twice with other
values is an error naming both places; a time key is read as an instant and
written as the projection writes its buckets.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from eventfold.application.proving.keyed import key_text
from eventfold.application.proving.numbers import JSONNumber, NumberError, NumberFormat
from eventfold.infra.errors import EventfoldError
from eventfold.infra.sourcefile import SourceError, open_source
from eventfold.projections.base import Key, Projection, ShapeError, canonical_decimal

MAX_EXPECTED_BYTES = 256 << 20  # an expected file is read whole, up to this size
NO_TIME = "none"  # the time key of events without a timestamp
PLAIN = NumberFormat()


class ExpectedUnusableError(EventfoldError):
    """The expected state given cannot be used (exit code 2)."""


@dataclass(frozen=True)
class Columns:
    """Which columns of an expected file hold a row's key parts and measures: by
    default the projection's own names (``category``; ``count``, ``total``).
    ``count`` names the column of the projection's count measure, ``total`` that of
    its decimal measure."""

    keys: tuple[str, ...] | None = None
    count: str | None = None
    total: str | None = None

    def key_columns(self, projection: Projection[Any]) -> tuple[str, ...]:
        names = self.keys or projection.keys
        if len(names) != len(projection.keys):
            parts = len(projection.keys)
            msg = (
                f"--key names {len(names)} column{'s' if len(names) != 1 else ''} but "
                f"{projection.name} has {parts} key part{'s' if parts != 1 else ''} "
                f"({', '.join(projection.keys)})"
            )
            raise ExpectedUnusableError(msg)
        return names

    def measure_column(self, measure: str, kind: str) -> str:
        given = self.count if kind == "count" else self.total
        return given or measure


@dataclass
class ExpectedRows:
    """The rows of an expected file, each key's values in canonical text."""

    path: str  # absolute, as reports name files
    format: str  # "csv", "tsv", "json", "jsonl" or "canonical" (a nested JSON document)
    rows: dict[Key, dict[str, Any] | Any] = field(default_factory=dict)
    read: int = 0  # rows read (repeats included)
    without: dict[str, int] = field(default_factory=dict)  # measure -> rows that lack it

    @property
    def complete(self) -> bool:
        """Whether every row gives every measure (only then is a checksum its own)."""
        return not any(self.without.values())


def read_expected(
    path: str,
    projection: Projection[Any],
    columns: Columns | None = None,
    numbers: NumberFormat | None = None,
    *,
    keep_empty: bool = False,
    noun: str = "an expected file",
) -> ExpectedRows:
    """The expected rows of ``path`` for ``projection``. ``ExpectedUnusableError`` names
    the file and the line and column (or member) of whatever cannot be used.

    A row that counts no event is left out, as the canonical state leaves it out;
    with ``keep_empty`` it is kept (a reconstruction's summary: such a row says its
    category had no event in the period). ``noun`` is what messages call the file.
    """
    columns = columns or Columns()
    text = _text(path, noun)
    start = text.lstrip()[:1]
    reader = _Reader(path, projection, columns, numbers or NumberFormat(), keep_empty)
    try:
        if not start:
            raise ExpectedUnusableError(f"{path}: empty: {noun} with nothing in it")
        if start in ("{", "["):
            reader.json(text)
        else:
            reader.table(text)
    except ShapeError as e:
        msg = f"{path}: not nested as {projection.name}'s canonical state ({e})"
        raise ExpectedUnusableError(msg) from None
    expected = reader.expected
    if not expected.rows:
        msg = f"{path}: no row with events in it: there is nothing to prove the store against"
        if keep_empty:
            msg = f"{path}: no row in it"
        raise ExpectedUnusableError(msg)
    return expected


def _text(path: str, noun: str) -> str:
    if path != "-" and os.path.isdir(path):
        raise ExpectedUnusableError(f"{path}: is a directory, not {noun}")
    try:
        with open_source(path) as source:
            chunks, size = [], 0
            while size <= MAX_EXPECTED_BYTES and (chunk := source.stream.read(1 << 20)):
                chunks.append(chunk)  # read to the end: compressed damage is known only there
                size += len(chunk)
            data = b"".join(chunks)
            damage = source.damage
    except SourceError as e:
        reason = str(e).removeprefix(f"{path}: ")
        msg = f"{path}: cannot be read as {noun} ({reason})"
        raise ExpectedUnusableError(msg) from None
    except OSError as e:
        msg = f"{path}: cannot read the expected state ({e.strerror or e})"
        raise ExpectedUnusableError(msg) from None
    if damage is not None:
        msg = f"{path}: {damage.describe()}: {noun} that cannot be read whole"
        raise ExpectedUnusableError(msg)
    if len(data) > MAX_EXPECTED_BYTES:
        msg = f"{path}: larger than {MAX_EXPECTED_BYTES:,} bytes, the limit of an expected state"
        raise ExpectedUnusableError(msg)
    try:
        return data.decode("utf-8-sig")  # a byte order mark may lead
    except UnicodeDecodeError as e:
        msg = f"{path}: not UTF-8 text (byte offset {e.start:,})"
        raise ExpectedUnusableError(msg) from None


class _Twice(ValueError):
    """A JSON object gives one member twice, with different values."""


def _members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members: dict[str, Any] = {}
    for name, value in pairs:
        if name in members and members[name] != value:
            raise _Twice(name)
        members[name] = value
    return members


def _loads(text: str) -> Any:
    return json.loads(
        text, parse_float=JSONNumber, parse_int=JSONNumber, object_pairs_hook=_members
    )


class _Reader:
    def __init__(
        self,
        path: str,
        projection: Projection[Any],
        columns: Columns,
        numbers: NumberFormat,
        keep_empty: bool = False,
    ) -> None:
        self.path = path
        self.keep_empty = keep_empty
        self.projection = projection
        self.columns = columns
        self.numbers = numbers
        self.expected = ExpectedRows(os.path.abspath(path) if path != "-" else path, "json")
        self.lines: dict[Key, str] = {}  # where each key was first given
        names = projection.keys
        self.clock = names.index(projection.time_key) if projection.time_key in names else None

    # -- JSON ---------------------------------------------------------------------------

    def json(self, text: str) -> None:
        try:
            doc = _loads(text)
        except _Twice as e:
            msg = f"{self.path}: the JSON member {str(e)!r} is given twice with different values"
            raise ExpectedUnusableError(msg) from None
        except json.JSONDecodeError as e:
            if e.msg == "Extra data" and text.lstrip().startswith("{"):
                self.expected.format = "jsonl"
                self._json_lines(text)
                return
            msg = f"{self.path} line {e.lineno}, column {e.colno}: not JSON ({e.msg})"
            raise ExpectedUnusableError(msg) from None
        if isinstance(doc, list):
            for number, row in enumerate(doc, 1):
                self._row(row, f"row {number:,}")
            return
        self._refuse_another_projection(doc)
        if not self._row_like(doc):
            root = self.projection.root
            self.expected.format = "canonical"
            nested = root is None or (isinstance(doc, dict) and root in doc)
            self._canonical(doc if nested else {root: doc})  # an object by key, rootless
            return
        self.expected.format = "jsonl"  # one row, as a JSON Lines file of one line is
        self._row(doc, "line 1")

    def _refuse_another_projection(self, doc: Any) -> None:
        """A ``rebuild --json`` document of another projection is named as such."""
        named = doc.get("projection") if isinstance(doc, dict) else None
        if isinstance(named, str) and named != self.projection.name:
            msg = (
                f"{self.path}: a document of the projection {named}, not "
                f"{self.projection.name} (verify --projection {named} proves it)"
            )
            raise ExpectedUnusableError(msg)

    def _row_like(self, doc: Any) -> bool:
        """Whether a JSON object is one row (it has the key columns) rather than a
        document nested by key."""
        names = self.columns.key_columns(self.projection)
        return isinstance(doc, dict) and all(n in doc for n in names)

    def _json_lines(self, text: str) -> None:
        for number, line in enumerate(io.StringIO(text), 1):
            if not line.strip():
                continue
            try:
                row = _loads(line)
            except _Twice as e:
                msg = f"{self.path} line {number:,}: the member {str(e)!r} is given twice"
                raise ExpectedUnusableError(msg) from None
            except json.JSONDecodeError as e:
                msg = f"{self.path} line {number:,}, column {e.colno}: not JSON ({e.msg})"
                raise ExpectedUnusableError(msg) from None
            self._row(row, f"line {number:,}")

    def _canonical(self, doc: Any) -> None:
        root = self.projection.root
        for key, value in self.projection.rows(doc).items():
            where = "/".join(k for k in ((root or ""), *key) if k)
            self.expected.read += 1
            key = self._key(key, where)
            if self.projection.measures:
                if not isinstance(value, Mapping):
                    msg = f"{self.path}: {where}: not an object of {self._measure_names()}"
                    raise ExpectedUnusableError(msg)
                self._keep(key, self._measures(value, where, canonical=True), where)
            else:
                self._keep(key, _plain_json(value), where)

    # -- tables -------------------------------------------------------------------------

    def table(self, text: str) -> None:
        header = text.split("\n", 1)[0]
        tab = "\t" in header
        self.expected.format = "tsv" if tab else "csv"
        reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if tab else ",")
        names: list[str] | None = None
        try:
            for cells in reader:
                if names is None:
                    names = [c.strip() for c in cells]
                    self._check_header(names)
                    continue
                if not any(c.strip() for c in cells):
                    continue
                if len(cells) != len(names):
                    msg = (
                        f"{self.path} line {reader.line_num:,}: {len(cells)} "
                        f"columns, the header has {len(names)}"
                    )
                    raise ExpectedUnusableError(msg)
                self._row(dict(zip(names, cells, strict=True)), f"line {reader.line_num:,}")
        except csv.Error as e:
            msg = f"{self.path} line {reader.line_num:,}: not {self.expected.format.upper()} ({e})"
            raise ExpectedUnusableError(msg) from None

    def _check_header(self, names: list[str]) -> None:
        if not self.projection.measures:
            msg = (
                f"{self.path}: {self.projection.name} declares no measures to read from a "
                "table: give its canonical state as a JSON document"
            )
            raise ExpectedUnusableError(msg)
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            msg = f"{self.path} line 1: the column {twice[0]!r} is named twice in the header"
            raise ExpectedUnusableError(msg)
        wanted = list(self.columns.key_columns(self.projection))
        wanted += [
            self.columns.measure_column(m, k)
            for m, k in self.projection.measures.items()
            if k != "count"
        ]
        for name in wanted:
            if name not in names:
                msg = (
                    f"{self.path} line 1: no column {name!r} (the header has "
                    f"{', '.join(repr(n) for n in names)}); "
                    "--key, --count-col and --total-col name the columns to read"
                )
                raise ExpectedUnusableError(msg)

    # -- rows ---------------------------------------------------------------------------

    def _row(self, row: Any, where: str) -> None:
        self.expected.read += 1
        if not isinstance(row, Mapping):
            msg = f"{self.path} {where}: not an object with named columns"
            raise ExpectedUnusableError(msg)
        if not self.projection.measures:
            msg = (
                f"{self.path}: {self.projection.name} declares no measures to read from "
                "rows: give its canonical state as a JSON document"
            )
            raise ExpectedUnusableError(msg)
        parts = []
        for name in self.columns.key_columns(self.projection):
            part = row.get(name)
            if part is None or isinstance(part, (dict, list)) or str(part).strip() == "":
                msg = f"{self.path} {where}, column {name!r}: no key"
                raise ExpectedUnusableError(msg)
            parts.append(str(part))
        key = self._key(tuple(parts), where)
        self._keep(key, self._measures(row, where), where)

    def _key(self, key: Key, where: str) -> Key:
        """The key, its time part written as the projection writes its buckets."""
        if self.clock is None:
            return key
        name = self.columns.key_columns(self.projection)[self.clock]
        bucket = _bucket(key[self.clock])
        if bucket is None:
            msg = (
                f"{self.path} {where}, column {name!r}: {key[self.clock]!r} is not the start "
                "of an hour (2026-11-30T14:00:00Z, any offset) or none"
            )
            raise ExpectedUnusableError(msg)
        return (*key[: self.clock], bucket, *key[self.clock + 1 :])

    def _measures(
        self, given: Mapping[str, Any], where: str, *, canonical: bool = False
    ) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for measure, kind in self.projection.measures.items():
            column = measure if canonical else self.columns.measure_column(measure, kind)
            raw = given.get(column)
            place = f"{where}, member {column!r}" if canonical else f"{where}, column {column!r}"
            if raw is None or (isinstance(raw, str) and not raw.strip()):
                if kind != "count":
                    raise ExpectedUnusableError(f"{self.path} {place}: no value")
                self.expected.without[measure] = self.expected.without.get(measure, 0) + 1
                values[measure] = None
                continue
            values[measure] = self._number(raw, kind, place)
        return values

    def _number(self, raw: Any, kind: str, where: str) -> Any:
        if not isinstance(raw, str):  # true, false, an object, an array
            shown = json.dumps(raw, default=str)
            raise ExpectedUnusableError(f"{self.path} {where}: {shown} is not a number")
        try:
            value = (PLAIN if isinstance(raw, JSONNumber) else self.numbers).read(raw)
        except NumberError as e:
            raise ExpectedUnusableError(f"{self.path} {where}: {e}") from None
        if kind == "count":
            if value != value.to_integral_value() or value < 0:
                msg = f"{self.path} {where}: {raw} is not a count (a whole number, 0 or more)"
                raise ExpectedUnusableError(msg)
            return int(value)
        return canonical_decimal(value)

    def _keep(self, key: Key, values: Any, where: str) -> None:
        if not self.keep_empty and isinstance(values, dict) and self._empty(values):
            return  # a row with no events, as the canonical state leaves it out
        before = self.expected.rows.get(key)
        if before is None:
            self.expected.rows[key] = values
            self.lines[key] = where
            return
        if before != values:
            msg = (
                f"{self.path}: {key_text(self.projection.keys, key)} is given twice with "
                f"different values: {self.lines[key]} and {where}"
            )
            raise ExpectedUnusableError(msg)

    def _empty(self, values: dict[str, Any]) -> bool:
        """Whether a row counts no event: its counts are 0 and its decimals 0."""
        measures = self.projection.measures
        counts = [values.get(m) for m, k in measures.items() if k == "count"]
        decimals = [values.get(m) for m, k in measures.items() if k != "count"]
        return bool(counts) and all(c == 0 for c in counts) and all(d == "0" for d in decimals)

    def _measure_names(self) -> str:
        return ", ".join(repr(m) for m in self.projection.measures)


def _bucket(text: str) -> str | None:
    """An hour's start as ``hourly_totals`` writes it (UTC, ``+00:00``), or None when
    ``text`` is not one; ``none`` stays."""
    if text.strip() == NO_TIME:
        return NO_TIME
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    if moment.minute or moment.second or moment.microsecond:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:00:00+00:00")


def _plain_json(value: Any) -> Any:
    """A JSON value with its numbers as numbers again (exact: ``Decimal`` or ``int``)."""
    if isinstance(value, JSONNumber):
        try:
            return Decimal(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:  # an integer beyond what int() reads from text
            return Decimal(value)
    if isinstance(value, dict):
        return {k: _plain_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_json(v) for v in value]
    return value
