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

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eventfold.application.admin.events import category_exists
from eventfold.application.app import Eventfold
from eventfold.application.progress import Progress
from eventfold.application.projecting import ProjectionReport, Projector
from eventfold.application.projecting.asof import (
    AsOf,
    Point,
    PointError,
    state_as_of,
    state_in_window,
)
from eventfold.application.proving.eventdiff import SAMPLES, EventDiff, event_diff
from eventfold.application.proving.expected import (
    MAX_EXPECTED_BYTES,
    Columns,
    ExpectedRows,
    ExpectedUnusableError,
    read_expected,
)
from eventfold.application.proving.export import Export
from eventfold.application.proving.fromsources import (
    expected_hours,
    expected_rows,
    read_expected_source,
    through,
    within,
)
from eventfold.application.proving.keyed import Difference, Narrowing, compare
from eventfold.application.proving.numbers import NumberFormat
from eventfold.application.proving.reference import (
    ExpectedState,
    FileFigures,
)
from eventfold.application.proving.resting import Resting, reconstructed, resting
from eventfold.application.proving.timeline import Timeline, TimelineBuilder
from eventfold.application.reconstructing.plan import load_plan
from eventfold.infra.lines import MAX_LINE_BYTES
from eventfold.projections.base import (
    Key,
    Projection,
    state_checksum,
)
from eventfold.projections.builtin import CategoryTotals, HourlyTotals

HOURLY = HourlyTotals()
__all__ = [
    "MAX_EXPECTED_BYTES",
    "Difference",
    "EventDiff",
    "ExpectedUnusableError",
    "VerifyReport",
    "verify",
]


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
    as_of: AsOf | None = None  # with --as-of: the state compared is of that point
    resting: Resting = field(default_factory=Resting)  # reconstructions the totals rest on

    @property
    def resting_rows(self) -> dict[Key, list[str]]:
        """The compared rows whose actual value rests in part on reconstructions, with
        their ids."""
        if not self.resting or "category" not in self.key_names:
            return {}
        at = self.key_names.index("category")
        standing = self.resting.categories()
        return {
            d.key: standing[d.key[at]][2]
            for d in self.compared
            if d.actual is not None and d.key[at] in standing
        }

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
            "as_of": None if self.as_of is None else self.as_of.to_json(),
            "reconstructions": self._reconstructions_json(),
            "resting_rows": len(self.resting_rows),
            "window_reconstructions": [r.ident for r in self.resting.beside],
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

    def _reconstructions_json(self) -> list[dict[str, Any]]:
        """The standing reconstructions, with the parts of the categories compared."""
        compared = {k[self.key_names.index("category")] for k in self.resting_rows}
        docs = self.resting.to_json()
        for doc in docs:
            doc["rows"] = [row for row in doc["rows"] if row["category"] in compared]
        return [doc for doc in docs if doc["rows"]]


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
    as_of: Point | None = None,
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
    verification.by, verification.as_of = by, as_of
    report = verification.run(expectation, export)
    report.as_of = verification._at
    return report


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
        self.as_of: Point | None = None
        self.windowed = False
        self._at: AsOf | None = None
        self._timeline: TimelineBuilder | None = None

    def run(self, expectation: Expectation, export: str | None) -> VerifyReport:
        checksum = None if expectation.checksum is None else _checksum(expectation.checksum)
        if self.by is not None:
            self._refuse_timeline(expectation)
            if self.as_of is not None and self.as_of.kind == "generation":
                msg = f"--by {self.by}: a generation ({self.as_of.text}) has no hours to compare"
                raise PointError(msg)
            self._timeline = TimelineBuilder(self.by)
        expected_file = None
        if expectation.document is not None:  # read before the catch-up: fail early
            expected_file = read_expected(
                expectation.document, self.projection, expectation.columns, expectation.numbers
            )
        state = None
        # a time window over rows without time: both sides fold only the window's events
        self.windowed = bool(
            expectation.sources and self.narrowing.timed and self.projection.time_key is None
        )
        if self.windowed and self.as_of is not None and self.as_of.kind != "occurred":
            msg = "--since/--until with sources take --as-of an occurred time only"
            raise PointError(msg)
        if expectation.sources:
            if self.as_of is not None and self.as_of.kind == "recorded":
                msg = (
                    "--as-of-recorded cannot be compared with sources (they know when events "
                    "occurred, not when the store recorded them): give --expected or a checksum"
                )
                raise PointError(msg)
            state = read_expected_source(expectation.sources, expectation.max_line, self.progress)
            if self.as_of is not None and self.as_of.moment is not None:
                state = through(state, self.as_of.moment)
            if self.windowed:
                state = within(state, self.narrowing)
        if self.narrowing.categories:  # a given name that is a category is not a pattern
            named = [c for c in self.narrowing.categories if category_exists(self.app, c)]
            if expected_file is not None and "category" in self.projection.keys:
                at = self.projection.keys.index("category")
                named += [k[at] for k in expected_file.rows]
            if state is not None:
                named += list(state.totals)
            self.narrowing = self.narrowing.naming(named)
        sink = (
            None
            if export is None
            else Export(export, self.projection.keys, self.projection.measures)
        )
        try:
            caught_up = self._state(self.projection)
            rest = self._resting(caught_up.position)
            if state is not None:
                report = self._against_source(caught_up, state, sink, rest)
            elif expected_file is not None:
                report = self._report(caught_up, expected_file.rows, expected_file.complete)
                report.expected_file = expected_file
            else:
                assert checksum is not None
                report = self._against_checksum(caught_up, checksum)
            report.resting = rest
            if self._timeline is not None:
                hours = (
                    expected_hours(state)
                    if state is not None
                    else expected_file.rows
                    if expected_file
                    else {}
                )
                self._timeline.rows(
                    self.narrowing.rows(HOURLY, hours),
                    self.narrowing.rows(HOURLY, self._hourly(caught_up)),
                )
                report.timeline = self._timeline.build()
            if sink is not None:
                if state is None:  # with sources, the keys were written before the events
                    for difference in report.differences:
                        sink.key(difference)
                sink.finish()
                report.exported = Exported(sink.path, sink.keys, sink.events)
        except BaseException:
            if sink is not None:
                sink.abandon()
            raise
        return report

    def _resting(self, position: int) -> Resting:
        """The reconstructions standing at ``position`` that the projection folds. For a
        window, none is counted (both sides count the window's raw events): those whose
        period meets the window are ``beside`` it, to be named."""
        if not self.projection.folds_reconstructions:
            return Resting()
        standing = load_plan(self.app).standing(position)
        if self.windowed:
            n = self.narrowing
            met = [
                r
                for r in standing
                if (n.until is None or r.start < n.until) and (n.since is None or n.since < r.end)
            ]
            return Resting(beside=met)
        until = None if self.as_of is None or self.as_of.kind != "occurred" else self.as_of.moment
        return resting(standing, until)

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
        raise PointError(msg)

    def _hourly(self, caught_up: ProjectionReport) -> dict[Key, Any]:
        """The store's rows per category and hour: the projection's own when it is
        ``hourly_totals``, else ``hourly_totals`` caught up."""
        if type(self.projection) is not HourlyTotals:
            caught_up = self._state(HOURLY)
        return HOURLY.rows(caught_up.canonical)

    def _state(self, projection: Projection[Any]) -> ProjectionReport:
        """The projection caught up, or as of the point given, or (``windowed``) of the
        events in the ``--since``/``--until`` window (nothing written then)."""
        if self.windowed and projection is self.projection:
            moment = None if self.as_of is None else self.as_of.moment
            n = self.narrowing
            at = state_in_window(self.app, projection, n.since, n.until, moment, self.progress)
        elif self.as_of is None:
            return Projector(self.app, self.store_dir, projection).catchup(progress=self.progress)
        else:
            at = state_as_of(self.app, self.store_dir, projection, self.as_of, self.progress)
        if projection is self.projection and self.as_of is not None:
            self._at = at
        used = at.snapshot
        return ProjectionReport(
            projection.name,
            "as-of",
            "-",
            0 if used is None else used.position,
            at.position,
            at.events_applied,
            at.checksum,
            at.canonical,
            at.state,
            snapshot_used=used,
        )

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
        if self.narrowing and not expected and not actual:
            msg = (
                f"nothing to compare: {self.narrowing.describe()} keeps no row of "
                f"{self.projection.name} on either side"
            )
            raise ExpectedUnusableError(msg)
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
        self,
        caught_up: ProjectionReport,
        state: ExpectedState,
        sink: Export | None,
        rest: Resting | None = None,
    ) -> VerifyReport:
        rest = rest or Resting()
        expected, same_code = expected_rows(self.projection, reconstructed(state, rest), rest)
        report = self._report(caught_up, expected)
        names = state.sources
        report.source = names[0] if len(names) == 1 else None
        report.sources = names
        report.files = state.files
        report.same_code = same_code
        if sink is not None:  # the key rows first, then the events as they are found
            for difference in report.differences:
                sink.key(difference)
        report.events = event_diff(
            self.app,
            state,
            caught_up.position,
            self.limit,
            self.progress,
            self.narrowing,
            sink,
            self._timeline,
            None if self.as_of is None else self.as_of.moment,
        )
        return report


def _checksum(given: str) -> str:
    checksum = given.strip().lower()
    if len(checksum) != 64 or any(c not in "0123456789abcdef" for c in checksum):
        msg = f"--expected-checksum: {given!r} is not a SHA-256 in hex"
        raise ExpectedUnusableError(msg)
    return checksum


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
    rest = verification._resting(caught_up.position)
    report = verification._against_source(caught_up, expected_state, None, rest)
    report.resting = rest
    return report
