"""Verify: catch the projection up, compare it with an expected state, say what differs.

The expected state comes from sources (``reference.py``, by the ingest rules
on a path of its own, over files read in order), from a document shaped like
``rebuild --json``, or as a bare checksum. With sources, the store's recorded
events are compared with the sources' first occurrences by id: missing, extra
and conflicting events, each named by its file and line.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from eventfold.application.app import Eventfold
from eventfold.application.progress import COMPARING, NOTIFICATIONS, Progress, tell
from eventfold.application.projecting import ProjectionReport, Projector
from eventfold.application.proving.reference import (
    ExpectedState,
    FileFigures,
    expected_from_sources,
)
from eventfold.application.recorded import recorded_facts
from eventfold.domain.model import EXACT
from eventfold.infra.errors import EventfoldError
from eventfold.infra.lines import MAX_LINE_BYTES
from eventfold.infra.sourcefile import open_source, source_name
from eventfold.projections.base import RecordedFact, canonical_decimal, state_checksum
from eventfold.projections.builtin import CategoryTotals

SAMPLES = 20
MAX_EXPECTED_BYTES = 256 << 20  # an --expected document is read whole, up to this size


class ExpectedUnusableError(EventfoldError):
    """The expected state given cannot be used (exit code 2)."""


@dataclass(frozen=True)
class Difference:
    category: str
    expected: dict[str, Any] | None  # {"count", "total"}
    actual: dict[str, Any] | None

    @property
    def status(self) -> str:
        if self.expected is None:
            return "extra"
        if self.actual is None:
            return "missing"
        return "changed" if self.expected != self.actual else "match"

    @property
    def delta(self) -> dict[str, Any]:
        """Actual minus expected: ``{"count": N, "total": "DECIMAL"}``."""
        exp = self.expected or {"count": 0, "total": "0"}
        act = self.actual or {"count": 0, "total": "0"}
        total = EXACT.subtract(Decimal(act["total"]), Decimal(exp["total"]))
        return {"count": act["count"] - exp["count"], "total": canonical_decimal(total)}

    def to_json(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "status": self.status,
            "expected": self.expected,
            "actual": self.actual,
            "delta": self.delta,
        }


@dataclass
class EventDiff:
    """With sources: events by id, the sources against the store.

    Each list keeps the first ``limit`` rows in source order (by file in reading order,
    then line; 0 keeps all), in bounded memory; the counts are of all.
    """

    missing: list[dict[str, Any]] = field(default_factory=list)
    extra: list[dict[str, Any]] = field(default_factory=list)
    conflicting: list[dict[str, Any]] = field(default_factory=list)
    duplicated: list[dict[str, Any]] = field(default_factory=list)  # ids recorded again
    missing_count: int = 0
    extra_count: int = 0
    conflicting_count: int = 0
    duplicated_count: int = 0  # recordings of an id after its first, in the store
    missing_ids: list[str] = field(default_factory=list, repr=False)  # all, source order
    limit: int = SAMPLES
    _kept: dict[str, list[tuple[int, int, int, dict[str, Any]]]] = field(
        default_factory=dict, repr=False
    )

    def note(self, kind: str, row: dict[str, Any], line: int | None = None, file: int = 0) -> None:
        """Count one event of ``kind`` (missing, extra, conflicting, duplicated); keep the
        ``limit`` rows of each first in source order: the smallest (``file``, ``line``),
        then the first noted."""
        count = getattr(self, f"{kind}_count") + 1
        setattr(self, f"{kind}_count", count)
        kept = self._kept.setdefault(kind, [])
        entry = (-file, -(line or 0), -count, row)  # a max-heap of the rows kept
        if not self.limit or len(kept) < self.limit:
            heapq.heappush(kept, entry)
        elif entry[:3] > kept[0][:3]:
            heapq.heapreplace(kept, entry)

    def finish(self) -> EventDiff:
        """Fill the lists from the rows kept, in source order."""
        for kind, kept in self._kept.items():
            ordered = sorted(kept, key=lambda e: (-e[0], -e[1], -e[2]))
            setattr(self, kind, [e[3] for e in ordered])
        return self


@dataclass
class VerifyReport:
    projection: ProjectionReport
    expected_checksum: str
    compared: list[Difference]  # every category (``match`` rows included)
    events: EventDiff | None = None
    source: str | None = None  # the one source's name; None without a source or with several
    checksum_only: bool = False  # only a checksum was given: categories cannot be compared
    sources: list[str] = field(default_factory=list)  # the names of the sources, in order
    files: list[FileFigures] = field(default_factory=list)  # what each source held

    @property
    def actual_checksum(self) -> str:
        return self.projection.checksum

    @property
    def matches(self) -> bool:
        return self.expected_checksum == self.actual_checksum

    @property
    def differences(self) -> list[Difference]:
        return [d for d in self.compared if d.status != "match"]

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document of ``verify`` (keys are only ever added)."""
        doc: dict[str, Any] = {
            "status": "match" if self.matches else "mismatch",
            "projection": self.projection.projection,
            "expected_checksum": self.expected_checksum,
            "actual_checksum": self.actual_checksum,
            "position": self.projection.position,
            "categories_compared": len(self.compared),
            "matching": len(self.compared) - len(self.differences),
            "differing": len(self.differences),
            "differences": [d.to_json() for d in self.differences],
            "source": self.source,
            "checksum_only": self.checksum_only,
            "sources": self.sources,
            "files": [f.to_json() for f in self.files],
        }
        if self.events is not None:
            e = self.events
            doc |= {
                "missing_events": e.missing_count,
                "extra_events": e.extra_count,
                "conflicting_events": e.conflicting_count,
                "missing": e.missing,
                "extra": e.extra,
                "conflicting": e.conflicting,
                "duplicated_events": e.duplicated_count,
                "duplicated": e.duplicated,
            }
        return doc


def verify(
    app: Eventfold,
    store_dir: str,
    *,
    source: str | None = None,
    sources: Sequence[str] = (),
    expected_checksum: str | None = None,
    expected_document: str | None = None,
    max_line: int = MAX_LINE_BYTES,
    limit: int = SAMPLES,
    progress: Progress | None = None,
) -> VerifyReport:
    """Catch ``category_totals`` up and compare it with exactly one expected state: that
    of ``sources`` (files in reading order, as ``resolve_sources`` gives them; ``source``
    is one), of a document, or a checksum. The event lists keep ``limit`` rows each
    (0: all).

    ``progress`` is told the phases: catching up, reading the sources, comparing.
    """
    projection = Projector(app, store_dir, CategoryTotals()).catchup(progress=progress)
    actual = projection.canonical["categories"]
    paths = [source] if source is not None else list(sources)
    if paths:
        expected_state = read_expected_source(paths, max_line, progress)
        return _against_source(app, projection, expected_state, limit, progress)
    if expected_document is not None:
        expected = _read_expected(expected_document)
        return VerifyReport(
            projection, state_checksum({"categories": expected}), _compare(expected, actual)
        )
    assert expected_checksum is not None
    checksum = expected_checksum.strip().lower()
    if len(checksum) != 64 or any(c not in "0123456789abcdef" for c in checksum):
        msg = f"--expected-checksum: {expected_checksum!r} is not a SHA-256 in hex"
        raise ExpectedUnusableError(msg)
    compared = [Difference(name, v, v) for name, v in actual.items()]
    return VerifyReport(projection, checksum, compared, checksum_only=True)


def _against_source(
    app: Eventfold,
    projection: ProjectionReport,
    expected_state: ExpectedState,
    limit: int,
    progress: Progress | None,
) -> VerifyReport:
    expected = expected_state.canonical()["categories"]
    actual = projection.canonical["categories"]
    names = expected_state.sources
    report = VerifyReport(
        projection,
        state_checksum({"categories": expected}),
        _compare(expected, actual),
        source=names[0] if len(names) == 1 else None,
        sources=names,
        files=expected_state.files,
    )
    report.events = _event_diff(app, expected_state, projection.position, limit, progress)
    return report


def read_expected_source(
    source: str | Sequence[str],
    max_line: int = MAX_LINE_BYTES,
    progress: Progress | None = None,
    *,
    name: str | None = None,
    names: Sequence[str] | None = None,
) -> ExpectedState:
    """The expected state of ``source`` (a path, or paths in reading order; named
    ``name``/``names`` in errors and reports, default ``source_name``).

    ``ExpectedUnusableError`` (unreadable evidence is never reported as a match) when
    a file cannot be read, when compressed data is damaged (after reading every file:
    each damaged file is named, with where its damage is), or when there is no valid
    event in all the sources together.
    """
    paths = [source] if isinstance(source, str) else list(source)
    if name is not None:
        names = [name]
    if names is None:
        names = [source_name(p) for p in paths]
    try:
        state = expected_from_sources(paths, max_line, progress, names)
    except OSError as e:
        where = e.filename if isinstance(e.filename, str) else ", ".join(names)
        msg = f"{where}: cannot read the source ({e.strerror or e})"
        raise ExpectedUnusableError(msg) from None
    if state.damaged:
        msg = "; ".join(
            f"{f.source}: {f.damage.describe()}" for f in state.damaged if f.damage is not None
        )
        msg += ": the evidence cannot be read whole, so it proves nothing (repair or replace it)"
        raise ExpectedUnusableError(msg)
    if not state.records:
        where = ", ".join(names) if len(names) <= 3 else f"{len(names):,} sources"
        msg = (
            f"{where}: no valid event in {'it' if len(names) == 1 else 'them'} "
            f"({state.lines:,} lines read, {state.invalid:,} invalid): there is nothing to "
            "prove the store against"
        )
        raise ExpectedUnusableError(msg)
    return state


def verify_source(
    app: Eventfold,
    store_dir: str,
    expected_state: ExpectedState,
    limit: int = SAMPLES,
    progress: Progress | None = None,
) -> VerifyReport:
    """``verify`` with the sources' expected state already computed."""
    projection = Projector(app, store_dir, CategoryTotals()).catchup(progress=progress)
    return _against_source(app, projection, expected_state, limit, progress)


def _compare(expected: dict[str, Any], actual: dict[str, Any]) -> list[Difference]:
    names = sorted(expected.keys() | actual.keys())
    return [Difference(name, expected.get(name), actual.get(name)) for name in names]


def _read_expected(path: str) -> dict[str, Any]:
    try:
        with open_source(path) as source:
            data = source.stream.read(MAX_EXPECTED_BYTES + 1)
        if len(data) > MAX_EXPECTED_BYTES:
            msg = (
                f"{path}: larger than {MAX_EXPECTED_BYTES:,} bytes, the limit of an expected "
                "state document"
            )
            raise ExpectedUnusableError(msg)
        doc = json.loads(data.decode("utf-8-sig"), parse_float=Decimal)  # a BOM may lead
        categories = doc["categories"]
        expected = {
            str(name): {
                "count": int(v["count"]),
                "total": canonical_decimal(Decimal(str(v["total"]))),
            }
            for name, v in categories.items()
            if int(v["count"])
        }
    except OSError as e:
        msg = f"{path}: cannot read the expected state ({e.strerror or e})"
        raise ExpectedUnusableError(msg) from None
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        msg = (
            f"{path}: not an expected state document "
            f'({{"categories": {{NAME: {{"count", "total"}}}}}}): {e}'
        )
        raise ExpectedUnusableError(msg) from None
    if not expected:
        msg = f"{path}: no category with events in it: there is nothing to prove the store against"
        raise ExpectedUnusableError(msg)
    return expected


def _event_diff(
    app: Eventfold,
    expected: ExpectedState,
    position: int,
    limit: int,
    progress: Progress | None,
) -> EventDiff:
    diff = EventDiff(limit=limit)
    files = {name: index for index, name in enumerate(expected.sources)}
    seen: set[str] = set()
    for page in recorded_facts(app, 0, position):
        tell(progress, COMPARING, page[-1].notification_id, position, NOTIFICATIONS)
        for fact in page:
            if fact.event_id in seen:  # an id recorded twice: the store counts it twice
                row = _stored(fact) | {"notification_id": fact.notification_id}
                diff.note("duplicated", row, fact.line, files.get(fact.source, 0))
                continue
            seen.add(fact.event_id)
            record = expected.records.get(fact.event_id)
            if record is None:
                diff.note("extra", _stored(fact), fact.line, files.get(fact.source, 0))
            elif (record.category, record.value, record.occurred_at) != (
                fact.category,
                fact.value,
                fact.occurred_at,
            ):
                stored = _stored(fact)
                del stored["id"]
                source: dict[str, Any] = {"category": record.category, "value": str(record.value)}
                source |= {"source": record.source, "line": record.line}
                row = {"id": fact.event_id, "source": source}
                diff.note("conflicting", row | {"store": stored}, record.line, record.file)
    for event_id, record in expected.records.items():
        if event_id not in seen:
            diff.missing_ids.append(event_id)
            row = {"id": event_id, "category": record.category, "value": str(record.value)}
            row |= {"source": record.source, "line": record.line}
            diff.note("missing", row, record.line, record.file)
    tell(progress, COMPARING, position, position, NOTIFICATIONS)
    return diff.finish()


def _stored(fact: RecordedFact) -> dict[str, Any]:
    """How a recorded event is shown in the event lists."""
    return {
        "id": fact.event_id,
        "category": fact.category,
        "value": str(fact.value),
        "source": fact.source,
        "line": fact.line,
    }
