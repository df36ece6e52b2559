"""Two states of one projection compared row by row, by the keys it declares.

A row is a key (the projection's ``keys``: for ``category_totals`` a
category, for ``hourly_totals`` a category and an hour) and a value: the
projection's ``measures`` (a count, an exact decimal total) or, for a
projection that declares none, the row's value as a whole. ``Narrowing``
(``--category``, ``--since``, ``--until``) picks the rows and events compared.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from eventfold.domain.model import EXACT
from eventfold.infra.errors import MissingArgumentError
from eventfold.projections.base import Key, Projection, canonical_decimal


@dataclass(frozen=True)
class Difference:
    """One key's row on both sides; None where a side has no row for it."""

    key: Key
    expected: Any
    actual: Any
    key_names: tuple[str, ...] = ("category",)
    measures: Mapping[str, str] | None = None  # None: values compare whole

    @property
    def category(self) -> str:
        """The ``category`` key part, or else the key's parts joined by ``/``."""
        if "category" in self.key_names:
            return self.key[self.key_names.index("category")]
        return "/".join(self.key)

    @property
    def status(self) -> str:
        """``missing`` (expected only), ``extra`` (actual only), ``changed`` or ``match``."""
        if self.expected is None:
            return "extra"
        if self.actual is None:
            return "missing"
        return "match" if same_row(self.expected, self.actual, self.measures) else "changed"

    @property
    def delta(self) -> dict[str, Any] | None:
        """Per measure, actual minus expected (a count as an integer, a decimal as
        canonical text); None for a projection without measures."""
        if not self.measures:
            return None
        exp, act = self.expected or {}, self.actual or {}
        delta: dict[str, Any] = {}
        for name, kind in self.measures.items():
            if self.expected is not None and exp.get(name) is None:
                delta[name] = None  # not given on the expected side: not compared
            elif kind == "count":
                delta[name] = int(act.get(name, 0)) - int(exp.get(name, 0))
            else:
                diff = EXACT.subtract(Decimal(act.get(name, "0")), Decimal(exp.get(name, "0")))
                delta[name] = canonical_decimal(diff)
        return delta

    def to_json(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "key": dict(zip(self.key_names, self.key, strict=True)),
            "status": self.status,
            "expected": jsonable(self.expected),
            "actual": jsonable(self.actual),
            "delta": self.delta,
        }


def jsonable(value: Any) -> Any:
    """``value`` with each exact decimal as its text (JSON has no exact decimals)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


def same_row(expected: Any, actual: Any, measures: Mapping[str, str] | None) -> bool:
    """Whether two rows are equal: measure by measure (a measure the expected row does
    not give is not compared), or whole."""
    if not measures:
        return bool(expected == actual)
    for name, kind in measures.items():
        want = expected.get(name)
        if want is None:
            continue
        have = actual.get(name)
        if have is None:
            return False
        if kind == "count":
            if int(want) != int(have):
                return False
        elif Decimal(want) != Decimal(have):
            return False
    return True


def compare(
    projection: Projection[Any], expected: Mapping[Key, Any], actual: Mapping[Key, Any]
) -> list[Difference]:
    """Every key of either side, in key order, with its rows."""
    keys = sorted(expected.keys() | actual.keys())
    measures = dict(projection.measures) or None
    names = projection.keys
    return [Difference(k, expected.get(k), actual.get(k), names, measures) for k in keys]


class TimeRangeError(MissingArgumentError):
    """``--since`` is not before ``--until`` (exit code 2)."""


def check_window(since: datetime | None, until: datetime | None) -> None:
    """``TimeRangeError`` when ``since`` is not before ``until`` (no event can be in it)."""
    if since is not None and until is not None and since >= until:
        msg = (
            f"--since {since.isoformat()} is not before --until "
            f"{until.isoformat()}: no event can be in that range"
        )
        raise TimeRangeError(msg)


@dataclass(frozen=True)
class Narrowing:
    """What ``--category`` (names or globs) and ``--since``/``--until`` (UTC; since
    inclusive, until exclusive) keep; empty keeps everything."""

    categories: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    literal: frozenset[str] = frozenset()  # given names that are categories: never patterns

    @property
    def timed(self) -> bool:
        return self.since is not None or self.until is not None

    def __post_init__(self) -> None:
        check_window(self.since, self.until)

    def __bool__(self) -> bool:
        return bool(self.categories) or self.timed

    def category(self, name: str) -> bool:
        """Whether a category is kept: equal to a given name or matched by its glob."""
        if not self.categories:
            return True
        return any(
            name == c or (c not in self.literal and fnmatch.fnmatchcase(name, c))
            for c in self.categories
        )

    def naming(self, names: Iterable[str]) -> Narrowing:
        """This narrowing with the given categories that are among ``names`` (the
        categories known) read as names only, not as patterns."""
        known = frozenset(c for c in self.categories if c in set(names))
        return replace(self, literal=self.literal | known) if known else self

    def moment(self, when: datetime | None) -> bool:
        """Whether an event's time is kept; without a timestamp it is not, once a
        window is given."""
        if not self.timed:
            return True
        if when is None:
            return False
        when = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
        if self.since is not None and when < self.since:
            return False
        return self.until is None or when < self.until

    def rows(self, projection: Projection[Any], rows: Mapping[Key, Any]) -> dict[Key, Any]:
        """The rows kept: by the ``category`` key part and by the time key (a bucket is
        kept when its start is in the window; the bucket of events without a time is not)."""
        if not self:
            return dict(rows)
        names = projection.keys
        at = names.index("category") if "category" in names else None
        clock = names.index(projection.time_key) if projection.time_key in names else None
        kept: dict[Key, Any] = {}
        for key, value in rows.items():
            if at is not None and not self.category(key[at]):
                continue
            if clock is not None and self.timed and not self.moment(bucket_start(key[clock])):
                continue
            kept[key] = value
        return kept

    def describe(self) -> str:
        """The narrowing in words, for reports: ``categories a, b*; since ...``."""
        parts = []
        if self.categories:
            parts.append("categories " + ", ".join(self.categories))
        if self.since is not None:
            parts.append(f"since {self.since.isoformat()}")
        if self.until is not None:
            parts.append(f"until {self.until.isoformat()}")
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "categories": list(self.categories),
            "since": None if self.since is None else self.since.isoformat(),
            "until": None if self.until is None else self.until.isoformat(),
        }


def bucket_start(text: str) -> datetime | None:
    """A time key's moment, or None for the bucket of events without a time."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def parse_moment(text: str) -> datetime:
    """An ISO 8601 date or time as given to ``--since``/``--until``; without an offset
    it is UTC. ``ValueError`` when it is not one."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def key_text(names: Sequence[str], key: Key) -> str:
    """A key in words, for messages: ``category=a, hour=...``."""
    return ", ".join(f"{n}={k}" for n, k in zip(names, key, strict=True))
