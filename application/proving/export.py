"""Every difference ``verify`` finds, written as it is found (``--export FILE``).

CSV (``.csv``) or JSON Lines (``.jsonl``, ``.ndjson``), by the file's suffix.
A row per differing key (``kind`` ``key``: its key parts, the expected and
actual values and the delta of each measure), then, with sources, a row per
missing, extra, conflicting or duplicated event (``kind`` ``event``: its id,
category, value, file, line and offset; a conflicting event also its stored
side, under ``store_``). The file is written beside its final name and renamed
into place when the comparison ends, so it never holds half a diff.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
from collections.abc import Mapping
from typing import IO, Any

from eventfold.application.proving.keyed import Difference
from eventfold.infra.errors import MissingArgumentError, OutputWriteError

SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
EVENT_COLUMNS = ("id", "category", "value", "occurred_at", "source", "line", "offset")
STORE_COLUMNS = ("notification_id", *(f"store_{c}" for c in EVENT_COLUMNS[1:]))


def export_format(path: str) -> str:
    """``csv`` or ``jsonl`` for ``path``; a usage error (exit 2) for another suffix."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in SUFFIXES:
        msg = f"{path}: --export writes .csv, .jsonl or .ndjson files, not {suffix or 'no suffix'}"
        raise MissingArgumentError(msg)
    return SUFFIXES[suffix]


class Export:
    """A file of every difference, open from ``__init__`` until ``finish`` or ``abandon``."""

    def __init__(self, path: str, key_names: tuple[str, ...], measures: Mapping[str, str]) -> None:
        self.path = os.path.abspath(path)
        self.format = export_format(path)
        self.keys = 0  # key rows written
        self.events = 0  # event rows written
        self._partial = f"{self.path}.partial"
        self._key_names = key_names
        self._measures = tuple(measures)
        try:
            self._file: IO[str] = open(self._partial, "w", encoding="utf-8", newline="")  # noqa: SIM115
        except OSError as e:
            raise OutputWriteError(f"{path}: cannot write the export ({e.strerror or e})") from None
        self._csv: Any = None
        if self.format == "csv":
            self._csv = csv.writer(self._file, lineterminator="\n")
            self._columns = ["kind", "status", *key_names]
            for side in ("expected", "actual", "delta"):
                self._columns += [f"{side}_{m}" for m in self._measures] or [side]
            self._columns += [c for c in (*EVENT_COLUMNS, *STORE_COLUMNS) if c not in key_names]
            self._write_csv(self._columns)

    @property
    def rows(self) -> int:
        return self.keys + self.events

    def key(self, difference: Difference) -> None:
        """Write one differing key."""
        self.keys += 1
        doc = difference.to_json()
        if self._csv is None:
            self._write_json({"kind": "key", **{k: doc[k] for k in doc if k != "category"}})
            return
        row: dict[str, Any] = {"kind": "key", "status": doc["status"], **doc["key"]}
        for side in ("expected", "actual", "delta"):
            values = doc[side]
            if not self._measures:
                row[side] = "" if values is None else json.dumps(values, sort_keys=True)
                continue
            for m in self._measures:
                row[f"{side}_{m}"] = "" if values is None else values.get(m)
        self._write_csv([_cell(row.get(c)) for c in self._columns])

    def event(self, status: str, row: Mapping[str, Any]) -> None:
        """Write one event of the event diff (``missing``, ``extra``, ``conflicting``,
        ``duplicated``), as the report's event lists hold it."""
        self.events += 1
        flat = _flat_event(row)
        if self._csv is None:
            self._write_json({"kind": "event", "status": status, **flat})
            return
        flat |= {"kind": "event", "status": status}
        self._write_csv([_cell(flat.get(c)) for c in self._columns])

    def finish(self) -> None:
        """Close the file and move it to its name."""
        try:
            self._file.close()
            os.replace(self._partial, self.path)
        except OSError as e:
            self.abandon()
            raise OutputWriteError(
                f"{self.path}: cannot write the export ({e.strerror or e})"
            ) from None

    def abandon(self) -> None:
        """Close and remove the partial file (the comparison did not end)."""
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._partial)

    def _write_csv(self, cells: list[Any]) -> None:
        try:
            self._csv.writerow(cells)
        except OSError as e:
            raise OutputWriteError(
                f"{self.path}: cannot write the export ({e.strerror or e})"
            ) from None

    def _write_json(self, doc: dict[str, Any]) -> None:
        try:
            self._file.write(json.dumps(doc, ensure_ascii=False) + "\n")
        except OSError as e:
            raise OutputWriteError(
                f"{self.path}: cannot write the export ({e.strerror or e})"
            ) from None


def _flat_event(row: Mapping[str, Any]) -> dict[str, Any]:
    """An event row of the event lists with a conflicting event's two sides flattened:
    the source's side as the event, the store's under ``store_``."""
    if "store" not in row:
        return {k: row.get(k) for k in (*EVENT_COLUMNS, "notification_id") if k in row}
    source, store = row["source"], row["store"]
    flat = {"id": row["id"], **{k: source.get(k) for k in EVENT_COLUMNS[1:] if k in source}}
    flat["notification_id"] = store.get("notification_id")
    for k in EVENT_COLUMNS[1:]:
        if k in store:
            flat[f"store_{k}"] = store[k]
    return flat


def _cell(value: Any) -> Any:
    return "" if value is None else value
