"""``eventfold explain CATEGORY``: the lineage of one total.

The projection is caught up first (``Projector.catchup``: from its newest
valid snapshot, written back when the store can be written, as ``catchup``
does); its position fixes the store's end for everything that follows, so
that the events read are exactly those the projection folded, whatever is
ingested meanwhile. Then the category's ``Recorded`` events up to that
position are read, a page at a time, and summed per source and per hour; what
ingest set aside for the category is read from the ``Source`` events
(``setaside.py``).

The projection's figures of the category come from its canonical state, by
the keys and measures it declares (``projections/base.py``): the rows whose
``category`` key part is the category, their count and decimal measures
summed (``category_totals``: one row; ``hourly_totals``: one per hour).
``category_checksum`` is the checksum of the canonical state cut down to
those rows. A projection without a ``category`` key, or without a count and a
decimal measure, keeps no total per category (``kept`` is False): the events
are listed, but there is nothing to compare them with.

Under reconstruction (``split.py``) the events are split, as they are read,
into those the total counts and those a standing reconstruction holds out of
it (per source and per hour too), and the comparison is exact: the
projection's figures must equal the raw events counted plus the summaries
standing (``expected``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from eventfold.application.admin.events import EventQuery, EventStream
from eventfold.application.app import Eventfold
from eventfold.application.progress import Progress
from eventfold.application.projecting import ProjectionReport, Projector
from eventfold.application.proving.setaside import SetAside, set_aside
from eventfold.application.proving.split import Figures, Split
from eventfold.domain.model import exact_add
from eventfold.infra.errors import UsageError
from eventfold.projections.base import (
    Projection,
    ShapeError,
    canonical_decimal,
    state_checksum,
)
from eventfold.projections.builtin import NO_HOUR


class UnknownCategoryError(UsageError):
    """No event of the store, recorded or set aside, names the category (exit code 2)."""

    label = "unknown category"


@dataclass
class Share:
    """The events of one source or one hour: how many, their exact total, (for a source)
    their first and last line, and those of them held out of the total (``held``)."""

    count: int = 0
    total: Decimal = Decimal(0)
    first_line: int = 0
    last_line: int = 0
    held: Figures = field(default_factory=Figures)

    def add(self, value: Decimal, line: int, held: bool = False) -> None:
        if not self.count or line < self.first_line:
            self.first_line = line
        self.last_line = max(self.last_line, line)
        self.count += 1
        self.total = exact_add(self.total, value)
        if held:
            self.held.add(value)

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "total": canonical_decimal(self.total)}


@dataclass
class Lineage:
    """Where one category's total comes from (module docstring)."""

    category: str
    caught_up: ProjectionReport
    events: Figures
    sources: dict[str, Share]  # source name -> its events, in order of first event
    hours: dict[str, Share]  # hour (ISO, UTC) or "none" -> its events, in hour order
    set_aside: SetAside
    kept: bool  # the projection keeps a count and total per category
    projected: Figures | None  # the projection's figures of the category (None: absent)
    category_checksum: str | None = None
    split: Split = field(default_factory=lambda: Split(False, []))

    @property
    def counted(self) -> Figures:
        """The raw events the total counts: every one but those held out of it."""
        return self.events.minus(self.split.held)

    @property
    def expected(self) -> Figures:
        """What the projection's figures must be: the raw events counted and the summaries
        standing (the events alone when no reconstruction stands)."""
        return self.counted.plus(self.split.reconstructed)

    @property
    def matches(self) -> bool | None:
        """Whether the projection's count and total are ``expected`` (None: not kept)."""
        if not self.kept:
            return None
        projected = self.projected or Figures(0, Decimal(0))
        expected = self.expected
        return (projected.count, projected.total) == (expected.count, expected.total)

    def to_json(self) -> dict[str, Any]:
        """The ``explain --json`` document (keys are only ever added)."""
        report = self.caught_up
        used = report.snapshot_used
        return {
            "category": self.category,
            "projection": report.projection,
            "position": report.position,
            "events": self.events.to_json(),
            "projection_total": None if self.projected is None else self.projected.to_json(),
            "sum_matches": self.matches,
            "sources": [
                {"source": name, **s.to_json()}
                | {"first_line": s.first_line, "last_line": s.last_line, "held": s.held.to_json()}
                for name, s in self.sources.items()
            ],
            "hours": [
                {"hour": hour, **s.to_json(), "held": s.held.to_json()}
                for hour, s in self.hours.items()
            ],
            "set_aside": self.set_aside.to_json(),
            "snapshot": None if used is None else used.to_json(),
            "caught_up_from": report.from_position,
            "events_applied": report.events_applied,
            "generation": report.generation,
            "projection_checksum": report.checksum,
            "category_checksum": self.category_checksum,
            "counted": self.counted.to_json(),
            **self.split.to_json(),
        }


def explain(
    app: Eventfold,
    projection: Projection[Any],
    category: str,
    *,
    progress: Progress | None = None,
    page: int | None = None,
) -> Lineage:
    """The lineage of ``category``'s total in ``projection`` (module docstring).

    ``UnknownCategoryError`` (with the closest categories) when no event, recorded
    or set aside, names it.
    """
    caught_up = Projector(app, app.state_dir, projection).catchup(progress=progress)
    kept, projected, checksum = _projected(projection, caught_up.canonical, category)
    query = EventQuery((category,), exact=True)
    stream = EventStream(app, query, last=caught_up.position, page=page, progress=progress)
    split = Split.of(stream.standing, category, projection.folds_reconstructions)
    sources: dict[str, Share] = {}
    hours: dict[str, Share] = {}
    for fact in stream:
        held = split.see(fact)
        source = sources.get(fact.source)
        if source is None:
            source = sources[fact.source] = Share()
        source.add(fact.value, fact.line, held)
        hour = _hour(fact.occurred_at)
        bucket = hours.get(hour)
        if bucket is None:
            bucket = hours[hour] = Share()
        bucket.add(fact.value, fact.line, held)
    aside = set_aside(app, category, set(sources))
    if not stream.count and not aside.any and projected is None and not split.shares:
        raise UnknownCategoryError(_unknown(category, _categories(projection, caught_up.canonical)))
    ordered = dict(sorted(hours.items(), key=lambda item: (item[0] == NO_HOUR, item[0])))
    return Lineage(
        category,
        caught_up,
        Figures(stream.count, stream.total),
        sources,
        ordered,
        aside,
        kept,
        projected,
        checksum,
        split,
    )


def _hour(when: Any) -> str:
    """The hour bucket of a timestamp, as ``hourly_totals`` keys it."""
    if when is None:
        return NO_HOUR
    hour: str = when.replace(minute=0, second=0, microsecond=0).isoformat()
    return hour


def _projected(
    projection: Projection[Any], canonical: Any, category: str
) -> tuple[bool, Figures | None, str | None]:
    """Whether the projection keeps figures per category (its keys name a ``category``
    and its measures a count and a decimal); the category's figures, summed over its
    rows, and the checksum of the canonical state cut down to its rows (None, None
    when it has none)."""
    measures = projection.measures
    count = next((m for m, kind in measures.items() if kind == "count"), None)
    total = next((m for m, kind in measures.items() if kind == "decimal"), None)
    if "category" not in projection.keys or count is None or total is None:
        return False, None, None
    at = projection.keys.index("category")
    try:
        rows = {k: v for k, v in projection.rows(canonical).items() if k[at] == category}
    except ShapeError:
        return False, None, None
    if not rows:
        return True, None, None
    figures = Figures(0, Decimal(0))
    for value in rows.values():
        figures = Figures(
            figures.count + int(value[count]), exact_add(figures.total, Decimal(value[total]))
        )
    return True, figures, state_checksum(projection.from_rows(rows))


def _categories(projection: Projection[Any], canonical: Any) -> list[str]:
    if "category" not in projection.keys:
        return []
    at = projection.keys.index("category")
    try:
        return sorted({k[at] for k in projection.rows(canonical)})
    except ShapeError:
        return []


def _unknown(category: str, names: list[str]) -> str:
    from difflib import get_close_matches

    close = get_close_matches(category, names, n=3)
    hint = f" (did you mean {' or '.join(close)}?)" if close else ""
    return f"no category {category!r} in the store: no event, recorded or set aside, names it{hint}"
