"""Where in time two states differ: ``verify --by hour|day``.

Both sides are per category and UTC hour (the store's ``hourly_totals`` and
the expected hours: from sources, or an expected file for ``hourly_totals``),
summed per bucket over the categories kept. Events without a timestamp are a
bucket of their own (``none``). With sources, each bucket also names the files
and line ranges its missing and extra events come from (``Origins``), counted
over every event, not a sample.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from eventfold.domain.model import EXACT
from eventfold.projections.base import Key, canonical_decimal
from eventfold.projections.builtin import NO_HOUR

BY = ("hour", "day")


@dataclass
class Span:
    """Events of one kind from one file in one bucket: how many, lines first to last."""

    events: int = 0
    first_line: int = 0
    last_line: int = 0

    def add(self, line: int) -> None:
        self.events += 1
        self.first_line = line if not self.first_line else min(self.first_line, line)
        self.last_line = max(self.last_line, line)

    def to_json(self, source: str) -> dict[str, Any]:
        return {"source": source, "events": self.events} | {
            "first_line": self.first_line,
            "last_line": self.last_line,
        }


@dataclass
class Bucket:
    """One time bucket: the count and exact total on each side."""

    start: str  # "2026-11-30T14:00:00+00:00" (hour), "2026-11-30" (day) or "none"
    expected: list[Any] = field(default_factory=lambda: [0, Decimal(0)])
    actual: list[Any] = field(default_factory=lambda: [0, Decimal(0)])
    missing: dict[str, Span] = field(default_factory=dict)  # source -> span
    extra: dict[str, Span] = field(default_factory=dict)
    counts: bool = True  # False: the expected side gave no counts; totals alone compare

    @property
    def bad(self) -> bool:
        changed = self.expected[1] != self.actual[1]
        return changed or (self.counts and self.expected[0] != self.actual[0])

    @property
    def delta(self) -> tuple[int, Decimal]:
        return self.actual[0] - self.expected[0], EXACT.subtract(self.actual[1], self.expected[1])

    def to_json(self) -> dict[str, Any]:
        count, total = self.delta
        return {
            "bucket": self.start,
            "status": "changed" if self.bad else "match",
            "expected": _side(self.expected),
            "actual": _side(self.actual),
            "delta": {"count": count if self.counts else None, "total": canonical_decimal(total)},
            "missing_from": [s.to_json(name) for name, s in self.missing.items()],
            "extra_from": [s.to_json(name) for name, s in self.extra.items()],
        }


def _side(entry: list[Any]) -> dict[str, Any]:
    return {"count": entry[0], "total": canonical_decimal(entry[1])}


@dataclass
class Timeline:
    """Every bucket with events on either side, in time order (``none`` last)."""

    by: str
    buckets: list[Bucket]
    counts: bool = True

    @property
    def bad(self) -> list[Bucket]:
        return [b for b in self.buckets if b.bad]

    @property
    def untimed(self) -> Bucket | None:
        """The bucket of events without a timestamp, if either side has one."""
        last = self.buckets[-1] if self.buckets else None
        return last if last is not None and last.start == NO_HOUR else None

    def to_json(self) -> dict[str, Any]:
        bad = [b for b in self.bad if b.start != NO_HOUR]
        untimed = self.untimed
        return {
            "by": self.by,
            "counts_compared": self.counts,
            "buckets": [b.to_json() for b in self.buckets],
            "bad_buckets": len(self.bad),
            "first_bad": bad[0].start if bad else None,
            "last_bad": bad[-1].start if bad else None,
            "without_timestamp": None
            if untimed is None
            else {"expected": untimed.expected[0], "actual": untimed.actual[0]},
        }


class TimelineBuilder:
    """Buckets summed from hourly rows, then the origins of missing and extra events."""

    def __init__(self, by: str) -> None:
        if by not in BY:
            raise ValueError(by)
        self.by = by
        self.counts = True
        self._buckets: dict[str, Bucket] = {}

    def bucket_of_hour(self, hour: str) -> str:
        """The bucket of an hour key (``2026-11-30T14:00:00+00:00`` or ``none``)."""
        if hour == NO_HOUR or self.by == "hour":
            return hour
        return hour[:10]

    def bucket_of_time(self, when: Any) -> str:
        """The bucket of an event's time (a UTC datetime, or None)."""
        if when is None:
            return NO_HOUR
        hour = when.strftime("%Y-%m-%dT%H:00:00+00:00")
        return self.bucket_of_hour(hour)

    def rows(self, expected: Mapping[Key, Any], actual: Mapping[Key, Any]) -> None:
        """Add hourly rows (``(category, hour) -> {"count", "total"}``) of both sides."""
        for side, rows in ((0, expected), (1, actual)):
            for (_, hour), value in rows.items():
                bucket = self._bucket(self.bucket_of_hour(hour))
                entry = bucket.expected if side == 0 else bucket.actual
                if value.get("count") is None:
                    self.counts = False
                entry[0] += int(value.get("count") or 0)
                entry[1] = EXACT.add(entry[1], Decimal(value["total"]))

    def event(self, kind: str, row: Mapping[str, Any], when: Any) -> None:
        """Note a missing or extra event (a row of the event lists) in its bucket."""
        if kind not in ("missing", "extra"):
            return
        bucket = self._bucket(self.bucket_of_time(when))
        spans = bucket.missing if kind == "missing" else bucket.extra
        spans.setdefault(str(row.get("source")), Span()).add(int(row.get("line") or 0))

    def build(self) -> Timeline:
        timed = sorted(k for k in self._buckets if k != NO_HOUR)
        order = timed + ([NO_HOUR] if NO_HOUR in self._buckets else [])
        buckets = [self._buckets[k] for k in order]
        for bucket in buckets:
            bucket.counts = self.counts
        return Timeline(self.by, buckets, self.counts)

    def _bucket(self, start: str) -> Bucket:
        bucket = self._buckets.get(start)
        if bucket is None:
            bucket = self._buckets[start] = Bucket(start)
        return bucket
