"""``eventfold reconstruct``: a trusted summary made to stand for a lost period, or retired.

Making one reads the summary (a category's count and total per row: CSV, TSV,
JSON or JSON Lines, as ``verify --expected`` reads them), reads each category's
raw events of the period that the store holds, and records in one commit the
``Reconstructions.Made`` event and, in each category's own stream, a
``Category.Reconstructed`` event at the version its raw events were read to: an
ingest that adds an event to one of those categories meanwhile makes the commit
fail, and it is made again from a fresh read. Retiring one does the same with
``Retired`` and ``Category.ReconstructionRetired``, counting the raw events of the
period recorded while it stood.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from eventfold.application.app import Eventfold
from eventfold.application.ingest.categories import find
from eventfold.application.pages import stream_pages
from eventfold.application.proving.expected import Columns, read_expected
from eventfold.application.proving.keyed import parse_moment
from eventfold.application.proving.numbers import NumberFormat
from eventfold.application.reconstructing.plan import (
    Plan,
    Reconstruction,
    load_plan,
)
from eventfold.application.recorded import RECORDED_TOPIC, stored_fact
from eventfold.domain.model import (
    EXACT,
    Category,
    ReconstructionError,
    Reconstructions,
    exact_add,
)
from eventfold.infra.errors import EventfoldError, StoreBusyError
from eventfold.projections.base import canonical_decimal
from eventfold.projections.builtin import CategoryTotals

ATTEMPTS = 5  # commits tried while ingest keeps adding events to the same categories
STREAM_PAGE = 10_000  # events of a category's stream read at a time
_RECONSTRUCTED: Any = Category.Reconstructed  # type: ignore[attr-defined]  # ``@event``
_RETIRED_MARK: Any = Category.ReconstructionRetired  # type: ignore[attr-defined]
_MARK_TOPIC = get_topic(_RECONSTRUCTED)


class ReconstructUsageError(EventfoldError):
    """A reconstruction asked for that cannot be made or retired (exit code 2)."""


@dataclass(frozen=True)
class Period:
    """``start <= t < end``, aware instants."""

    start: datetime
    end: datetime

    @classmethod
    def parse(cls, text: str) -> Period:
        """``START/END``: ISO 8601 dates or times, UTC where no offset is given."""
        first, sep, second = text.partition("/")
        if not sep or not first.strip() or not second.strip():
            msg = (
                f"--period {text!r}: expected START/END, such as "
                "2026-11-30T12:00Z/2026-11-30T18:00Z"
            )
            raise ReconstructUsageError(msg)
        try:
            start, end = parse_moment(first), parse_moment(second)
        except ValueError:
            msg = f"--period {text!r}: START and END must be ISO 8601 dates or times"
            raise ReconstructUsageError(msg) from None
        if not start < end:
            msg = f"--period {text!r}: the period must end after it starts"
            raise ReconstructUsageError(msg)
        return cls(start.astimezone(UTC), end.astimezone(UTC))

    def __str__(self) -> str:
        return f"{self.start.isoformat()}/{self.end.isoformat()}"


@dataclass
class Row:
    """One category of a reconstruction: the summary's figures beside the raw events'."""

    category: str
    count: int
    total: Decimal
    raw_count: int = 0  # the raw events of the period the store holds (see the report)
    raw_total: Decimal = Decimal(0)

    @property
    def difference(self) -> Decimal:
        """How far the summary's total is from the raw events': raw minus summary."""
        return EXACT.subtract(self.raw_total, self.total)


@dataclass
class Outcome:
    """What ``reconstruct`` did: the reconstruction made or retired, and per category the
    summary beside the raw events of its period (when made: those it replaces; when
    retired: every one the store holds now, the raw truth)."""

    action: str  # "made" or "retired"
    reconstruction: Reconstruction
    rows: list[Row] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        r = self.reconstruction
        return {
            "action": self.action,
            "reconstruction": reconstruction_json(r),
            "rows": [
                {
                    "category": row.category,
                    "count": row.count,
                    "total": canonical_decimal(row.total),
                    "raw_count": row.raw_count,
                    "raw_total": canonical_decimal(row.raw_total),
                    "difference": canonical_decimal(row.difference),
                }
                for row in self.rows
            ],
        }


def reconstruction_json(r: Reconstruction) -> dict[str, Any]:
    """A reconstruction as ``--json`` shows it."""
    return {
        "id": r.ident,
        "start": r.start.isoformat(),
        "end": r.end.isoformat(),
        "status": "standing" if r.retired_on is None else "retired",
        "categories": len(r.parts),
        "count": r.count,
        "total": canonical_decimal(r.total),
        "summary": {"path": r.path, "sha256": r.digest},
        "note": r.note,
        "made": {"at": r.made_on.isoformat(), "by": r.by, "position": r.made_at},
        "retired": None
        if r.retired_on is None
        else {
            "at": r.retired_on.isoformat(),
            "by": r.retired_by,
            "note": r.retire_note,
            "position": r.retired_at,
        },
    }


def who() -> str:
    """``user@host``: who made or retired a reconstruction (``EVENTFOLD_USER``, if set)."""
    given = os.environ.get("EVENTFOLD_USER")
    if given:
        return given
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def read_summary(
    path: str, columns: Columns | None = None, numbers: NumberFormat | None = None
) -> tuple[dict[str, tuple[int, Decimal]], str, str]:
    """The summary's count and total per category, its SHA-256 and absolute path.

    ``ExpectedUnusableError`` names where a row cannot be used; a summary must give
    every category's count as well as its total.
    """
    expected = read_expected(
        path, CategoryTotals(), columns, numbers, keep_empty=True, noun="a summary"
    )
    if not expected.complete:
        lacking = ", ".join(
            f"{measure} missing in {n} row{'' if n == 1 else 's'}"
            for measure, n in sorted(expected.without.items())
            if n
        )
        msg = f"{expected.path}: {lacking}: a reconstruction needs each category's count and total"
        raise ReconstructUsageError(msg)
    rows = {
        key[0]: (int(values["count"]), Decimal(values["total"]))
        for key, values in expected.rows.items()
    }
    for name, (count, total) in rows.items():
        if count <= 0 and total:
            msg = f"{expected.path}: category {name!r} has a total but {count} events"
            raise ReconstructUsageError(msg)
    digest = hashlib.sha256()
    with open(expected.path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return rows, digest.hexdigest(), expected.path


def make(
    app: Eventfold,
    summary: str,
    period: Period,
    note: str = "",
    columns: Columns | None = None,
    numbers: NumberFormat | None = None,
) -> Outcome:
    """Record ``summary`` as standing for the events of ``period`` (see the module)."""
    figures, digest, path = read_summary(summary, columns, numbers)
    by = who()

    def prepared() -> tuple[str, list[Any]]:
        registry = _registry(app)
        try:
            registry.check_period_free(period.start, period.end, list(figures))
        except ReconstructionError as e:
            raise ReconstructUsageError(str(e)) from None
        ident = f"R{len(registry.active) + len(registry.retired) + 1}"
        names = sorted(figures)
        versions = _versions(app, names)
        rows = {}
        marks: list[Any] = []
        for name in names:
            count, total = figures[name]
            raw = _raw_in_period(app, name, versions.get(name), period)
            rows[name] = [count, canonical_decimal(total), raw.count, canonical_decimal(raw.total)]
            marks.append(
                _mark(
                    name,
                    versions.get(name),
                    lambda c, i=ident, k=count, t=total: c.mark_reconstructed(
                        i, period.start, period.end, k, t
                    ),
                )
            )
        registry.make(ident, period.start, period.end, rows, digest, path, note, by)
        return ident, [registry, *marks]

    made = _recorded(app, prepared)
    outcome = Outcome("made", made)
    outcome.rows = [
        Row(name, p.count, p.total, p.replaced_count, p.replaced_total)
        for name, p in sorted(made.parts.items())
    ]
    return outcome


def retire(app: Eventfold, ident: str, note: str = "") -> Outcome:
    """End the reconstruction ``ident``: the raw events of its period count again."""
    by = who()

    def prepared() -> tuple[str, list[Any]]:
        r = _find(load_plan(app), ident)
        if r.retired_on is not None:
            msg = f"reconstruction {ident} was retired already ({r.retired_on.isoformat()})"
            raise ReconstructUsageError(msg)
        registry = _registry(app)
        names = sorted(r.parts)
        versions = _versions(app, names)
        held: dict[str, list[Any]] = {}
        marks: list[Any] = []
        for name in names:
            held[name] = _raw_in_period(app, name, versions.get(name), r, after_mark=ident).row()
            marks.append(_mark(name, versions.get(name), lambda c, i=ident: c.mark_retired(i)))
        registry.retire(ident, held, note, by)
        return ident, [registry, *marks]

    done = _recorded(app, prepared)
    outcome = Outcome("retired", done)
    outcome.rows = [
        Row(
            name,
            p.count,
            p.total,
            p.replaced_count + p.held_count,
            exact_add(p.replaced_total, p.held_total),
        )
        for name, p in sorted(done.parts.items())
    ]
    return outcome


def _recorded(app: Eventfold, prepared: Callable[[], tuple[str, list[Any]]]) -> Reconstruction:
    """Save what ``prepared`` gives (a reconstruction's id, and the registry and markers
    read afresh) in one commit; when a category gained an event since it was read (the
    commit conflicts), read and try again, up to ``ATTEMPTS`` times. The reconstruction
    as recorded."""
    ident = ""
    for _ in range(ATTEMPTS):
        ident, objects = prepared()
        try:
            app.save(*objects)
        except IntegrityError:
            continue
        return _find(load_plan(app), ident)
    raise _busy(ident)


def _busy(ident: str) -> StoreBusyError:
    msg = (
        f"reconstruction {ident}: its categories gained events {ATTEMPTS} times while it was "
        "being recorded (an ingest is writing to them); nothing was recorded: run it again "
        "when the ingest has stopped"
    )
    return StoreBusyError(msg)


def listing(app: Eventfold) -> list[Reconstruction]:
    """Every reconstruction, in the order they were made."""
    return load_plan(app).reconstructions


def _find(plan: Plan, ident: str) -> Reconstruction:
    for r in plan.reconstructions:
        if r.ident == ident:
            return r
    known = ", ".join(r.ident for r in plan.reconstructions) or "none"
    msg = f"no reconstruction {ident!r} in this store (made: {known})"
    raise ReconstructUsageError(msg)


def _registry(app: Eventfold) -> Reconstructions:
    found = find(app, Reconstructions, Reconstructions.create_id())
    return found if found is not None else Reconstructions()


def _versions(app: Eventfold, names: Sequence[str]) -> dict[str, int]:
    ids = {Category.create_id(name): name for name in names}
    found = app.backend.last_versions(app.process_recorder, list(ids))
    return {ids[i]: v for i, v in found.items()}


def _mark(name: str, version: int | None, trigger: Any) -> Any:
    """The category's marker: ``trigger`` applied to a new category (opened first), or an
    event of the marker's class made by ``trigger`` at the version after ``version`` (the
    category is not loaded: only its version matters)."""
    if version is None:
        category = Category(name)
        trigger(category)
        return category
    return trigger(_At(Category.create_id(name), version + 1))


@dataclass(frozen=True)
class _At:
    """Where a marker event goes: a category's id and the version it takes."""

    originator_id: UUID
    version: int

    def mark_reconstructed(
        self, ident: str, start: datetime, end: datetime, count: int, total: Decimal
    ) -> Any:
        return _RECONSTRUCTED(
            originator_id=self.originator_id,
            originator_version=self.version,
            timestamp=_RECONSTRUCTED.create_timestamp(),
            reconstruction=ident,
            start=start,
            end=end,
            count=count,
            total=total,
        )

    def mark_retired(self, ident: str) -> Any:
        return _RETIRED_MARK(
            originator_id=self.originator_id,
            originator_version=self.version,
            timestamp=_RETIRED_MARK.create_timestamp(),
            reconstruction=ident,
        )


@dataclass
class Raw:
    """The raw events of a period in one category's stream: count, exact total, and the
    smallest and largest value and earliest and latest time (None when there are none)."""

    count: int = 0
    total: Decimal = Decimal(0)
    low: Decimal | None = None
    high: Decimal | None = None
    first: datetime | None = None
    last: datetime | None = None

    def add(self, value: Decimal, when: datetime) -> None:
        self.count += 1
        self.total = exact_add(self.total, value)
        if self.low is None or value < self.low:
            self.low = value
        if self.high is None or value > self.high:
            self.high = value
        if self.first is None or when < self.first:
            self.first = when
        if self.last is None or when > self.last:
            self.last = when

    def row(self) -> list[Any]:
        """As a ``Retired`` event's ``held`` row (decimals and times as text)."""
        return [
            self.count,
            canonical_decimal(self.total),
            None if self.low is None else str(self.low),
            None if self.high is None else str(self.high),
            None if self.first is None else self.first.isoformat(),
            None if self.last is None else self.last.isoformat(),
        ]


def _raw_in_period(
    app: Eventfold,
    name: str,
    version: int | None,
    period: Period | Reconstruction,
    after_mark: str | None = None,
) -> Raw:
    """``name``'s raw events up to ``version`` that occurred in ``period``; with
    ``after_mark``, only those after that reconstruction's marker. The stream is read a
    page at a time (memory holds a page, however long the stream)."""
    raw = Raw()
    counting = after_mark is None
    if version is None:
        return raw
    for page in stream_pages(app, Category.create_id(name), version, STREAM_PAGE):
        for s in page:
            if s.topic == RECORDED_TOPIC:
                if counting:
                    fact = stored_fact(app, s)
                    when = fact.occurred_at
                    if when is not None and period.start <= when < period.end:
                        raw.add(fact.value, when)
            elif not counting and s.topic == _MARK_TOPIC:
                event: Any = app.mapper.to_domain_event(s)
                counting = event.reconstruction == after_mark
    return raw
