"""The projection contract: a name, a code version, an initial state, handlers.

A projection folds ``Recorded`` facts (one per ``Category.Recorded`` event of
the store) into a state. It declares:

- ``name`` and ``version`` (bump it when the handlers change: snapshots of
  another version are not used);
- ``initial()``, the empty state;
- one handler per domain event type, marked ``@handles(EventClass)``;
- ``to_json``/``from_json`` for snapshots (JSON, never pickle);
- ``canonical``, the document whose SHA-256 is the state checksum;
- optionally ``merge(a, b)``: the state of two disjoint parts of the store,
  for parallel rebuilds (partitioned by category); ``merge_into(a, b)`` the same
  for parts not used again, free to merge in place;
- optionally ``folds_reconstructions`` and ``adjust(state, adjustment)``: how a
  trusted summary of a lost period (``eventfold reconstruct``) changes the state;
- optionally ``fold_page(state, page)``: a whole page of facts at once (the
  default applies the ``Recorded`` handler fact by fact). A projection that
  reads only each category's values and timestamps folds
  ``page.by_category()`` or ``page.columns()``, which are decoded without
  building a fact per event;
- optionally the shape of its canonical state, so that ``verify`` compares two
  states row by row: ``root`` (the document's one top-level key, or None),
  ``keys`` (the names of a row's key parts, outermost first: the canonical
  document nests that many mappings), ``measures`` (a row's values and how
  they compare: ``"count"``, a whole number, or ``"decimal"``, an exact
  decimal in text; none: a row's value compares whole) and ``time_key`` (the
  key part that is the ISO start of a time bucket).

Users add projections by subclassing and registering them through the
entry-point group ``eventfold.projections`` or naming them ``module:Class``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, Generic, NamedTuple, Protocol, TypeVar

import msgspec

from eventfold.domain.model import Category

S = TypeVar("S")
Handler = Callable[[Any, Any, Any], None]


class RecordedFact(NamedTuple):
    """One ``Category.Recorded`` event as projections see it (decoded fast)."""

    notification_id: int
    event_id: str
    category: str
    value: Decimal
    occurred_at: datetime | None
    source: str
    line: int
    offset: int


@dataclass(frozen=True, slots=True)
class Adjustment:
    """One category's share of a reconstruction being made or retired, as a projection
    folds it (``Projection.adjust``).

    ``summary_count`` and ``summary_total`` are the summary's: added when it is made,
    taken away (as negative figures) when it is retired. ``raw_count`` and ``raw_total`` are the raw
    events of the period that the projection had folded and that the summary now
    stands for: taken away (negative) when it is made, put back (positive, with those
    recorded in between) when it is retired. While a reconstruction stands, the raw
    events of its period are held out of the projection's fold. ``made``: whether it is
    made (else retired). When retired, ``raw_low``, ``raw_high``, ``raw_first`` and
    ``raw_last`` are the smallest and largest value and the earliest and latest time of
    the raw events it held out (None when it held none, or had no time).
    """

    notification_id: int
    reconstruction: str
    category: str
    start: datetime
    end: datetime
    summary_count: int
    summary_total: Decimal
    raw_count: int
    raw_total: Decimal
    made: bool = True
    raw_low: Decimal | None = None
    raw_high: Decimal | None = None
    raw_first: datetime | None = None
    raw_last: datetime | None = None


class CategoryGroup(NamedTuple):
    """The facts of one category in a page: their values, in notification order, and
    the timestamps of those that have one (``occurred_at`` not None), in order."""

    values: list[Decimal]
    occurred_at: list[datetime]


class PageColumns(NamedTuple):
    """The facts of a page by column, in notification order: each one's category, value
    and ``occurred_at`` (None where it has none)."""

    categories: list[str]
    values: list[Decimal]
    occurred_at: list[datetime | None]


class RecordedPage(Protocol):
    """A page of ``Recorded`` facts, in notification order, decoded only in the form
    asked for (each form at most once per page)."""

    def __len__(self) -> int: ...

    def facts(self) -> list[RecordedFact]:
        """Every fact of the page, in notification order."""
        ...

    def by_category(self) -> dict[str, CategoryGroup]:
        """The page's facts per category, categories in order of their first fact."""
        ...

    def columns(self) -> PageColumns:
        """The page's categories, values and timestamps, one per fact, in order (decoded
        as lean as ``by_category``, and from the same decoding)."""
        ...


def handles(event_class: type) -> Callable[[Handler], Handler]:
    """Mark a method as the handler of one domain event type."""

    def mark(method: Handler) -> Handler:
        method._eventfold_handles = event_class  # type: ignore[attr-defined]
        return method

    return mark


class Projection(Generic[S]):
    """Subclass, set ``name`` and ``version``, and write the handlers."""

    name: ClassVar[str] = ""
    version: ClassVar[int] = 1
    handlers: ClassVar[dict[type, str]] = {}
    root: ClassVar[str | None] = None
    keys: ClassVar[tuple[str, ...]] = ("key",)
    measures: ClassVar[Mapping[str, str]] = {}
    time_key: ClassVar[str | None] = None
    # True when ``to_json`` and ``canonical`` give only objects with string keys,
    # lists, strings, integers, booleans and None (no float): their canonical JSON is
    # then encoded by ``msgspec``, the same bytes as ``canonical_bytes`` (tested), in a
    # fraction of the time (``canonical_json``).
    plain_documents: ClassVar[bool] = False
    # True when ``adjust`` folds reconstructions (trusted summaries of lost events): the
    # raw events of a period that a reconstruction stands for are then held out of its
    # fold. A projection that does not (the default) folds the raw events only.
    folds_reconstructions: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.name:
            msg = f"{cls.__name__} must set a name"
            raise TypeError(msg)
        found = dict(getattr(cls, "handlers", {}))
        for attr, value in vars(cls).items():
            event_class = getattr(value, "_eventfold_handles", None)
            if event_class is not None:
                found[event_class] = attr
        cls.handlers = found

    def initial(self) -> S:
        raise NotImplementedError

    def handler(self, event_class: type) -> Callable[[S, Any], None] | None:
        """The bound handler of ``event_class``, or None if this projection ignores it."""
        attr = self.handlers.get(event_class)
        return None if attr is None else getattr(self, attr)

    def fold_page(self, state: S, page: RecordedPage) -> None:
        """Apply a page of ``Recorded`` facts, in order, to ``state``.

        The default applies the ``Recorded`` handler to each fact. An override
        must leave exactly the state that the handler, fact by fact, would.
        """
        handler = self.handler(Category.Recorded)
        if handler is not None:
            for fact in page.facts():
                handler(state, fact)

    def adjust(self, state: S, adjustment: Adjustment) -> None:
        """Fold one category's share of a reconstruction (``folds_reconstructions``)."""
        raise NotImplementedError

    def to_json(self, state: S) -> Any:
        raise NotImplementedError

    def from_json(self, doc: Any) -> S:
        raise NotImplementedError

    def dump_state(self, state: S) -> bytes:
        """The state as one line of JSON for another process of the same rebuild (a
        worker hands its part to the parent, or stores it in the database for the
        worker of a shared rebuild that merges); ``load_state`` reads it back exactly,
        with the same code version. Not a kept form: the default is ``to_json``'s
        document."""
        return json.dumps(self.to_json(state), separators=(",", ":")).encode()

    def load_state(self, data: bytes) -> S:
        """The state ``dump_state`` gave."""
        return self.from_json(json.loads(data))

    def canonical(self, state: S) -> Any:
        """The document of the canonical checksum (see ``canonical_bytes``)."""
        raise NotImplementedError

    def figures(self, state: S) -> dict[str, dict[str, Any]] | None:
        """Optional: per row of the canonical state, figures shown beside it (in the
        report's table and its ``--json`` ``figures``) that the checksum does not cover."""
        return None

    def merge(self, a: S, b: S) -> S:
        """The state of two disjoint sets of categories (parallel rebuilds)."""
        msg = f"projection {self.name} cannot merge partial states"
        raise NotImplementedError(msg)

    def merge_into(self, a: S, b: S) -> S:
        """``merge(a, b)`` where neither ``a`` nor ``b`` is used again (the parts of a
        parallel rebuild): free to change ``a`` and take ``b``'s contents rather than
        copy them. By default, ``merge``."""
        return self.merge(a, b)

    def state_json(self, state: S) -> bytes:
        """``canonical_json(to_json(state))``: a snapshot's ``state`` member. A projection
        may give these very bytes another way, faster."""
        return self.canonical_json(self.to_json(state))

    def canonical_json(self, doc: Any) -> bytes:
        """``canonical_bytes(doc)`` of one of this projection's documents."""
        return _sorted_json(doc) if self.plain_documents else canonical_bytes(doc)

    def checksum(self, state: S) -> str:
        return hashlib.sha256(self.canonical_json(self.canonical(state))).hexdigest()

    def rows(self, canonical: Any) -> dict[Key, Any]:
        """The rows of a canonical document: key parts (``keys``) to the row's value.

        ``ShapeError`` names where the document is not nested as declared."""
        doc = canonical
        if self.root is not None:
            if not isinstance(canonical, Mapping) or self.root not in canonical:
                raise ShapeError(f"no {self.root!r} key at its top")
            doc = canonical[self.root]
        rows: dict[Key, Any] = {}
        _flatten(doc, len(self.keys), (), rows)
        return rows

    def from_rows(self, rows: Mapping[Key, Any]) -> Any:
        """The canonical document of ``rows``: ``rows`` undone."""
        doc: dict[str, Any] = {}
        for key, value in rows.items():
            level = doc
            for part in key[:-1]:
                level = level.setdefault(part, {})
            level[key[-1]] = value
        return doc if self.root is None else {self.root: doc}


_sorted_json = msgspec.json.Encoder(order="sorted").encode
Key = tuple[str, ...]


class ShapeError(ValueError):
    """A document is not nested as a projection's ``keys`` declare."""


def _flatten(doc: Any, depth: int, prefix: Key, rows: dict[Key, Any]) -> None:
    if not isinstance(doc, Mapping):
        where = "/".join(prefix) or "the top"
        raise ShapeError(f"{where} is not an object ({depth} more key levels expected)")
    for name, value in doc.items():
        key = (*prefix, str(name))
        if depth == 1:
            rows[key] = value
        else:
            _flatten(value, depth - 1, key, rows)


def canonical_bytes(doc: Any) -> bytes:
    """UTF-8 JSON, keys sorted by code point, no spaces, non-ASCII as itself."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def state_checksum(doc: Any) -> str:
    """SHA-256, lowercase hex, of ``canonical_bytes(doc)``."""
    return hashlib.sha256(canonical_bytes(doc)).hexdigest()


def canonical_decimal(value: Decimal) -> str:
    """The exact value with no exponent and no trailing fractional zeros; zero is "0"."""
    if not value:
        return "0"
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text
