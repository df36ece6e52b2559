"""The domain model: one stream per category, one per ingested source, and one of the
reconstructions.

``Category`` records every accepted source event of one category: the unit of
partitioning and of projection. ``Source`` records what happened to the lines
of one source that did not become a ``Category.Recorded`` event (quarantined
lines and conflicts) and how far ingest has got (``Source.Advanced``).

Values are exact decimals; sums use ``EXACT`` so that no digit is ever lost.
"""

from __future__ import annotations

import decimal
import functools
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any, ClassVar
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

NAMESPACE = uuid5(NAMESPACE_URL, "https://eventfold.dev/ns")

# Exact decimal arithmetic: enough precision for any sum of accepted values
# (their exponents are bounded), and an error rather than a rounded result.
EXACT = decimal.Context(
    prec=decimal.MAX_PREC,
    Emax=decimal.MAX_EMAX,
    Emin=decimal.MIN_EMIN,
    traps=[decimal.Inexact, decimal.InvalidOperation, decimal.Overflow],
)


_ZERO = Decimal(0)


def exact_add(a: Decimal, b: Decimal) -> Decimal:
    """``a + b`` with no rounding."""
    return EXACT.add(a, b)


class Category(Aggregate):
    """The stream of one category: every accepted source event, in arrival order."""

    @staticmethod
    def create_id(name: str) -> UUID:
        return uuid5(NAMESPACE, "category:" + name)

    @event("Opened")
    def __init__(self, name: str) -> None:
        self.name = name
        self.count = 0
        self.total = Decimal(0)

    class Recorded(Aggregate.Event):
        """An accepted source event: its id, category, exact value, time and position."""

        event_id: str
        category: str
        value: Decimal
        occurred_at: datetime | None
        source: str
        line: int
        offset: int

    @event(Recorded)
    def record(
        self,
        event_id: str,
        category: str,
        value: Decimal,
        occurred_at: datetime | None,
        source: str,
        line: int,
        offset: int,
    ) -> None:
        """Record one source event: its id, exact value, time and source position."""
        self.tally(value)

    def tally(self, value: Decimal) -> None:
        """The state change of one ``Recorded`` event (bulk ingest applies it too)."""
        self.count += 1
        self.total = exact_add(self.total, value)

    def fast_forward(self, count: int, total: Decimal, version: int, modified_on: datetime) -> None:
        """The state after ``count`` more ``Recorded`` events whose values sum to ``total``,
        the last at ``version``.

        For events whose stored form exists already, or is made in bulk beside this
        call: bulk ingest, and loading a category from its snapshot and stored events.
        """
        self.count += count
        self.total = exact_add(self.total, total)
        self.version = version
        self.modified_on = modified_on

    @event("Reconstructed")
    def mark_reconstructed(
        self, reconstruction: str, start: datetime, end: datetime, count: int, total: Decimal
    ) -> None:
        """A trusted summary stands for this category's events that occurred in
        ``start <= t < end`` (``Reconstructions`` holds its figures). Recorded in the
        category's own stream, at the version its raw events were read to, so that no
        raw event can slip in between."""

    @event("ReconstructionRetired")
    def mark_retired(self, reconstruction: str) -> None:
        """The reconstruction no longer stands: the raw events of its period count again."""


def exact_sum(values: list[Decimal]) -> Decimal:
    """The sum of ``values``, with no rounding (``0 + v1 + v2 ...`` in ``EXACT``)."""
    return functools.reduce(EXACT.add, values, _ZERO)


class Source(Aggregate):
    """What ingest did with one source: progress, quarantined lines, conflicts."""

    @staticmethod
    def create_id(identity: str) -> UUID:
        return uuid5(NAMESPACE, "source:" + identity)

    @event("Opened")
    def __init__(self, identity: str) -> None:
        self.identity = identity
        self.position = 0
        self.line = 0
        self.digest = ""
        self.quarantined = 0
        self.conflicts = 0
        self.generation = 0
        self.counts: dict[str, int] = {}
        self.renamed_from: str | None = None

    # Attributes added after the first release: a snapshot taken before has none of them.
    _LATER: ClassVar[Mapping[str, Any]] = MappingProxyType({"counts": {}, "renamed_from": None})

    def __getattr__(self, name: str) -> Any:
        """Called only for a missing attribute: one that an older snapshot lacks."""
        try:
            default = self._LATER[name]
        except KeyError:
            raise AttributeError(name) from None
        return dict(default) if isinstance(default, dict) else default

    @event("Advanced")
    def advance(self, position: int, line: int, digest: str, counts: dict[str, int]) -> None:
        """Ingest has consumed the source up to byte ``position`` (after ``line``).

        ``digest`` is the BLAKE2b digest of the bytes before ``position``, so a
        rewritten source can be told apart from one that only grew. For a
        compressed source, positions and the digest are of its uncompressed
        bytes. ``counts`` are this commit's (read, ingested, duplicates,
        conflicts, invalid, ...); the aggregate keeps their sums.
        """
        self.position, self.line, self.digest = position, line, digest
        self._add_counts(counts)

    @event("Renamed")
    def adopt(self, original: str, position: int, line: int, digest: str) -> None:
        """The first ``position`` bytes of this source are those of the source ``original``
        (a rotated file under a new name), ingested under that name: they are not read
        again."""
        self.renamed_from = original
        self.position, self.line, self.digest = position, line, digest

    @event("Rescanned")
    def rescan(self, reason: str) -> None:
        """Start again from byte 0 (the source changed); dedup keeps it exactly once."""
        self.generation += 1
        self.position, self.line, self.digest = 0, 0, ""

    @event("Quarantined")
    def quarantine(self, line: int, offset: int, reason: str, raw: str) -> None:
        """A line broke the source rules; it is kept with why, not applied."""
        self.quarantined += 1

    @event("Recounted")
    def recount(self, counts: dict[str, int]) -> None:
        """Counts move between kinds after the fact (``counts`` are signed changes): a
        partition of a partitioned ingest recorded ids that, in the documented order of
        the files, an earlier file of another partition holds, so they are duplicates or
        conflicts, not ingested."""
        self._add_counts(counts)

    def _add_counts(self, counts: dict[str, int]) -> None:
        """``counts`` added to the sums kept, in a new dict."""
        merged = dict(self.counts)
        for key, count in counts.items():
            merged[key] = merged.get(key, 0) + count
        self.counts = merged

    @event("Conflicted")
    def conflict(
        self, event_id: str, line: int, offset: int, first: dict[str, Any], later: dict[str, Any]
    ) -> None:
        """An id seen before came again with different content; the first one stands."""
        self.conflicts += 1


class Fingerprint(Aggregate):
    """The sources that begin with the same first line (the digest of its bytes).

    How a rotated file that reappears under a new name is recognised: its first
    line leads to the sources it may continue, and the digest of their
    ingested prefix decides.
    """

    @staticmethod
    def create_id(digest: str) -> UUID:
        return uuid5(NAMESPACE, "fingerprint:" + digest)

    @event("Opened")
    def __init__(self, digest: str) -> None:
        self.digest = digest
        self.identities: list[str] = []

    @event("Noted")
    def note(self, identity: str) -> None:
        """The source ``identity`` begins with this first line."""
        self.identities.append(identity)


class ReconstructionError(ValueError):
    """A reconstruction that cannot be made or retired (the message says why)."""


class Reconstructions(Aggregate):
    """Every reconstruction of the store: trusted summaries that stand for lost events.

    ``Made`` records one summary of one period: per category, the count and exact
    total it stands for, and the count and total of the raw events of that period
    that the store held when it was made (``replaced``: a projection takes them out,
    so that nothing is counted twice). ``Retired`` ends one: the raw events of its
    period count again, and ``held`` gives the raw events recorded for the period
    after it was made. Figures are canonical decimal strings:
    ``rows = {category: [count, total, replaced_count, replaced_total]}`` and
    ``held = {category: [count, total, min, max, first, last]}`` (the held events'
    smallest and largest value and earliest and latest ISO time, None where none). One
    stream, so that every fold reads all of them at once.
    """

    @staticmethod
    def create_id() -> UUID:
        return uuid5(NAMESPACE, "reconstructions")

    @event("Opened")
    def __init__(self) -> None:
        self.active: dict[str, dict[str, Any]] = {}
        self.retired: list[str] = []

    def check_period_free(self, start: datetime, end: datetime, categories: list[str]) -> None:
        """``ReconstructionError`` if ``start < end`` fails, or if a category already has a
        reconstruction in effect whose period overlaps this one."""
        if not start < end:
            msg = f"the period must end after it starts: {start.isoformat()}/{end.isoformat()}"
            raise ReconstructionError(msg)
        names = set(categories)
        for ident, made in self.active.items():
            if made["start"] < end and start < made["end"]:
                shared = sorted(names.intersection(made["categories"]))
                if shared:
                    msg = (
                        f"reconstruction {ident} ({made['start'].isoformat()}/"
                        f"{made['end'].isoformat()}) already stands for {shared[0]!r}"
                        f"{f' and {len(shared) - 1} more' if len(shared) > 1 else ''} in an "
                        "overlapping period: retire it first"
                    )
                    raise ReconstructionError(msg)

    @event("Made")
    def make(
        self,
        reconstruction: str,
        start: datetime,
        end: datetime,
        rows: dict[str, list[Any]],
        digest: str,
        path: str,
        note: str,
        by: str,
    ) -> None:
        """A summary of ``start <= t < end`` stands for the events of its categories."""
        self.active[reconstruction] = {
            "start": start,
            "end": end,
            "categories": list(rows),
        }

    @event("Retired")
    def retire(self, reconstruction: str, held: dict[str, list[Any]], note: str, by: str) -> None:
        """The reconstruction no longer stands; ``held`` as the class says."""
        self.active.pop(reconstruction, None)
        self.retired.append(reconstruction)
