"""The built-in projections: ``category_totals`` and ``hourly_totals``.

Both are exact (decimal sums in the domain's exact context) and independent
of the order of events, so a catch-up from any snapshot, a rebuild and a
parallel rebuild give the same state. ``category_totals`` folds reconstructions
(a summary's count and total stand for the raw events of its period);
``hourly_totals`` does not: a summary of a period has no hours, so it shows the
raw events only.
"""

from __future__ import annotations

import decimal
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import msgspec

from eventfold.domain.model import EXACT, Category
from eventfold.projections.base import (
    Adjustment,
    PageColumns,
    Projection,
    RecordedFact,
    RecordedPage,
    canonical_decimal,
    handles,
)

# category -> [count, total, min, max, first occurred_at, last occurred_at], and for a
# category that a reconstruction stands for in part, three more: the count and total of
# that part, and how many reconstructions stand for it. min and max are of the raw
# events folded (infinite before the first).
Totals = dict[str, list[Any]]
_NO_LOW, _NO_HIGH = Decimal("Infinity"), Decimal("-Infinity")
NO_HOUR = "none"
_add = EXACT.add
# A page is folded fact by fact when the page before it had fewer than GROUPED facts a
# category (its first SAMPLE facts, when folded fact by fact), else a category at a time:
# a step per category costs about as much as four per fact.
SAMPLE = 64
GROUPED = 4


class CategoryTotals(Projection[Totals]):
    """Per category: exact total, count, min, max, first and last timestamp."""

    name = "category_totals"
    version = 1
    root = "categories"
    keys = ("category",)
    measures = MappingProxyType({"count": "count", "total": "decimal"})
    plain_documents = True
    folds_reconstructions = True
    _spread = False  # whether the last page folded had a fact or two a category

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A subclass that folds raw events its own way (a ``Recorded`` handler or a
        ``fold_page`` of its own) folds reconstructions only if it says so
        (``folds_reconstructions = True``, with an ``adjust`` to match): what a
        reconstruction replaces and holds are the store's raw events of its period,
        which such a subclass may not count."""
        super().__init_subclass__(**kwargs)
        own = (
            cls.handlers.get(Category.Recorded) != "recorded"
            or "recorded" in vars(cls)
            or "fold_page" in vars(cls)
        )
        if own and "folds_reconstructions" not in vars(cls):
            cls.folds_reconstructions = False

    def initial(self) -> Totals:
        return {}

    @handles(Category.Recorded)
    def recorded(self, state: Totals, fact: RecordedFact) -> None:
        entry = state.get(fact.category)
        value, when = fact.value, fact.occurred_at
        if entry is None:
            state[fact.category] = [1, value, value, value, when, when]
            return
        entry[0] += 1
        entry[1] = _add(entry[1], value)
        _widen(entry, value, value, when, when)

    def fold_page(self, state: Totals, page: RecordedPage) -> None:
        """The handler's state, a category at a time: its values summed, compared and
        its timestamps compared by the built-ins (``sum``, ``min``, ``max``) in the
        exact context; after a page spread over many categories, fact by fact
        (``_fold_rows``). Ties keep the earlier fact, as the handler does. A subclass
        with a ``Recorded`` handler of its own is given each fact, as before."""
        if self.handler(Category.Recorded) != self.recorded or (
            type(self).recorded is not CategoryTotals.recorded
        ):
            super().fold_page(state, page)
            return
        if self._spread:  # the page before was spread over many categories
            columns = page.columns()
            self._fold_rows(state, columns)
            sample = columns.categories[:SAMPLE]
            self._spread = len(set(sample)) * GROUPED > len(sample)
            return
        groups = page.by_category()
        self._spread = len(groups) * GROUPED > len(page)
        with decimal.localcontext(EXACT):
            for name, (values, whens) in groups.items():
                entry = state.get(name)
                low, high = min(values), max(values)
                first = min(whens) if whens else None
                last = max(whens) if whens else None
                if entry is None:
                    total = sum(values[1:], values[0])
                    state[name] = [len(values), total, low, high, first, last]
                    continue
                entry[0] += len(values)
                entry[1] = sum(values, entry[1])
                _widen(entry, low, high, first, last)

    @staticmethod
    def _fold_rows(state: Totals, page: PageColumns) -> None:
        """The handler's state changes, inlined, fact by fact: for a page whose categories
        have a fact or two each, where a step per category costs more than one per fact."""
        get = state.get
        for name, value, when in zip(*page, strict=True):
            entry = get(name)
            if entry is None:
                state[name] = [1, value, value, value, when, when]
                continue
            entry[0] += 1
            entry[1] = _add(entry[1], value)
            if value < entry[2]:
                entry[2] = value
            if value > entry[3]:
                entry[3] = value
            if when is not None:  # the last first: events mostly come in time order
                last = entry[5]
                if last is None:
                    entry[4] = entry[5] = when
                elif when > last:
                    entry[5] = when
                elif when < entry[4]:
                    entry[4] = when

    def adjust(self, state: Totals, adjustment: Adjustment) -> None:
        """The summary's count and total, and the raw events it stands for, in the
        category's count and total; the summary's part kept beside them (``figures``)."""
        a = adjustment
        entry = state.get(a.category)
        if entry is None:
            entry = state[a.category] = [0, Decimal(0), _NO_LOW, _NO_HIGH, None, None]
        entry[0] += a.summary_count + a.raw_count
        entry[1] = _add(_add(entry[1], a.summary_total), a.raw_total)
        if a.raw_low is not None and a.raw_high is not None:
            _widen(entry, a.raw_low, a.raw_high, a.raw_first, a.raw_last)
        if len(entry) == 6:
            entry.extend((0, Decimal(0), 0))
        entry[6] += a.summary_count
        entry[7] = _add(entry[7], a.summary_total)
        entry[8] += 1 if a.made else -1

    def merge(self, a: Totals, b: Totals) -> Totals:
        return self.merge_into(
            {name: list(entry) for name, entry in a.items()},
            {name: list(entry) for name, entry in b.items()},
        )

    def merge_into(self, a: Totals, b: Totals) -> Totals:
        """``merge``, in ``a``, with ``b``'s entries taken where ``a`` has none."""
        get = a.get
        for name, entry in b.items():
            mine = get(name)
            if mine is None:
                a[name] = entry
                continue
            mine[0] += entry[0]
            mine[1] = _add(mine[1], entry[1])
            _widen(mine, entry[2], entry[3], entry[4], entry[5])
            if len(entry) == 9:
                if len(mine) == 6:
                    mine.extend((0, Decimal(0), 0))
                mine[6] += entry[6]
                mine[7] = _add(mine[7], entry[7])
                mine[8] += entry[8]
        return a

    def to_json(self, state: Totals) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        entries = state.values()
        firsts, lasts = _iso_texts([e[4] for e in entries]), _iso_texts([e[5] for e in entries])
        for (name, e), first, last in zip(state.items(), firsts, lasts, strict=True):
            entry = doc[name] = {
                "count": e[0],
                "total": str(e[1]),
                "min": str(e[2]),
                "max": str(e[3]),
                "first": first,
                "last": last,
            }
            if len(e) == 9:
                entry["reconstructed"] = {"count": e[6], "total": str(e[7]), "parts": e[8]}
        return doc

    def state_json(self, state: Totals) -> bytes:
        """``canonical_json(to_json(state))``, with no document in between: each category a
        ``_Row`` whose fields ``msgspec`` writes in name order, decimals as ``str`` writes
        them, timestamps as ``to_json`` does (tested against it)."""
        if type(self).to_json is not CategoryTotals.to_json or not self.plain_documents:
            return super().state_json(state)
        entries = state.values()
        firsts, lasts = _iso_texts([e[4] for e in entries]), _iso_texts([e[5] for e in entries])
        rows = [
            _Row(e[0], e[1], e[2], e[3], first, last)
            if len(e) == 6
            else _Row(e[0], e[1], e[2], e[3], first, last, _Part(e[6], e[7], e[8]))
            for e, first, last in zip(entries, firsts, lasts, strict=True)
        ]
        return self.canonical_json(dict(zip(state, rows, strict=True)))

    def from_json(self, doc: dict[str, Any]) -> Totals:
        state: Totals = {}
        for name, e in doc.items():
            entry = state[name] = [
                int(e["count"]),
                Decimal(e["total"]),
                Decimal(e["min"]),
                Decimal(e["max"]),
                None if e["first"] is None else datetime.fromisoformat(e["first"]),
                None if e["last"] is None else datetime.fromisoformat(e["last"]),
            ]
            part = e.get("reconstructed")
            if part is not None:
                entry.extend((int(part["count"]), Decimal(part["total"]), int(part["parts"])))
        return state

    def dump_state(self, state: Totals) -> bytes:
        """The entries as columns (names, counts, totals, minimums, maximums, firsts,
        lasts), encoded by ``msgspec`` (decimals as their strings, timestamps in RFC 3339:
        the UTC instants ingest records, and any offset of whole minutes, come back equal
        and printing the same); the parts that reconstructions stand for beside them."""
        columns = list(zip(*state.values(), strict=False))[:6] or [()] * 6
        parts = {name: e[6:] for name, e in state.items() if len(e) == 9}
        return _encode_entries([list(state), *columns, parts])

    def load_state(self, data: bytes) -> Totals:
        """``dump_state``'s state: its columns zipped back into entries, in C. The
        entries by name, as an earlier release wrote them (a part of a shared rebuild
        left in the database), are read too."""
        if data[:2] != b"[[":
            return _load_entries(data)
        names, counts, totals, lows, highs, firsts, lasts, parts = _decode_columns(data)
        decimals = (map(Decimal, column) for column in (totals, lows, highs))
        entries = map(list, zip(counts, *decimals, firsts, lasts, strict=True))
        return _with_parts(dict(zip(names, entries, strict=True)), parts)

    def canonical(self, state: Totals) -> dict[str, Any]:
        """``{"categories": {NAME: {"count": N, "total": "DECIMAL"}}}`` (README)."""
        return {
            "categories": {
                name: {"count": e[0], "total": canonical_decimal(e[1])}
                for name, e in state.items()
                if e[0]
            }
        }

    def figures(self, state: Totals) -> dict[str, dict[str, Any]]:
        """Per category with events: ``min``, ``max`` (decimal strings, or None when only a
        reconstruction stands for its events) and ``first``, ``last`` (ISO timestamps, or
        None when no event had one), of the raw events folded; and, where a
        reconstruction stands for part of it, that part's ``reconstructed_count`` and
        ``reconstructed_total``."""
        figures: dict[str, dict[str, Any]] = {}
        rows = [(name, e) for name, e in state.items() if e[0]]
        entries = [e for _, e in rows]
        firsts, lasts = _iso_texts([e[4] for e in entries]), _iso_texts([e[5] for e in entries])
        lows, highs = _texts([e[2] for e in entries]), _texts([e[3] for e in entries])
        for (name, e), first, last, low, high in zip(rows, firsts, lasts, lows, highs, strict=True):
            row = figures[name] = {
                "min": None if low == _NO_LOW_TEXT else low,
                "max": None if high == _NO_HIGH_TEXT else high,
                "first": first,
                "last": last,
            }
            if len(e) == 9 and e[8]:
                row["reconstructed_count"] = e[6]
                row["reconstructed_total"] = canonical_decimal(e[7])
        return figures


_encode_entries = msgspec.json.Encoder().encode
_decode_texts = msgspec.json.Decoder(list[str | None]).decode
_MINUTE = timedelta(minutes=1)


def _iso_texts(moments: list[datetime | None]) -> list[str | None]:
    """``[m.isoformat() for m in moments]`` (None stays None), formatted in one call.

    ``msgspec`` writes ISO 8601 as ``isoformat`` does, but a zero offset as ``Z``
    (which no other text in the list can hold, so ``Z"`` becomes ``+00:00"``) and an
    offset to the minute; a moment whose offset has seconds is formatted by
    ``isoformat`` (tested against it)."""
    texts = _decode_texts(_encode_entries(moments).replace(b'Z"', b'+00:00"'))
    for i, moment in enumerate(moments):
        if moment is not None and moment.tzinfo is not None and moment.tzinfo is not UTC:
            offset = moment.utcoffset()
            if offset is not None and offset % _MINUTE:
                texts[i] = moment.isoformat()
    return texts


def _texts(values: list[Decimal]) -> list[str]:
    """``[str(v) for v in values]`` in one call: ``msgspec`` writes a decimal as ``str``
    does (tested)."""
    return _decode_texts(_encode_entries(values))  # type: ignore[return-value]


_NO_LOW_TEXT, _NO_HIGH_TEXT = str(_NO_LOW), str(_NO_HIGH)
_Moments = list[datetime | None]
_decode_columns = msgspec.json.Decoder(
    tuple[
        list[str],
        list[int],
        list[str],
        list[str],
        list[str],
        _Moments,
        _Moments,
        dict[str, tuple[int, Decimal, int]],
    ]
).decode


_Entry = tuple[int, Decimal, Decimal, Decimal, datetime | None, datetime | None]
_decode_entries = msgspec.json.Decoder(
    dict[str, _Entry] | tuple[dict[str, _Entry], dict[str, tuple[int, Decimal, int]]]
).decode


def _load_entries(data: bytes) -> Totals:
    """The state an earlier release's ``dump_state`` wrote: the entries by name, then,
    in a list with them, the parts that reconstructions stand for."""
    decoded = _decode_entries(data)
    entries, parts = (decoded, {}) if isinstance(decoded, dict) else decoded
    return _with_parts({name: list(entry) for name, entry in entries.items()}, parts)


def _with_parts(state: Totals, parts: dict[str, tuple[int, Decimal, int]]) -> Totals:
    """``state`` with each category's reconstructed part (``dump_state``'s) after its
    six figures."""
    for name, part in parts.items():
        state[name].extend(part)
    return state


class _Part(msgspec.Struct):
    """A category's ``reconstructed`` member of ``to_json``'s document."""

    count: int
    total: Decimal
    parts: int


class _Row(msgspec.Struct, omit_defaults=True):
    """A category's member of ``to_json``'s document (``reconstructed`` only where a
    reconstruction stands for part of it); encoded with its fields in name order."""

    count: int
    total: Decimal
    min: Decimal
    max: Decimal
    first: str | None
    last: str | None
    reconstructed: _Part | None = None


# (category, hour) -> [count, total]; hour is "YYYY-MM-DDTHH:00:00+00:00" or "none"
Hourly = dict[tuple[str, str], list[Any]]


class HourlyTotals(Projection[Hourly]):
    """Per category and UTC hour of the event's timestamp: total and count."""

    name = "hourly_totals"
    version = 1
    root = "hours"
    keys = ("category", "hour")
    measures = MappingProxyType({"count": "count", "total": "decimal"})
    time_key = "hour"
    plain_documents = True

    def initial(self) -> Hourly:
        return {}

    @handles(Category.Recorded)
    def recorded(self, state: Hourly, fact: RecordedFact) -> None:
        when = fact.occurred_at
        hour = (
            NO_HOUR if when is None else when.replace(minute=0, second=0, microsecond=0).isoformat()
        )
        entry = state.get((fact.category, hour))
        if entry is None:
            state[(fact.category, hour)] = [1, fact.value]
        else:
            entry[0] += 1
            entry[1] = EXACT.add(entry[1], fact.value)

    def merge(self, a: Hourly, b: Hourly) -> Hourly:
        return self.merge_into(
            {key: list(entry) for key, entry in a.items()},
            {key: list(entry) for key, entry in b.items()},
        )

    def merge_into(self, a: Hourly, b: Hourly) -> Hourly:
        """``merge``, in ``a``, with ``b``'s entries taken where ``a`` has none."""
        for key, entry in b.items():
            mine = a.get(key)
            if mine is None:
                a[key] = entry
            else:
                mine[0] += entry[0]
                mine[1] = EXACT.add(mine[1], entry[1])
        return a

    def to_json(self, state: Hourly) -> list[list[Any]]:
        return [[c, h, e[0], str(e[1])] for (c, h), e in state.items()]

    def from_json(self, doc: list[list[Any]]) -> Hourly:
        return {(c, h): [int(n), Decimal(t)] for c, h, n, t in doc}

    def canonical(self, state: Hourly) -> dict[str, Any]:
        """``{"hours": {NAME: {HOUR: {"count": N, "total": "DECIMAL"}}}}``."""
        hours: dict[str, dict[str, Any]] = {}
        for (category, hour), e in state.items():
            hours.setdefault(category, {})[hour] = {"count": e[0], "total": canonical_decimal(e[1])}
        return {"hours": hours}


def _widen(entry: list[Any], low: Decimal, high: Decimal, first: Any, last: Any) -> None:
    """Widen a category's lowest and highest value and first and last time (ties keep
    what the entry has: the earlier fact's)."""
    if low < entry[2]:
        entry[2] = low
    if high > entry[3]:
        entry[3] = high
    if first is not None:
        if entry[4] is None or first < entry[4]:
            entry[4] = first
        if entry[5] is None or last > entry[5]:
            entry[5] = last
