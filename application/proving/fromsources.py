"""The expected state of sources for a projection, by code of its own where it can be.

``read_expected_source`` reads the sources by the ingest rules (``reference.py``);
``expected_rows`` gives a projection's expected rows from them: the built-ins'
by code independent of the projection (the reference's totals; its hours
counted here), another projection's by its own fold of the accepted events.
``through`` keeps the events that occurred up to a time (``--as-of``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from eventfold.application.progress import Progress
from eventfold.application.proving.expected import ExpectedUnusableError
from eventfold.application.proving.keyed import Narrowing
from eventfold.application.proving.reference import ExpectedState, expected_from_sources
from eventfold.application.proving.resting import Resting
from eventfold.application.reconstructing.plan import Covering
from eventfold.domain.model import EXACT, Category
from eventfold.infra.lines import MAX_LINE_BYTES
from eventfold.infra.sourcefile import source_name
from eventfold.projections.base import (
    Key,
    Projection,
    RecordedFact,
    canonical_decimal,
)
from eventfold.projections.builtin import NO_HOUR, CategoryTotals, HourlyTotals


def expected_rows(
    projection: Projection[Any], state: ExpectedState, rest: Resting | None = None
) -> tuple[dict[Key, Any], bool]:
    """The expected rows of the sources' first valid occurrences, and whether they come
    from the projection's own handlers. The built-ins' come from code of their own
    (``reference.py``'s totals, with the reconstructions ``rest`` already counted
    there; hours counted here); another projection's are its own fold of the accepted
    events (and, when it folds reconstructions, of ``rest``'s summaries instead of the
    events of their periods), so the same handler code is on both sides."""
    if type(projection) is CategoryTotals:
        return projection.rows(state.canonical()), False
    if type(projection) is HourlyTotals:
        return expected_hours(state), False
    folded = projection.initial()
    handler = projection.handler(Category.Recorded)
    standing = rest.standing if rest is not None and projection.folds_reconstructions else []
    covering = Covering(standing)
    if handler is not None:
        for event_id, r in state.records.items():
            if any(covering.covering(r.category, r.occurred_at)):
                continue
            fact = RecordedFact(
                0, event_id, r.category, r.value, r.occurred_at, r.source, r.line, r.offset
            )
            handler(folded, fact)
    for s in standing:
        for adjustment in s.summaries():
            projection.adjust(folded, adjustment)
    return projection.rows(projection.canonical(folded)), True


def expected_hours(state: ExpectedState) -> dict[Key, Any]:
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


def through(state: ExpectedState, until: datetime) -> ExpectedState:
    """The sources' expected state of the events that occurred at or before ``until``."""
    return _kept(state, lambda when: when <= until)


def within(state: ExpectedState, narrowing: Narrowing) -> ExpectedState:
    """The sources' expected state of the events in ``narrowing``'s time window."""
    return _kept(state, narrowing.moment)


def _kept(state: ExpectedState, keep: Callable[[datetime], bool]) -> ExpectedState:
    """The records whose time ``keep`` keeps (none without a timestamp), with their totals."""
    records = {
        i: r for i, r in state.records.items() if r.occurred_at is not None and keep(r.occurred_at)
    }
    totals: dict[str, list[Any]] = {}
    for r in records.values():
        entry = totals.setdefault(r.category, [0, 0])
        entry[0] += 1
        entry[1] = EXACT.add(entry[1], r.value)
    return replace(state, records=records, totals=totals)
