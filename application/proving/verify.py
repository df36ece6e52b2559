"""Verify: catch a projection up, compare it with an expected state, say what differs.

The expected state comes from sources (``reference.py``, by the ingest rules
on a path of its own, over files read in order), from an expected file (CSV,
TSV, JSON or JSON Lines: ``expected.py``), or as a bare checksum. The two
states are compared row by row by the keys the projection declares
(``keyed.py``). With sources, the store's recorded events are compared with
the sources' first occurrences by id: missing, extra and conflicting events,
each named by its file, line and offset. ``--export`` writes every difference
(``export.py``).
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from eventfold.application.app import Eventfold
from eventfold.application.progress import COMPARING, NOTIFICATIONS, Progress, tell
from eventfold.application.projecting import ProjectionReport, Projector
from eventfold.application.proving.expected import (
    MAX_EXPECTED_BYTES,
    Columns,
    ExpectedRows,
    ExpectedUnusableError,
    read_expected,
)
from eventfold.application.proving.export import Export
from eventfold.application.proving.keyed import Difference, Narrowing, compare
from eventfold.application.proving.numbers import NumberFormat
from eventfold.application.proving.reference import (
    ExpectedState,
    FileFigures,
    expected_from_sources,
)
from eventfold.application.proving.timeline import Timeline, TimelineBuilder
from eventfold.application.recorded import recorded_facts
from eventfold.domain.model import EXACT, Category
from eventfold.infra.lines import MAX_LINE_BYTES
from eventfold.infra.sourcefile import source_name
from eventfold.projections.base import (
    Key,
    Projection,
    RecordedFact,
    canonical_decimal,
    state_checksum,
)
from eventfold.projections.builtin import NO_HOUR, CategoryTotals, HourlyTotals

SAMPLES = 20
HOURLY = HourlyTotals()
__all__ = ["MAX_EXPECTED_BYTES", "Difference", "ExpectedUnusableError", "VerifyReport", "verify"]


@dataclass
class EventDiff:
    """With sources: events by id, the sources against the store.

    Each list keeps the first ``limit`` rows in source order (by file in reading order,
    then line; 0 keeps all), in bounded memory; the counts are of all. An ``export``
    is given every row as it is noted.
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
    export: Export | None = field(default=None, repr=False)
    _kept: dict[str, list[tuple[int, int, int, dict[str, Any]]]] = field(
        default_factory=dict, repr=False
    )

    def note(self, kind: str, row: dict[str, Any], line: int | None = None, file: int = 0) -> None:
        """Count one event of ``kind`` (missing, extra, conflicting, duplicated); keep the
        ``limit`` rows of each first in source order: the smallest (``file``, ``line``),
        then the first noted."""
        count = getattr(self, f"{kind}_count") + 1
        setattr(self, f"{kind}_count", count)
        if self.export is not None:
            self.export.event(kind, row)
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


@dataclass(frozen=True)
class Exported:
    """Where ``--export`` wrote every difference, and how many rows."""

    path: str
    keys: int
    events: int

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "rows": self.keys + self.events} | {
            "keys": self.keys,
            "events": self.events,
        }


@dataclass
class VerifyReport:
    projection: ProjectionReport
    expected_checksum: str | None  # None: the expected file lacks a measure (counts)
    compared: list[Difference]  # every row compared (``match`` rows included)
    events: EventDiff | None = None
    source: str | None = None  # the one source's name; None without a source or with several
    checksum_only: bool = False  # only a checksum was given: rows cannot be compared
    sources: list[str] = field(default_factory=list)  # the names of the sources, in order
    files: list[FileFigures] = field(default_factory=list)  # what each source held
    key_names: tuple[str, ...] = ("category",)
    time_key: str | None = None
    narrowing: Narrowing = field(default_factory=Narrowing)
    narrowed_checksum: str | None = None  # the actual checksum of the rows kept, when narrowed
    expected_file: ExpectedRows | None = None
    same_code: bool = False  # the expected state is the projection's own fold of the sources
    exported: Exported | None = None
    timeline: Timeline | None = None  # with --by

    @property
    def actual_checksum(self) -> str:
        return self.narrowed_checksum or self.projection.checksum

    @property
    def matches(self) -> bool:
        if self.expected_checksum is None:
            return not self.differences
        return self.expected_checksum == self.actual_checksum

    @property
    def differences(self) -> list[Difference]:
        return [d for d in self.compared if d.status != "match"]

    @property
    def unread_measures(self) -> dict[str, int]:
        """Measures some expected rows did not give, with how many rows lack each."""
        if self.expected_file is None:
            return {}
        return {m: n for m, n in self.expected_file.without.items() if n}

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
            "keys": list(self.key_names),
            "rows_compared": len(self.compared),
            "narrowed": self.narrowing.to_json() if self.narrowing else None,
            "expected_file": None
            if self.expected_file is None
            else {
                "path": self.expected_file.path,
                "format": self.expected_file.format,
                "rows": self.expected_file.read,
                "rows_without": self.unread_measures,
            },
            "same_code": self.same_code,
            "export": None if self.exported is None else self.exported.to_json(),
            "timeline": None if self.timeline is None else self.timeline.to_json(),
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


@dataclass(frozen=True)
class Expectation:
    """The one expected state a verify is given: sources (paths in reading order), an
    expected file (read with ``columns`` and ``numbers``), or a checksum."""

    sources: Sequence[str] = ()
    document: str | None = None
    checksum: str | None = None
    columns: Columns = field(default_factory=Columns)
    numbers: NumberFormat = field(default_factory=NumberFormat)
    max_line: int = MAX_LINE_BYTES


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
    projection: Projection[Any] | None = None,
    columns: Columns | None = None,
    numbers: NumberFormat | None = None,
    narrowing: Narrowing | None = None,
    export: str | None = None,
    by: str | None = None,
) -> VerifyReport:
    """Catch ``projection`` (default ``category_totals``) up and compare it with exactly
    one expected state: that of ``sources`` (files in reading order, as
    ``resolve_sources`` gives them; ``source`` is one), of an expected file, or a
    checksum. ``narrowing`` picks the rows and events compared; the event lists keep
    ``limit`` rows each (0: all); ``export`` names a file that gets every difference;
    ``by`` (``hour`` or ``day``) adds the timeline of the differences.

    ``progress`` is told the phases: catching up, reading the sources, comparing.
    """
    paths = [source] if source is not None else list(sources)
    expectation = Expectation(
        paths,
        expected_document,
        expected_checksum,
        columns or Columns(),
        numbers or NumberFormat(),
        max_line,
    )
    verification = Verification(
        app, store_dir, projection or CategoryTotals(), narrowing or Narrowing(), limit, progress
    )
    verification.by = by
    return verification.run(expectation, export)


class Verification:
    """One verify: the projection caught up, then compared with one expectation."""

    def __init__(
        self,
        app: Eventfold,
        store_dir: str,
        projection: Projection[Any],
        narrowing: Narrowing,
        limit: int,
        progress: Progress | None,
    ) -> None:
        self.app = app
        self.store_dir = store_dir
        self.projection = projection
        self.narrowing = narrowing
        self.limit = limit
        self.progress = progress
        self.by: str | None = None
        self._timeline: TimelineBuilder | None = None

    def run(self, expectation: Expectation, export: str | None) -> VerifyReport:
        checksum = None if expectation.checksum is None else _checksum(expectation.checksum)
        if self.by is not None:
            self._refuse_timeline(expectation)
            self._timeline = TimelineBuilder(self.by)
        expected_file = None
        if expectation.document is not None:  # read before the catch-up: fail early
            expected_file = read_expected(
                expectation.document, self.projection, expectation.columns, expectation.numbers
            )
        state = None
        if expectation.sources:
            state = read_expected_source(expectation.sources, expectation.max_line, self.progress)
        sink = (
            None
            if export is None
            else Export(export, self.projection.keys, self.projection.measures)
        )
        try:
            caught_up = Projector(self.app, self.store_dir, self.projection).catchup(
                progress=self.progress
            )
            if state is not None:
                report = self._against_source(caught_up, state, sink)
            elif expected_file is not None:
                report = self._report(caught_up, expected_file.rows, expected_file.complete)
                report.expected_file = expected_file
            else:
                assert checksum is not None
                report = self._against_checksum(caught_up, checksum)
            if self._timeline is not None:
                expected_hours = (
                    _hours(state)
                    if state is not None
                    else expected_file.rows
                    if expected_file
                    else {}
                )
                self._timeline.rows(
                    self.narrowing.rows(HOURLY, expected_hours),
                    self.narrowing.rows(HOURLY, self._hourly(caught_up)),
                )
                report.timeline = self._timeline.build()
            if sink is not None:
                for difference in report.differences:
                    sink.key(difference)
                sink.finish()
                report.exported = Exported(sink.path, sink.keys, sink.events)
        except BaseException:
            if sink is not None:
                sink.abandon()
            raise
        return report

    def _refuse_timeline(self, expectation: Expectation) -> None:
        """``--by`` needs hours on both sides: sources, or an expected file of
        ``hourly_totals``."""
        if expectation.sources:
            return
        if expectation.document is not None and type(self.projection) is HourlyTotals:
            return
        msg = (
            f"--by {self.by} needs hours on both sides: sources, or --expected FILE with "
            "--projection hourly_totals"
        )
        raise ExpectedUnusableError(msg)

    def _hourly(self, caught_up: ProjectionReport) -> dict[Key, Any]:
        """The store's rows per category and hour: the projection's own when it is
        ``hourly_totals``, else ``hourly_totals`` caught up."""
        if type(self.projection) is not HourlyTotals:
            caught_up = Projector(self.app, self.store_dir, HOURLY).catchup(progress=self.progress)
        return HOURLY.rows(caught_up.canonical)

    def _report(
        self, caught_up: ProjectionReport, expected: dict[Key, Any], complete: bool = True
    ) -> VerifyReport:
        """The rows of both sides compared, after narrowing."""
        actual = self.projection.rows(caught_up.canonical)
        narrowed = None
        if self.narrowing:
            expected = self.narrowing.rows(self.projection, expected)
            actual = self.narrowing.rows(self.projection, actual)
            narrowed = state_checksum(self.projection.from_rows(actual))
        expected_checksum = (
            state_checksum(self.projection.from_rows(expected)) if complete else None
        )
        return VerifyReport(
            caught_up,
            expected_checksum,
            compare(self.projection, expected, actual),
            key_names=self.projection.keys,
            time_key=self.projection.time_key,
            narrowing=self.narrowing,
            narrowed_checksum=narrowed,
        )

    def _against_checksum(self, caught_up: ProjectionReport, checksum: str) -> VerifyReport:
        rows = self.projection.rows(caught_up.canonical)
        measures = dict(self.projection.measures) or None
        names = self.projection.keys
        compared = [Difference(k, v, v, names, measures) for k, v in sorted(rows.items())]
        return VerifyReport(caught_up, checksum, compared, checksum_only=True, key_names=names)

    def _against_source(
        self, caught_up: ProjectionReport, state: ExpectedState, sink: Export | None
    ) -> VerifyReport:
        expected, same_code = expected_rows(self.projection, state)
        report = self._report(caught_up, expected)
        names = state.sources
        report.source = names[0] if len(names) == 1 else None
        report.sources = names
        report.files = state.files
        report.same_code = same_code
        report.events = _event_diff(
            self.app,
            state,
            caught_up.position,
            self.limit,
            self.progress,
            self.narrowing,
            sink,
            self._timeline,
        )
        return report


def _checksum(given: str) -> str:
    checksum = given.strip().lower()
    if len(checksum) != 64 or any(c not in "0123456789abcdef" for c in checksum):
        msg = f"--expected-checksum: {given!r} is not a SHA-256 in hex"
        raise ExpectedUnusableError(msg)
    return checksum


def expected_rows(projection: Projection[Any], state: ExpectedState) -> tuple[dict[Key, Any], bool]:
    """The expected rows of the sources' first valid occurrences, and whether they come
    from the projection's own handlers. The built-ins' come from code of their own
    (``reference.py``'s totals; hours counted here); another projection's are its own
    fold of the accepted events, so the same handler code is on both sides."""
    if type(projection) is CategoryTotals:
        return projection.rows(state.canonical()), False
    if type(projection) is HourlyTotals:
        return _hours(state), False
    folded = projection.initial()
    handler = projection.handler(Category.Recorded)
    if handler is not None:
        for event_id, r in state.records.items():
            fact = RecordedFact(
                0, event_id, r.category, r.value, r.occurred_at, r.source, r.line, r.offset
            )
            handler(folded, fact)
    return projection.rows(projection.canonical(folded)), True


def _hours(state: ExpectedState) -> dict[Key, Any]:
    """Count and exact total per category and UTC hour of the sources' accepted events."""
    sums: dict[Key, list[Any]] = {}
    for r in state.records.values():
        when = r.occurred_at
        hour = NO_HOUR if when is None else when.astimezone(UTC).strftime("%Y-%m-%dT%H:00:00+00:00")
        entry = sums.setdefault((r.category, hour), [0, 0])
        entry[0] += 1
        entry[1] = EXACT.add(entry[1], r.value)
    return {k: {"count": n, "total": canonical_decimal(t)} for k, (n, t) in sums.items()}


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
    """``verify`` of ``category_totals`` with the sources' expected state already computed."""
    verification = Verification(app, store_dir, CategoryTotals(), Narrowing(), limit, progress)
    caught_up = Projector(app, store_dir, verification.projection).catchup(progress=progress)
    return verification._against_source(caught_up, expected_state, None)


def _event_diff(
    app: Eventfold,
    expected: ExpectedState,
    position: int,
    limit: int,
    progress: Progress | None,
    narrowing: Narrowing,
    export: Export | None,
    timeline: TimelineBuilder | None = None,
) -> EventDiff:
    diff = EventDiff(limit=limit, export=export)
    files = {name: index for index, name in enumerate(expected.sources)}
    seen: set[str] = set()
    kept = narrowing.category, narrowing.moment
    for page in recorded_facts(app, 0, position):
        tell(progress, COMPARING, page[-1].notification_id, position, NOTIFICATIONS)
        for fact in page:
            record = expected.records.get(fact.event_id)
            if not (kept[0](fact.category) and kept[1](fact.occurred_at)) and (
                record is None or not (kept[0](record.category) and kept[1](record.occurred_at))
            ):
                seen.add(fact.event_id)  # outside on both sides: not compared
                continue
            if fact.event_id in seen:  # an id recorded twice: the store counts it twice
                row = _stored(fact) | {"notification_id": fact.notification_id}
                diff.note("duplicated", row, fact.line, files.get(fact.source, 0))
                continue
            seen.add(fact.event_id)
            if record is None:
                row = _stored(fact)
                diff.note("extra", row, fact.line, files.get(fact.source, 0))
                if timeline is not None:
                    timeline.event("extra", row, fact.occurred_at)
            elif (record.category, record.value, record.occurred_at) != (
                fact.category,
                fact.value,
                fact.occurred_at,
            ):
                stored = _stored(fact) | {"notification_id": fact.notification_id}
                del stored["id"]
                source: dict[str, Any] = {"category": record.category, "value": str(record.value)}
                source |= {"occurred_at": _iso(record.occurred_at), "source": record.source}
                source |= {"line": record.line, "offset": record.offset}
                row = {"id": fact.event_id, "source": source}
                diff.note("conflicting", row | {"store": stored}, record.line, record.file)
    for event_id, record in expected.records.items():
        if event_id in seen or not (kept[0](record.category) and kept[1](record.occurred_at)):
            continue
        diff.missing_ids.append(event_id)
        row = {"id": event_id, "category": record.category, "value": str(record.value)}
        row |= {"occurred_at": _iso(record.occurred_at), "source": record.source}
        row |= {"line": record.line, "offset": record.offset}
        diff.note("missing", row, record.line, record.file)
        if timeline is not None:
            timeline.event("missing", row, record.occurred_at)
    tell(progress, COMPARING, position, position, NOTIFICATIONS)
    return diff.finish()


def _stored(fact: RecordedFact) -> dict[str, Any]:
    """How a recorded event is shown in the event lists."""
    return {
        "id": fact.event_id,
        "category": fact.category,
        "value": str(fact.value),
        "occurred_at": _iso(fact.occurred_at),
        "source": fact.source,
        "line": fact.line,
        "offset": fact.offset,
    }


def _iso(value: Any) -> str | None:
    return None if value is None else str(value.isoformat())
