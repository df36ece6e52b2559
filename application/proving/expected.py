"""An expected state from a file the user already has: CSV, TSV, JSON or JSON Lines.

The format is found from the content: ``{`` starts a JSON document (or JSON
Lines, when more than one value follows), ``[`` a JSON array of rows, and
anything else a table with a header line (TSV when the header has a tab, CSV
otherwise). A JSON document nested as the projection's canonical state (for
``category_totals``: ``{"categories": {NAME: {"count", "total"}}}``, the form
``rebuild --json`` prints) is read as it is; rows (a table, an array, JSON
Lines) name their key and value columns, mapped by ``Columns``.

Every total is read exactly from its text (``numbers.NumberFormat``); a row
that repeats a key with other values is an error naming both lines.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from eventfold.application.proving.keyed import key_text
from eventfold.application.proving.numbers import NumberError, NumberFormat
from eventfold.infra.errors import EventfoldError
from eventfold.infra.sourcefile import open_source
from eventfold.projections.base import Key, Projection, ShapeError, canonical_decimal

MAX_EXPECTED_BYTES = 256 << 20  # an expected file is read whole, up to this size


class ExpectedUnusableError(EventfoldError):
    """The expected state given cannot be used (exit code 2)."""


@dataclass(frozen=True)
class Columns:
    """Which columns of an expected file hold a row's key parts and measures: by
    default the projection's own names (``category``, ``count``, ``total``)."""

    keys: tuple[str, ...] | None = None
    count: str | None = None
    total: str | None = None

    def key_columns(self, projection: Projection[Any]) -> tuple[str, ...]:
        names = self.keys or projection.keys
        if len(names) != len(projection.keys):
            msg = (
                f"--key names {len(names)} column{'s' if len(names) != 1 else ''} but "
                f"{projection.name} has {len(projection.keys)} key parts "
                f"({', '.join(projection.keys)})"
            )
            raise ExpectedUnusableError(msg)
        return names

    def measure_column(self, measure: str) -> str:
        given = {"count": self.count, "total": self.total}.get(measure)
        return given or measure


@dataclass
class ExpectedRows:
    """The rows of an expected file, each key's values in canonical text."""

    path: str
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
) -> ExpectedRows:
    """The expected rows of ``path`` for ``projection``. ``ExpectedUnusableError`` names
    the file and the row and column (or line) of whatever cannot be used."""
    columns = columns or Columns()
    numbers = numbers or NumberFormat()
    text = _text(path)
    start = text.lstrip()[:1]
    reader = _Reader(path, projection, columns, numbers)
    try:
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
        raise ExpectedUnusableError(msg)
    return expected


def _text(path: str) -> str:
    try:
        with open_source(path) as source:
            data = source.stream.read(MAX_EXPECTED_BYTES + 1)
    except OSError as e:
        msg = f"{path}: cannot read the expected state ({e.strerror or e})"
        raise ExpectedUnusableError(msg) from None
    if len(data) > MAX_EXPECTED_BYTES:
        msg = f"{path}: larger than {MAX_EXPECTED_BYTES:,} bytes, the limit of an expected state"
        raise ExpectedUnusableError(msg)
    try:
        return data.decode("utf-8-sig")  # a byte order mark may lead
    except UnicodeDecodeError as e:
        msg = f"{path}: not UTF-8 text (byte offset {e.start:,})"
        raise ExpectedUnusableError(msg) from None


class _Reader:
    def __init__(
        self, path: str, projection: Projection[Any], columns: Columns, numbers: NumberFormat
    ) -> None:
        self.path = path
        self.projection = projection
        self.columns = columns
        self.numbers = numbers
        self.expected = ExpectedRows(path, "json")
        self.lines: dict[Key, str] = {}  # where each key was first given

    # -- JSON ---------------------------------------------------------------------------

    def json(self, text: str) -> None:
        try:
            doc = json.loads(text, parse_float=Decimal)
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
        root = self.projection.root
        if not self._row_like(doc):
            self.expected.format = "canonical"
            nested = root is None or (isinstance(doc, dict) and root in doc)
            self._canonical(doc if nested else {root: doc})  # an object by key, rootless
            return
        self.expected.format = "jsonl"  # one row, as a JSON Lines file of one line is
        self._row(doc, "line 1")

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
                row = json.loads(line, parse_float=Decimal)
            except json.JSONDecodeError as e:
                msg = f"{self.path} line {number:,}, column {e.colno}: not JSON ({e.msg})"
                raise ExpectedUnusableError(msg) from None
            self._row(row, f"line {number:,}")

    def _canonical(self, doc: Any) -> None:
        for key, value in self.projection.rows(doc).items():
            where = "/".join(key)
            self.expected.read += 1
            if self.projection.measures:
                if not isinstance(value, Mapping):
                    msg = f"{self.path}: {where}: not an object of {self._measure_names()}"
                    raise ExpectedUnusableError(msg)
                self._keep(key, self._measures(value, where, canonical=True), where)
            else:
                self._keep(key, value, where)

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
        wanted = list(self.columns.key_columns(self.projection))
        if not self.projection.measures:
            msg = (
                f"{self.path}: {self.projection.name} declares no measures to read from a "
                "table: give its canonical state as a JSON document"
            )
            raise ExpectedUnusableError(msg)
        wanted.append(self.columns.measure_column("total"))
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
        self._keep(tuple(parts), self._measures(row, where), where)

    def _measures(
        self, given: Mapping[str, Any], where: str, *, canonical: bool = False
    ) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for measure, kind in self.projection.measures.items():
            column = measure if canonical else self.columns.measure_column(measure)
            raw = given.get(column)
            if raw is None or (isinstance(raw, str) and not raw.strip()):
                if kind != "count":
                    msg = f"{self.path} {where}, column {column!r}: no value"
                    raise ExpectedUnusableError(msg)
                self.expected.without[measure] = self.expected.without.get(measure, 0) + 1
                values[measure] = None
                continue
            values[measure] = self._number(raw, kind, f"{where}, column {column!r}")
        return values

    def _number(self, raw: Any, kind: str, where: str) -> Any:
        if isinstance(raw, (bool, dict, list)):
            msg = f"{self.path} {where}: {raw!r} is not a number"
            raise ExpectedUnusableError(msg)
        try:
            value = raw if isinstance(raw, Decimal) else self.numbers.read(str(raw))
        except NumberError as e:
            raise ExpectedUnusableError(f"{self.path} {where}: {e}") from None
        if kind == "count":
            if value != value.to_integral_value() or value < 0:
                msg = f"{self.path} {where}: {raw} is not a count (a whole number, 0 or more)"
                raise ExpectedUnusableError(msg)
            return int(value)
        return canonical_decimal(value)

    def _keep(self, key: Key, values: Any, where: str) -> None:
        if isinstance(values, dict) and self._empty(values):
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
        counts = [values.get(m) for m, k in self.projection.measures.items() if k == "count"]
        return (
            bool(counts)
            and all(c == 0 for c in counts)
            and all(values.get(m) in (None, "0") for m, k in self.projection.measures.items())
        )

    def _measure_names(self) -> str:
        return ", ".join(repr(m) for m in self.projection.measures)
