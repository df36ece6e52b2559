"""``eventfold events``: the recorded events that make up totals, in store order.

The events are the store's ``Category.Recorded`` events, read a page at a time
(``recorded.py``: one decoding call per page) up to the store's end when the
stream is made, and filtered as they are read: nothing but the page at hand is
held, so a store of any size is listed in bounded memory.

A query selects by:

- category: any of the names given, each matching a category equal to it or,
  as a glob pattern (``fnmatch``, case-sensitive), the categories it matches;
- time: ``since`` (inclusive) and ``until`` (exclusive) on the event's own
  timestamp (``occurred_at``). An event without a timestamp is in no time
  range: with either bound it is left out (and counted as ``untimed``);
- source: the recorded source name (a file's real path, ``-`` for standard
  input, a replay's source name), as ``quarantine --source`` matches it.

``count`` and ``total`` are of every event selected (an exact sum), whether it
was listed or not (``listed(limit)``). Of those, ``held_count`` and
``held_total`` are the events that a reconstruction standing as of the store's
end holds out of ``category_totals``' total (``held_by``; the store's
reconstructions are read once, when the stream is made:
``reconstructing/standing.py``).
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from json.encoder import encode_basestring
from typing import Any

from eventfold.application.admin.quarantine import source_matches
from eventfold.application.app import Eventfold
from eventfold.application.ingest.categories import stored
from eventfold.application.pages import PAGE
from eventfold.application.progress import NOTIFICATIONS, READING_EVENTS, Progress, tell
from eventfold.application.proving.keyed import check_window
from eventfold.application.reconstructing.plan import load_plan
from eventfold.application.reconstructing.standing import standing_as_of
from eventfold.application.recorded import recorded_pages
from eventfold.domain.model import Category, exact_add
from eventfold.projections.base import RecordedFact, canonical_decimal

_GLOB = frozenset("*?[")


def parse_time(text: str) -> datetime:
    """An instant given on the command line: ISO 8601 (a date alone is its midnight; no
    zone means UTC, as in sources). ``ValueError`` says why not."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        msg = f"expected an ISO 8601 date or time (2024-05-01, 2024-05-01T13:00:00Z), not {text!r}"
        raise ValueError(msg) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@dataclass(frozen=True)
class EventQuery:
    """Which recorded events: of ``categories`` (names or glob patterns; empty: every
    category), with ``since <= occurred_at < until`` (either bound may be None), from
    the sources ``source`` names (None: every source)."""

    categories: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    source: str | None = None
    exact: bool = False  # categories are names only, never patterns (``explain``)
    literal: frozenset[str] = frozenset()  # names the store has a category of: never patterns
    _seen: dict[str, bool] = field(default_factory=dict, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        check_window(self.since, self.until)

    @property
    def timed(self) -> bool:
        """Whether a time bound is given (events without a timestamp are then left out)."""
        return self.since is not None or self.until is not None

    def wants_category(self, name: str) -> bool:
        """Whether category ``name`` is selected (remembered per name)."""
        found = self._seen.get(name)
        if found is None:
            found = self._seen[name] = not self.categories or any(
                name == wanted
                or (
                    not self.exact
                    and wanted not in self.literal
                    and fnmatch.fnmatchcase(name, wanted)
                )
                for wanted in self.categories
            )
        return found

    def wants_source(self, name: str) -> bool:
        """Whether events of the source ``name`` are selected (remembered per name)."""
        if self.source is None:
            return True
        key = "\0source:" + name  # beside the categories, never equal to one
        found = self._seen.get(key)
        if found is None:
            found = self._seen[key] = source_matches(name, self.source)
        return found

    def in_range(self, when: datetime) -> bool:
        """``since <= when < until`` (a timestamp without a zone is UTC)."""
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return (self.since is None or when >= self.since) and (
            self.until is None or when < self.until
        )

    def needles(self) -> list[bytes] | None:
        """What a page's stored states must hold to have an event of the query: each
        category as its JSON string; None when that cannot be told from the bytes (no
        category given, a pattern, or a name that JSON may escape)."""
        if not self.categories:
            return None
        found = []
        for name in self.categories:
            quoted = encode_basestring(name)
            plain = quoted == f'"{name}"' and name.isascii() and name.isprintable()
            if not plain or (not self.exact and name not in self.literal and _GLOB & set(name)):
                return None
            found.append(quoted.encode())
        return found


def event_json(fact: RecordedFact, held_by: str | None = None) -> dict[str, Any]:
    """One event of ``events --json`` and ``--jsonl`` (keys are only ever added): its
    ``value`` is the exact decimal as recorded, ``occurred_at`` ISO 8601 or null,
    ``held_by`` the id of the reconstruction that holds it out of the total, or null."""
    return {
        "notification_id": fact.notification_id,
        "event_id": fact.event_id,
        "category": fact.category,
        "value": str(fact.value),
        "occurred_at": None if fact.occurred_at is None else fact.occurred_at.isoformat(),
        "source": fact.source,
        "line": fact.line,
        "offset": fact.offset,
        "held_by": held_by,
    }


CSV_COLUMNS = tuple(event_json(RecordedFact(0, "", "", Decimal(0), None, "", 0, 0)))


def category_exists(app: Eventfold, name: str) -> bool:
    """Whether the store has a category named exactly ``name`` (its stream has an event)."""
    return stored(app, Category.create_id(name))


class EventStream:
    """The events of ``query``, in store order (notification id), read as iterated.

    The store's end is fixed when the stream is made (``last``, or the newest
    notification then). ``count``, ``total`` and ``untimed`` grow as events are
    read, and with them ``held_count``, ``held_total`` and ``holding`` (the events held
    out of the total per reconstruction id, in the order met); ``pages`` counts the pages
    read. ``progress`` is told the notifications read, of the store's.
    """

    def __init__(
        self,
        app: Eventfold,
        query: EventQuery,
        *,
        last: int | None = None,
        page: int | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.app, self.progress = app, progress
        patterns = [n for n in query.categories if _GLOB & set(n) and not query.exact]
        named = frozenset(n for n in patterns if category_exists(app, n))
        self.query = dataclasses.replace(query, literal=named) if named else query
        self.last = (app.recorder.max_notification_id() or 0) if last is None else last
        self.page = page or PAGE
        self.count = 0  # events selected so far
        self.total = Decimal(0)  # their exact sum
        self.untimed = 0  # events left out by a time bound for having no timestamp
        self.pages = 0
        self.standing = standing_as_of(load_plan(app), self.last)
        self._holds = bool(self.standing)  # a reconstruction stands: events may be held
        self.held_count = 0  # events selected that a standing reconstruction holds out
        self.held_total = Decimal(0)
        self.holding: dict[str, int] = {}  # reconstruction id -> events it holds out

    def held_by(self, fact: RecordedFact) -> str | None:
        """The id of the reconstruction standing as of the stream's end that holds ``fact``
        out of ``category_totals``' total, or None."""
        if not self._holds:
            return None
        r = self.standing.holding(fact)
        return None if r is None else r.ident

    def _count(self, fact: RecordedFact) -> None:
        self.count += 1
        self.total = exact_add(self.total, fact.value)
        if self._holds:
            held = self.held_by(fact)
            if held is not None:
                self.held_count += 1
                self.held_total = exact_add(self.held_total, fact.value)
                self.holding[held] = self.holding.get(held, 0) + 1

    def __iter__(self) -> Iterator[RecordedFact]:
        needles = self.query.needles()
        for page in recorded_pages(self.app, 0, self.last, self.page):
            self.pages += 1
            if needles is None or any(page.mentions(n) for n in needles):
                yield from self._selected(page.facts())
            tell(self.progress, READING_EVENTS, page.last_id, self.last, NOTIFICATIONS)
        tell(self.progress, READING_EVENTS, self.last, self.last, NOTIFICATIONS)

    def _selected(self, facts: list[RecordedFact]) -> Iterator[RecordedFact]:
        query = self.query
        if not (query.categories or query.source or query.timed):  # every event
            for fact in facts:
                self._count(fact)
                yield fact
            return
        for fact in facts:
            if not query.wants_category(fact.category) or not query.wants_source(fact.source):
                continue
            if query.timed:
                when = fact.occurred_at
                if when is None:
                    self.untimed += 1
                    continue
                if not query.in_range(when):
                    continue
            self._count(fact)
            yield fact

    def listed(self, limit: int | None, *, count_rest: bool = True) -> Iterator[RecordedFact]:
        """The first ``limit`` events (None: all), read once. With ``count_rest``, once the
        last is listed the rest are read and counted (``count``, ``total``), not listed."""
        events = iter(self)
        if limit is None:
            yield from events
            return
        for _ in range(limit):
            fact = next(events, None)
            if fact is None:
                return
            yield fact
        if count_rest:
            for _ in events:
                pass

    def summary(self) -> dict[str, Any]:
        """``count`` and ``total`` (canonical decimal: the projection's form), ``untimed``,
        and ``held`` (``count``, ``total`` and the ``reconstructions`` that hold them out):
        the keys that close ``events --json``."""
        return {
            "count": self.count,
            "total": canonical_decimal(self.total),
            "untimed": self.untimed,
            "held": {
                "count": self.held_count,
                "total": canonical_decimal(self.held_total),
                "reconstructions": list(self.holding),
            },
        }
