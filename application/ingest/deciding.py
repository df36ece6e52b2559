"""Deciding a batch: which lines become ``Category.Recorded`` events, which repeat an id.

A line whose id was not seen before (in the store, or earlier in the batch)
is recorded on its category's aggregate; a repeated id is a duplicate (same
content) or a conflict (other content, recorded on the ``Source`` with both
versions); an invalid line is quarantined. With a partition, only its own
categories are recorded (``partition.py``). ``Decider.apply`` returns the
batch's ``Commit``: the events to append, as columns, in order.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from operator import itemgetter
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from eventfold.application.app import Eventfold
from eventfold.application.ingest.byfield import recorded_by_field
from eventfold.application.ingest.categories import load_category
from eventfold.application.ingest.partition import Partition
from eventfold.application.ingest.quarantine import QuarantineFile
from eventfold.application.ingest.reading import ParsedBatch
from eventfold.application.ingest.report import SAMPLES, ConflictSeen, IngestReport, InvalidLine
from eventfold.application.ingest.resuming import HashingReader
from eventfold.application.ingest.rules import SourceEvent
from eventfold.application.ingest.tracking import record_name
from eventfold.application.recorded import RECORDED_TOPIC, RecordedCodec
from eventfold.domain.model import EXACT, Category, Fingerprint, Source, exact_sum
from eventfold.infra.errors import EventfoldError
from eventfold.infra.filestore.format import EventColumns
from eventfold.infra.filestore.shapes import ByField

# The notification id a partition's dedup index gives an id whose first occurrence
# another partition records (notification ids start at 1, so none is 0).
OTHER_PARTITION = 0
GROUPED = 8  # a batch of at least this many events a category is decided a category at a time
NEVER = 1 << 62  # the version of a snapshot that is never due (no snapshotting)
ZERO = Decimal(0)
_add = EXACT.add


class Stream:
    """A category's stream as this run knows it: its id, its version (counting the batch
    being decided), the version from which its next snapshot is due, and its aggregate
    once loaded (kept up to date); until then, its version when this run met it
    (``base``) and what this run added since (count, exact total, the last batch's time).

    One small object per category met, changed in place event by event: a batch
    whose thousand events go to a thousand categories costs no step per category.
    """

    __slots__ = ("base", "category", "count", "due", "id", "modified", "total", "version")

    def __init__(self, stream_id: UUID, version: int, due: int) -> None:
        self.id, self.version, self.due, self.base = stream_id, version, due, version
        self.category: Category | None = None
        self.count = 0
        self.total = ZERO
        self.modified: datetime | None = None

    def record(
        self, value: Decimal, timestamp: datetime, loaded: dict[Stream, list[Decimal]]
    ) -> int:
        """Count one more event of ``value``, decided in the batch of ``timestamp``; its
        version. Before the aggregate is loaded the run's count and total are kept here;
        after, the value waits in ``loaded`` until the batch fast-forwards it."""
        version = self.version = self.version + 1
        if self.category is None:
            self.count += 1
            self.total = _add(self.total, value)
            self.modified = timestamp
        else:
            tallied = loaded.get(self)
            if tallied is None:
                tallied = loaded[self] = []
            tallied.append(value)
        return version

    def record_many(
        self, values: list[Decimal], timestamp: datetime, loaded: dict[Stream, list[Decimal]]
    ) -> int:
        """``record`` of each of ``values`` in turn, at once; the first one's version."""
        first = self.version + 1
        self.version += len(values)
        if self.category is None:
            self.count += len(values)
            self.total = functools.reduce(_add, values, self.total)
            self.modified = timestamp
        else:
            loaded.setdefault(self, []).extend(values)
        return first


def record_grouped(
    streams: dict[str, Stream],
    names: list[str],
    values: list[Decimal],
    timestamp: datetime,
    loaded: dict[Stream, list[Decimal]],
) -> tuple[list[UUID], list[int], list[str]]:
    """``Stream.record`` of each event (category ``names[i]``, value ``values[i]``), a
    step per category (``Stream.record_many``): each event's stream id and version, and
    the categories whose snapshot falls due, in the order of the events that reach it.
    The same streams, ``loaded`` and answers as a step per event (tested); the events'
    places in each category are found by a sort, and written back, in C."""
    count = len(names)
    order = sorted(range(count), key=names.__getitem__)  # stable: each category's in order
    numbered: list[int] = [0] * count
    reached: list[tuple[int, str]] = []
    ids: dict[str, UUID] = {}
    for name, group in itertools.groupby(order, key=names.__getitem__):
        places = list(group)
        stream, k = streams[name], len(places)
        ids[name] = stream.id
        taken = [values[i] for i in places] if k < 4 else list(itemgetter(*places)(values))
        first = stream.record_many(taken, timestamp, loaded)
        list(map(numbered.__setitem__, places, range(first, first + k)))
        if first <= stream.due <= stream.version:
            reached.append((places[stream.due - first], name))
    reached.sort()
    return list(map(ids.__getitem__, names)), numbered, [name for _, name in reached]


class DedupCollisionError(EventfoldError):
    """Two different ids share a 128-bit key: never silently merged."""


@dataclass
class SourceRun:
    """One ingest run over one source (not to be confused with an index's sorted runs)."""

    source: Source
    name: str
    fd: int | None
    report: IngestReport
    quarantine: QuarantineFile
    hasher: Any
    hashed: int  # bytes of the source covered by ``hasher``
    tee: HashingReader | None = None  # a compressed file's stream, hashed at each commit
    fingerprint: Fingerprint | None = None  # to note the source in, at its first commit

    @property
    def tracking_name(self) -> str:
        return record_name(self.source.id, self.source.generation)


@dataclass
class Commit:
    """What one batch adds to the store, in order, as columns."""

    parsed: ParsedBatch
    events: EventColumns = field(default_factory=lambda: EventColumns([], [], [], []))
    recorded: list[int] = field(default_factory=list)  # column index of each Recorded event
    kept: list[int] = field(default_factory=list)  # index in parsed of each Recorded event
    by_field: dict[str, ByField] = field(default_factory=dict)  # states split, by topic
    recorded_keys: list[bytes] = field(default_factory=list)
    recorded_digests: list[bytes] = field(default_factory=list)
    elsewhere_keys: list[bytes] = field(default_factory=list)  # first seen, another partition's
    elsewhere_digests: list[bytes] = field(default_factory=list)
    first_seen: dict[bytes, int] = field(default_factory=dict)  # id key -> index in parsed
    invalid: list[InvalidLine] = field(default_factory=list)
    due: list[str] = field(default_factory=list)  # categories whose snapshot falls due here
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("read", "ingested", "duplicates", "conflicts", "invalid"), 0
        )
    )

    def extend(self, stored: list[StoredEvent]) -> None:
        """Append events the library's mapper made (aggregates' other events)."""
        for column, values in zip(self.events, EventColumns.of(stored), strict=True):
            column.extend(values)  # type: ignore[attr-defined]


def describe(event: SourceEvent, source: str, line: int, offset: int) -> dict[str, Any]:
    return {
        "category": event.category,
        "value": str(event.value),
        "occurred_at": event.occurred_iso,
        "source": source,
        "line": line,
        "offset": offset,
    }


def recorded_occurrence(
    recorded: Any, nid: int | None = None
) -> tuple[SourceEvent, dict[str, Any]]:
    """A stored ``Category.Recorded`` as the source event it records, and described as
    a conflict's version is (with its notification id ``nid``, when given)."""
    when = recorded.occurred_at
    event = SourceEvent(
        recorded.event_id,
        recorded.category,
        Decimal(recorded.value),
        when,
        None if when is None else when.isoformat(),
    )
    described = describe(event, recorded.source, recorded.line, recorded.offset)
    if nid is not None:
        described["notification_id"] = nid
    return event, described


class Decider:
    """The writer's decisions, with the streams it has met (id and version of each) and
    the aggregates it has loaded (those a snapshot was due for)."""

    def __init__(
        self,
        app: Eventfold,
        codec: RecordedCodec,
        lookup: Callable[[list[bytes], list[bytes]], dict[int, tuple[int, bytes]]],
        partition: Partition | None,
        *,
        repeats: bool = True,
    ) -> None:
        self.app, self.codec, self.lookup, self.partition = app, codec, lookup, partition
        self.repeats = repeats  # False: a repeated id is recorded too, decided later
        self.streams: dict[str, Stream] = {}  # every category met
        self.snapshotted: dict[UUID, int] = {}  # other aggregates: version at load or snapshot
        interval = app.snapshot_interval(Category) if app.snapshots is not None else None
        self.interval = interval or NEVER
        # While this holds, ``streams`` has every category of the store that this ingest
        # may write to: the store held no event when it began, and since then only this
        # ingest wrote to them (it holds the store's dedup lock; with partitions, other
        # processes write only to their own categories). A category met then for the
        # first time is new, without a lookup.
        self.complete = not app.recorder.max_notification_id()

    def apply(self, run: SourceRun, parsed: ParsedBatch) -> Commit:
        """Decide every line of the batch: recorded, duplicate, conflict or quarantined."""
        commit = Commit(parsed)
        report = run.report
        commit.counts["read"] = parsed.read
        report.read += parsed.read
        report.position, report.line = parsed.position, parsed.line
        self._set_aside(run, commit)
        owns = None if self.partition is None else self.partition.owns
        keys, names, values, states = parsed.keys, parsed.categories, parsed.values, parsed.states
        found = self.lookup(keys, parsed.digests)
        first_seen, recorded, kept = commit.first_seen, commit.recorded, commit.kept
        recorded_keys, recorded_digests, digests = (
            commit.recorded_keys,
            commit.recorded_digests,
            parsed.digests,
        )
        oids, versions, topics, stored_states = commit.events  # other events come between
        finish = None if self.codec.plain_json else self.codec.finish
        loaded: dict[Stream, list[Decimal]] = {}  # the values of loaded categories
        due, timestamp = commit.due, parsed.timestamp
        streams = self.streams
        unseen = [n for n in dict.fromkeys(names) if n not in streams and (owns is None or owns(n))]
        new = self._look_up(unseen) if unseen else {}
        repeats = self.repeats
        if owns is None and finish is None and not found and len(set(keys)) == len(keys):
            self._record_all(commit, new)  # every line is new: every one is recorded
            return self._decided(run, commit)
        for i, key in enumerate(keys):
            if key in first_seen or i in found:
                self._repeat(run, commit, i, key, found.get(i))
                continue
            if repeats:
                first_seen[key] = i
            name = names[i]
            if owns is not None and not owns(name):
                commit.elsewhere_keys.append(key)
                commit.elsewhere_digests.append(digests[i])
                continue
            stream = streams.get(name)
            if stream is None:
                stream = self._open(commit, name, new[name])
            version = stream.record(values[i], timestamp, loaded)
            if version == stream.due:
                due.append(name)
            recorded.append(len(oids))
            kept.append(i)
            recorded_keys.append(key)
            recorded_digests.append(digests[i])
            oids.append(stream.id)
            versions.append(version)
            topics.append(RECORDED_TOPIC)
            stored_states.append(states[i] if finish is None else finish(states[i]))
        self._fast_forward(loaded, timestamp)
        return self._decided(run, commit)

    def _record_all(self, commit: Commit, new: dict[str, UUID]) -> None:
        """``apply``'s recording of every line of a batch (none a repeat, no partition,
        states as read): a step per line for its stream, the rest a pass in C."""
        parsed = commit.parsed
        names, values, timestamp = parsed.categories, parsed.values, parsed.timestamp
        streams, due = self.streams, commit.due
        for name, stream_id in new.items():  # opened first, each before its stream's events
            self._open(commit, name, stream_id)
        oids, versions, topics, stored_states = commit.events
        start, count = len(oids), len(names)
        loaded: dict[Stream, list[Decimal]] = {}
        if len(set(names)) * GROUPED <= count:  # a few categories: a step per category
            ids, numbered, reached = record_grouped(streams, names, values, timestamp, loaded)
            oids.extend(ids)
            versions.extend(numbered)
            due.extend(reached)
        else:
            stream_of, add_oid, add_version = streams.__getitem__, oids.append, versions.append
            for name, value in zip(names, values, strict=True):
                stream = stream_of(name)
                version = stream.record(value, timestamp, loaded)
                add_oid(stream.id)
                add_version(version)
                if version == stream.due:
                    due.append(name)
        commit.recorded.extend(range(start, start + count))
        commit.kept.extend(range(count))
        commit.recorded_keys.extend(parsed.keys)
        commit.recorded_digests.extend(parsed.digests)
        topics.extend([RECORDED_TOPIC] * count)
        stored_states.extend(parsed.states)
        self._fast_forward(loaded, timestamp)

    @staticmethod
    def _fast_forward(loaded: dict[Stream, list[Decimal]], timestamp: datetime) -> None:
        """Bring each loaded category's aggregate up to date with the values the batch
        (decided at ``timestamp``) added to it."""
        for stream, tallied in loaded.items():
            assert stream.category is not None
            stream.category.fast_forward(
                len(tallied), exact_sum(tallied), stream.version, timestamp
            )

    def _decided(self, run: SourceRun, commit: Commit) -> Commit:
        """The commit of a batch decided, its states split by field, counted."""
        parsed, report = commit.parsed, run.report
        if self.codec.plain_json:
            shaped = recorded_by_field(parsed, commit.kept)
            if shaped is not None:
                commit.by_field[RECORDED_TOPIC] = shaped
        ingested = len(commit.recorded)
        commit.counts["ingested"] = ingested
        report.ingested += ingested
        report.other_partitions += len(commit.elsewhere_keys)
        return commit

    def _set_aside(self, run: SourceRun, commit: Commit) -> None:
        """Quarantine the batch's invalid lines (partition 1 only, with partitions)."""
        invalid = commit.parsed.invalid
        if self.partition is not None and not self.partition.quarantines:
            run.report.other_partitions += len(invalid)
            return
        for number, offset, reason, raw in invalid:
            self._quarantine(run, commit, InvalidLine(number, offset, reason, raw))

    def _quarantine(self, run: SourceRun, commit: Commit, record: InvalidLine) -> None:
        commit.invalid.append(record)
        commit.counts["invalid"] += 1
        run.report.invalid += 1
        if len(run.report.invalid_samples) < SAMPLES:
            run.report.invalid_samples.append(record)
        run.source.quarantine(record.line, record.offset, record.reason, record.raw)
        commit.extend(self.collect(run.source))

    def _repeat(
        self, run: SourceRun, commit: Commit, i: int, key: bytes, hit: tuple[int, bytes] | None
    ) -> None:
        """Event ``i`` of the batch has an id seen before (in the batch, or ``hit``: the
        store's first recording, as notification id and content digest).

        The same content makes it a duplicate, other content a conflict. A repeat of
        an id in the store is decided by the digests; only a conflict reads the store.
        """
        parsed = commit.parsed
        nid = None
        if hit is not None and key not in commit.first_seen:
            nid, digest = hit
            if nid == OTHER_PARTITION:  # first seen in another partition's category: it counts it
                run.report.other_partitions += 1
                return
            if digest == parsed.digests[i]:  # a duplicate: the same category, so the
                self._duplicate(run, commit, parsed.categories[i])  # same partition
                return
        event = parsed.event(i)
        first, described = self._first_occurrence(run, commit, event.event_id, key, nid)
        if self.partition is not None and not self.partition.owns(first.category):
            run.report.other_partitions += 1
            return
        if first.same_content(event):
            self._duplicate(run, commit, first.category)
            return
        line, offset = parsed.numbers[i], parsed.offsets[i]
        conflict = ConflictSeen(event.event_id, described, describe(event, run.name, line, offset))
        commit.counts["conflicts"] += 1
        run.report.conflicts += 1
        if len(run.report.conflict_samples) < SAMPLES:
            run.report.conflict_samples.append(conflict)
        run.source.conflict(event.event_id, line, offset, conflict.first, conflict.later)
        commit.extend(self.collect(run.source))

    def _duplicate(self, run: SourceRun, commit: Commit, category: str) -> None:
        if self.partition is not None and not self.partition.owns(category):
            run.report.other_partitions += 1
            return
        commit.counts["duplicates"] += 1
        run.report.duplicates += 1

    def _first_occurrence(
        self, run: SourceRun, commit: Commit, event_id: str, key: bytes, nid: int | None
    ) -> tuple[SourceEvent, dict[str, Any]]:
        """The first valid occurrence of ``event_id`` and where it was."""
        j = commit.first_seen.get(key)
        if j is not None:
            parsed = commit.parsed
            event = parsed.event(j)
            if event.event_id != event_id:
                msg = f"dedup index: ids {event_id!r} and {event.event_id!r} share a key"
                raise DedupCollisionError(msg)
            return event, describe(event, run.name, parsed.numbers[j], parsed.offsets[j])
        assert nid is not None
        page = self.app.recorder.select_notifications(nid, 1)
        recorded = self.app.mapper.to_domain_event(page[0]) if page and page[0].id == nid else None
        r: Any = recorded
        if not isinstance(recorded, Category.Recorded) or r.event_id != event_id:
            msg = f"dedup index: id {event_id!r} maps to notification {nid}, which records another"
            raise DedupCollisionError(msg)
        return recorded_occurrence(r, nid)

    def _look_up(self, names: list[str]) -> dict[str, UUID]:
        """The ids and versions of categories this run meets first, in one call; the ids
        of those not in the store.

        Only versions are read (``Backend.last_versions``): the aggregate's state is
        loaded when a snapshot is due (``category``), so that a resumed run starts
        at once however long the streams. A category not in the store yet is
        opened when its first event is recorded (``_open``). Nothing is looked up
        while ``complete``.
        """
        ids = {name: Category.create_id(name) for name in names}
        if self.complete:
            return ids
        found = self.app.backend.last_versions(self.app.process_recorder, list(ids.values()))
        new = {}
        for name, stream_id in ids.items():
            version = found.get(stream_id)
            if version is None:
                new[name] = stream_id
            else:
                self._seen(name, stream_id, version)
        return new

    def _seen(self, name: str, stream_id: UUID, version: int) -> Stream:
        """Category ``name`` stands at ``version`` in the store (or the commit opening it)."""
        interval = self.interval
        stream = self.streams[name] = Stream(
            stream_id, version, (version // interval + 1) * interval
        )
        return stream

    def _open(self, commit: Commit, name: str, stream_id: UUID) -> Stream:
        """Open the stream of a category not in the store, in ``commit``: its
        ``Category.Opened`` event, encoded directly (no aggregate is kept)."""
        opened = self.codec.opened(name, commit.parsed.timestamp, stream_id)
        oids, versions, topics, states = commit.events
        oids.append(stream_id)
        versions.append(opened.originator_version)
        topics.append(opened.topic)
        states.append(opened.state)
        return self._seen(name, stream_id, opened.originator_version)

    def category(self, name: str) -> Category:
        """The category's aggregate, loaded once (then kept up to date by ``apply``): as the
        store held it when this run met it (for a category this run opened: its
        ``Opened`` event, committed by now), plus what this run added since.

        Loaded when its first snapshot of the run falls due, so that a category met
        briefly costs no more than its version.
        """
        stream = self.streams[name]
        category = stream.category
        if category is None:
            category = load_category(self.app, name, upto=stream.base)
            if stream.count:
                assert stream.modified is not None
                category.fast_forward(stream.count, stream.total, stream.version, stream.modified)
            if category.version != stream.version:
                msg = (
                    f"category {name!r} stands at version {category.version} in the store, "
                    f"not {stream.version}: another process writes to it"
                )
                raise EventfoldError(msg)
            stream.category = category
        return category

    def snapshotted_at(self, name: str, version: int) -> None:
        """Category ``name`` has a snapshot at ``version``: the next is due an interval on."""
        interval = self.interval
        self.streams[name].due = (version // interval + 1) * interval

    def forget(self) -> None:
        """Drop what was loaded (after a failed commit: it may hold an uncommitted batch)."""
        self.streams.clear()
        self.complete = False

    def collect(self, aggregate: Any) -> list[StoredEvent]:
        return [self.app.mapper.to_stored_event(e) for e in aggregate.collect_events()]
