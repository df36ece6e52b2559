"""Ingest: source lines become ``Category.Recorded`` events, exactly once.

Each batch is one atomic commit of the store: the new events, the source's
own events (lines quarantined, conflicts seen, ``Advanced`` with the byte
position and a digest of everything before it) and a tracking record
(``eventfold.ingest:<source id>:<generation>`` -> byte position). A run killed
at any instant therefore resumes exactly where the last commit ended, and ids
are checked against the dedup index, which the store can always rebuild.

Reading (parsing, validating, encoding) and writing (deciding duplicates,
versions, committing) are separate halves (``batches.py``); for a large file
the reading half runs in a second process, on a second core.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from hashlib import blake2b
from typing import Any, BinaryIO
from uuid import UUID, uuid4

from eventsourcing.persistence import StoredEvent, Tracking

from eventfold.application.app import Eventfold
from eventfold.application.batches import ParsedBatch, piped_batches, read_batches
from eventfold.application.codec import RECORDED_TOPIC, RecordedCodec
from eventfold.application.partition import Partition
from eventfold.application.quarantine import QuarantineFile, quarantine_path
from eventfold.application.report import (
    SAMPLES,
    ConflictSeen,
    IngestReport,
    InvalidLine,
    PendingTail,
)
from eventfold.application.repository import load_or_create, recorded_event_ids
from eventfold.domain.model import Category, Source
from eventfold.infra.dedup import DedupIndex, id_key
from eventfold.infra.filestore import FileProcessRecorder
from eventfold.infra.logformat import EventColumns
from eventfold.infra.source import SourceEvent, parse_event

Progress = Callable[[int, int | None], None]
DIGEST_CHUNK = 1 << 20
# In a partition's dedup index: an id whose first occurrence another partition records.
ELSEWHERE = 0
READER_PROCESS_BYTES = 1 << 20  # a file with more left to read gets a reader process
EXPECTED_LINE_BYTES = 80  # to size the dedup filter for a file before reading it


class SourceError(Exception):
    """The source cannot be read or used as asked (exit code 2)."""


class SourceRewrittenError(SourceError):
    """A source's already-ingested prefix changed since the last run."""


class DedupCollisionError(Exception):
    """Two different ids share a 128-bit key: never silently merged."""


@dataclass
class _Run:
    """One run over one source."""

    source: Source
    name: str
    fd: int | None
    report: IngestReport
    quarantine: QuarantineFile
    hasher: Any
    hashed: int  # bytes of the source covered by ``hasher``

    @property
    def tracking_name(self) -> str:
        return f"eventfold.ingest:{self.source.id}:{self.source.generation}"


@dataclass
class _Commit:
    """What one batch adds to the store, in order, as columns."""

    parsed: ParsedBatch
    events: EventColumns = field(default_factory=lambda: EventColumns([], [], [], []))
    recorded: list[int] = field(default_factory=list)  # column index of each Recorded event
    recorded_keys: list[bytes] = field(default_factory=list)
    elsewhere_keys: list[bytes] = field(default_factory=list)  # first seen, another partition's
    first_seen: dict[bytes, int] = field(default_factory=dict)  # id key -> index in parsed
    invalid: list[InvalidLine] = field(default_factory=list)
    touched: set[str] = field(default_factory=set)
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("read", "ingested", "duplicates", "conflicts", "invalid"), 0
        )
    )

    def extend(self, stored: list[StoredEvent]) -> None:
        """Append events the library's mapper made (aggregates' other events)."""
        oids, versions, topics, states = self.events
        for e in stored:
            oids.append(e.originator_id)
            versions.append(e.originator_version)
            topics.append(e.topic)
            states.append(e.state)


def _describe(event: SourceEvent, source: str, line: int, offset: int) -> dict[str, Any]:
    return {
        "category": event.category,
        "value": str(event.value),
        "occurred_at": event.occurred_iso,
        "source": source,
        "line": line,
        "offset": offset,
    }


def _hash_range(fd: int, hasher: Any, start: int, end: int) -> int:
    """Feed bytes ``start..end`` of ``fd`` to ``hasher``; return where it stopped (EOF)."""
    while start < end:
        chunk = os.pread(fd, min(DIGEST_CHUNK, end - start), start)
        if not chunk:
            break
        hasher.update(chunk)
        start += len(chunk)
    return start


def _new_replay_batch(codec: RecordedCodec, name: str, position: int) -> ParsedBatch:
    timestamp = Category.Recorded.create_timestamp()
    codec.prepare(timestamp, name)
    return ParsedBatch(timestamp, position=position, line=position)


class Ingestor:
    """Ingests sources into one application's store; one run at a time per store.

    ``reader_process``: None picks a second process for files with more than
    ``READER_PROCESS_BYTES`` left to read; True or False forces the choice.
    """

    def __init__(
        self,
        app: Eventfold,
        state_dir: str,
        *,
        batch: int = 1000,
        lock_timeout: float = 5.0,
        reader_process: bool | None = None,
        partition: Partition | None = None,
    ) -> None:
        if batch < 1:
            msg = f"batch must be at least 1, not {batch}"
            raise ValueError(msg)
        self.app = app
        self.batch_size = batch
        self.state_dir = state_dir
        self.reader_process = reader_process
        self.codec = RecordedCodec(app.mapper)
        self.categories: dict[str, Category] = {}
        self._snapshotted: dict[UUID, int] = {}  # aggregate id -> version at load or snapshot
        self.partition = partition
        dedup_name = "dedup" if partition is None else partition.dedup_name
        self.dedup = DedupIndex(os.path.join(state_dir, dedup_name))
        self.dedup.open(app.recorder.max_notification_id() or 0, lock_timeout)
        self.warnings: list[str] = []
        if self.dedup.problem:
            self.warnings.append(f"dedup index rebuilt from the store: {self.dedup.problem}")
        self._catch_up_dedup()

    # -- the run -------------------------------------------------------------

    def run(
        self, path: str, *, rescan: bool = False, progress: Progress | None = None
    ) -> IngestReport:
        """Ingest ``path`` (or ``-`` for standard input) from where it was left."""
        started = time.perf_counter()
        if rescan and self.partition is not None:
            msg = ("--rescan cannot be combined with --partition: a partition's marks of the "
                   "old content would stand; rescan without partitions")  # fmt: skip
            raise SourceError(msg)
        suffix = "" if self.partition is None else self.partition.source_suffix
        if path == "-":
            return self._run(sys.stdin.buffer, "-", f"stdin:{uuid4()}{suffix}", None, started,
                             rescan=False, progress=progress)  # fmt: skip
        try:
            stream = open(path, "rb")  # noqa: SIM115 - closed below
        except OSError as e:
            msg = f"{path}: cannot read the source ({e.strerror or e})"
            raise SourceError(msg) from None
        try:
            if not os.path.isfile(path):
                msg = f"{path}: not a regular file"
                raise SourceError(msg)
            real = os.path.realpath(path)
            return self._run(stream, real, real + suffix, stream.fileno(), started,
                             rescan=rescan, progress=progress)  # fmt: skip
        finally:
            stream.close()

    def _run(
        self,
        stream: BinaryIO,
        name: str,
        identity: str,
        fd: int | None,
        started: float,
        *,
        rescan: bool,
        progress: Progress | None,
    ) -> IngestReport:
        source = load_or_create(
            self.app, Source, Source.create_id(identity), lambda: Source(identity)
        )
        self._snapshotted[source.id] = source.version
        report = IngestReport(source=name, identity=identity)
        report.partition = None if self.partition is None else str(self.partition)
        hasher = blake2b(digest_size=32)
        if fd is not None and source.position:
            problem = self._prefix_problem(fd, source, hasher)
            if problem is not None:
                if not rescan:
                    msg = (
                        f"{name}: {problem}; run again with --rescan to ingest it anew "
                        "(ids already recorded then count as duplicates)"
                    )
                    raise SourceRewrittenError(msg)
                source.rescan(problem)
                hasher = blake2b(digest_size=32)
                report.rescanned = True
        report.resumed_from = report.position = source.position
        report.line = source.line
        qdir = os.path.join(self.state_dir, "quarantine")
        where = name if fd is not None else identity  # a file's name, without the partition
        path = quarantine_path(qdir, where, str(source.id), source.generation)
        quarantine = QuarantineFile(path, name)
        quarantine.open(source.position)
        run = _Run(source, name, fd, report, quarantine, hasher, source.position)
        size = os.fstat(fd).st_size if fd is not None else None
        if size is not None:
            self.dedup.reserve((size - source.position) // EXPECTED_LINE_BYTES)
        if self.partition is not None and fd is not None:
            self._mark_elsewhere(fd, identity, self.dedup.marks.get(identity, 0), source.position)
        with self._running(run, started):
            for parsed in self._batches(stream, run, size):
                if parsed.pending is not None:
                    report.pending_tail = PendingTail(*parsed.pending)
                if parsed.position > source.position:
                    self._commit(run, self._apply(run, parsed))
                if progress is not None:
                    progress(report.position, size)
        return report

    @contextlib.contextmanager
    def _running(self, run: _Run, started: float) -> Iterator[None]:
        """Close the run's quarantine file and time the report, however the run ends."""
        try:
            yield
        except BaseException:
            # Cached aggregates may hold a batch that was not committed.
            self.categories.clear()
            raise
        finally:
            run.quarantine.close()
            if run.report.invalid:
                run.report.quarantine_file = run.quarantine.path
            run.report.elapsed = time.perf_counter() - started

    def _batches(self, stream: BinaryIO, run: _Run, size: int | None) -> Iterator[ParsedBatch]:
        position, line = run.source.position, run.source.line
        use_process = self.reader_process
        if use_process is None:
            use_process = size is not None and size - position > READER_PROCESS_BYTES
        if use_process and run.fd is not None and self.codec.plain_json:
            return piped_batches(run.fd, position, line, self.batch_size, run.name)
        if run.fd is not None:
            stream.seek(position)
        return read_batches(stream, position, line, self.batch_size, self.codec, run.name,
                            growing=run.fd is not None)  # fmt: skip

    def replay(self, name: str, lines: list[tuple[int, int, bytes]]) -> IngestReport:
        """Ingest chosen lines of source ``name`` (line number, byte offset, raw), in order.

        For ``reconcile``: the events keep their original source position; the
        run is tracked as a source of its own, and the dedup index keeps it
        idempotent (ids already recorded are duplicates).
        """
        started = time.perf_counter()
        identity = f"replay:{name}:{uuid4()}"
        source = Source(identity)
        self._snapshotted[source.id] = 0
        report = IngestReport(source=name, identity=identity)
        qdir = os.path.join(self.state_dir, "quarantine")
        path = quarantine_path(qdir, f"replay-{name}", str(source.id), 0)
        quarantine = QuarantineFile(path, name)
        quarantine.open(0)
        run = _Run(source, name, None, report, quarantine, None, 0)
        with self._running(run, started):
            self._replay(run, lines)
        return report

    def _replay(self, run: _Run, lines: list[tuple[int, int, bytes]]) -> None:
        name = run.name
        for first in range(0, len(lines), self.batch_size):
            chunk = lines[first : first + self.batch_size]
            parsed = _new_replay_batch(self.codec, name, first + len(chunk))
            for number, offset, raw in chunk:
                event = parse_event(raw)
                if isinstance(event, str):
                    parsed.invalid.append((number, offset, event, raw.decode(errors="replace")))
                    continue
                parsed.add(event, number, offset, self.codec.state(event, number, offset))
            parsed.read = len(chunk)
            self._commit(run, self._apply(run, parsed))

    def _prefix_problem(self, fd: int, source: Source, hasher: Any) -> str | None:
        """Why the already-ingested prefix no longer stands, or None (hasher then covers it)."""
        size = os.fstat(fd).st_size
        if size < source.position:
            return (
                f"the source was truncated: it has {size} bytes, but {source.position} "
                f"were ingested (up to line {source.line})"
            )
        _hash_range(fd, hasher, 0, source.position)
        if hasher.hexdigest() != source.digest:
            return (
                f"the source was rewritten: its first {source.position} bytes "
                f"(up to line {source.line}) changed since they were ingested"
            )
        return None

    # -- one batch -------------------------------------------------------------

    def _apply(self, run: _Run, parsed: ParsedBatch) -> _Commit:
        """Decide every line of the batch: recorded, duplicate, conflict or quarantined."""
        commit = _Commit(parsed)
        report = run.report
        commit.counts["read"] = parsed.read
        report.read += parsed.read
        report.position, report.line = parsed.position, parsed.line
        if self.partition is None or self.partition.quarantines:
            for number, offset, reason, raw in parsed.invalid:
                self._quarantine(run, commit, InvalidLine(number, offset, reason, raw))
        else:
            report.other_partitions += len(parsed.invalid)
        owns = None if self.partition is None else self.partition.owns
        keys, names, values, states = parsed.keys, parsed.categories, parsed.values, parsed.states
        found = self.dedup.find_many(keys)
        first_seen, recorded = commit.first_seen, commit.recorded
        recorded_keys = commit.recorded_keys
        oids, versions, topics, stored_states = commit.events  # other events come between
        finish = None if self.codec.plain_json else self.codec.finish
        groups: dict[str, tuple[UUID, int, list[Decimal]]] = {}  # id, version before, values
        for i, key in enumerate(keys):
            if key in first_seen or i in found:
                self._repeat(run, commit, i, key, found.get(i))
                continue
            first_seen[key] = i
            name = names[i]
            if owns is not None and not owns(name):
                commit.elsewhere_keys.append(key)
                continue
            group = groups.get(name)
            if group is None:
                category = self.categories.get(name) or self._category(commit, name)
                group = groups[name] = (category.id, category.version, [])
            tallied = group[2]
            tallied.append(values[i])
            recorded.append(len(oids))
            recorded_keys.append(key)
            oids.append(group[0])
            versions.append(group[1] + len(tallied))
            topics.append(RECORDED_TOPIC)
            stored_states.append(states[i] if finish is None else finish(states[i]))
        for name, (_, before, tallied) in groups.items():
            category = self.categories[name]
            category.tally_many(tallied)
            category.version = before + len(tallied)
            category.modified_on = parsed.timestamp
        commit.touched.update(groups)
        commit.counts["ingested"] = len(recorded)
        report.ingested += len(recorded)
        report.other_partitions += len(commit.elsewhere_keys)
        return commit

    def _quarantine(self, run: _Run, commit: _Commit, record: InvalidLine) -> None:
        commit.invalid.append(record)
        commit.counts["invalid"] += 1
        run.report.invalid += 1
        if len(run.report.invalid_samples) < SAMPLES:
            run.report.invalid_samples.append(record)
        run.source.quarantine(record.line, record.offset, record.reason, record.raw)
        commit.extend(self._collect(run.source))

    def _repeat(self, run: _Run, commit: _Commit, i: int, key: bytes, nid: int | None) -> None:
        """Event ``i`` of the batch has an id seen before (in the batch, or at ``nid``).

        The same content makes it a duplicate, other content a conflict.
        """
        if nid == ELSEWHERE:  # first seen in another partition's category: it counts it
            run.report.other_partitions += 1
            return
        parsed = commit.parsed
        event = parsed.event(i)
        first, described = self._first_occurrence(run, commit, event.event_id, key, nid)
        if self.partition is not None and not self.partition.owns(first.category):
            run.report.other_partitions += 1
            return
        if first.same_content(event):
            commit.counts["duplicates"] += 1
            run.report.duplicates += 1
            return
        line, offset = parsed.numbers[i], parsed.offsets[i]
        conflict = ConflictSeen(event.event_id, described,
                                _describe(event, run.name, line, offset))  # fmt: skip
        commit.counts["conflicts"] += 1
        run.report.conflicts += 1
        if len(run.report.conflict_samples) < SAMPLES:
            run.report.conflict_samples.append(conflict)
        run.source.conflict(event.event_id, line, offset, conflict.first, conflict.later)
        commit.extend(self._collect(run.source))

    def _first_occurrence(
        self, run: _Run, commit: _Commit, event_id: str, key: bytes, nid: int | None
    ) -> tuple[SourceEvent, dict[str, Any]]:
        """The first valid occurrence of ``event_id`` and where it was."""
        j = commit.first_seen.get(key)
        if j is not None:
            parsed = commit.parsed
            event = parsed.event(j)
            if event.event_id != event_id:
                msg = f"dedup index: ids {event_id!r} and {event.event_id!r} share a key"
                raise DedupCollisionError(msg)
            return event, _describe(event, run.name, parsed.numbers[j], parsed.offsets[j])
        assert nid is not None
        page = self.app.recorder.select_notifications(nid, 1)
        recorded = self.app.mapper.to_domain_event(page[0]) if page and page[0].id == nid else None
        r: Any = recorded
        if not isinstance(recorded, Category.Recorded) or r.event_id != event_id:
            msg = f"dedup index: id {event_id!r} maps to notification {nid}, which records another"
            raise DedupCollisionError(msg)
        when = r.occurred_at
        first = SourceEvent(r.event_id, r.category, Decimal(r.value), when,
                            None if when is None else when.isoformat())  # fmt: skip
        described = _describe(first, r.source, r.line, r.offset)
        described["notification_id"] = nid
        return first, described

    def _category(self, commit: _Commit, name: str) -> Category:
        category = self.categories.get(name)
        if category is None:
            category = load_or_create(
                self.app, Category, Category.create_id(name), lambda: Category(name)
            )
            self.categories[name] = category
            self._snapshotted[category.id] = category.version
            commit.extend(self._collect(category))
        return category

    def _collect(self, aggregate: Any) -> list[StoredEvent]:
        return [self.app.mapper.to_stored_event(e) for e in aggregate.collect_events()]

    # -- the commit ----------------------------------------------------------

    def _commit(self, run: _Run, commit: _Commit) -> None:
        """Commit the batch atomically with the new source position and its digest."""
        report, fd = run.report, run.fd
        if fd is not None:
            run.hashed = _hash_range(fd, run.hasher, run.hashed, report.position)
            if run.hashed < report.position:
                msg = f"{report.source}: the source shrank while it was being read"
                raise SourceRewrittenError(msg)
        digest = run.hasher.hexdigest() if fd is not None and run.hasher else ""
        run.source.advance(report.position, report.line, digest, dict(commit.counts))
        commit.extend(self._collect(run.source))
        run.quarantine.append(commit.invalid)
        tracking = Tracking(run.tracking_name, report.position)
        nids = self._insert(commit.events, tracking)
        if nids[0] != self.dedup.covered + 1:  # another writer's events came between
            # Other partitions of this source record ids that this one reads itself
            # (as theirs); looking each one up again as a repeat would cost a query.
            sibling = run.name if self.partition is not None and run.fd is not None else None
            self._catch_up_dedup(stop=nids[0] - 1, except_source=sibling)
        self.dedup.add_new(
            commit.recorded_keys + commit.elsewhere_keys,
            [nids[i] for i in commit.recorded] + [ELSEWHERE] * len(commit.elsewhere_keys),
        )
        if self.partition is not None:
            self.dedup.marks[run.source.identity] = report.position
        self.dedup.advance(nids[-1])
        self._snapshot([self.categories[n] for n in commit.touched] + [run.source])

    def _insert(self, events: EventColumns, tracking: Tracking) -> list[int]:
        """Insert the events and the tracking record atomically; their notification ids.

        The file store takes columns as they are; other recorders get the
        library's ``StoredEvent`` objects.
        """
        recorder = self.app.process_recorder
        if isinstance(recorder, FileProcessRecorder):
            return recorder.insert_event_columns(events, tracking)
        stored = [StoredEvent(*columns) for columns in zip(*events, strict=True)]
        nids = recorder.insert_events(stored, tracking=tracking)
        assert nids is not None and len(nids) == len(stored)
        return list(nids)

    def _snapshot(self, aggregates: list[Any]) -> None:
        """Snapshot aggregates whose version crossed a multiple of their interval."""
        snapshots = []
        for aggregate in aggregates:
            interval = self.app.snapshot_interval(type(aggregate))
            if interval is None or self.app.snapshots is None:
                continue
            last = self._snapshotted.get(aggregate.id, 0)
            if aggregate.version // interval > last // interval:
                snapshots.append(type(aggregate).Snapshot.take(aggregate))
                self._snapshotted[aggregate.id] = aggregate.version
        if snapshots and self.app.snapshots is not None:
            self.app.snapshots.put(snapshots)

    # -- the dedup index -------------------------------------------------------

    def _mark_elsewhere(self, fd: int, identity: str, marked: int, position: int) -> None:
        """Mark the ids first seen in other partitions' categories in ``marked..position``.

        A partition's marks live in its dedup index, which persists them at its
        checkpoints; after a crash (or a lost index) the lines it had ingested
        since are read again, so that no later line of its own categories is
        taken for the first occurrence of such an id.
        """
        if marked >= position:
            return
        assert self.partition is not None
        owns = self.partition.owns
        with open(fd, "rb", closefd=False) as stream:
            stream.seek(marked)
            batches = read_batches(stream, marked, 0, self.batch_size, RecordedCodec.plain(),
                                   "", growing=True)  # fmt: skip
            for parsed in batches:
                found = self.dedup.find_many(parsed.keys)
                seen: set[bytes] = set()
                elsewhere = []
                for i, key in enumerate(parsed.keys):
                    if parsed.offsets[i] >= position:
                        break
                    if i in found or key in seen:
                        continue
                    seen.add(key)
                    if not owns(parsed.categories[i]):
                        elsewhere.append(key)
                self.dedup.add_new(elsewhere, [ELSEWHERE] * len(elsewhere))
                if parsed.position >= position:
                    break
        self.dedup.marks[identity] = position

    def _catch_up_dedup(self, stop: int | None = None, except_source: str | None = None) -> None:
        """Add the ids of the Recorded events after the index's coverage (up to ``stop``)."""
        last = (self.app.recorder.max_notification_id() or 0) if stop is None else stop
        ids = recorded_event_ids(self.app, self.dedup.covered, last, except_source=except_source)
        for nid, event_id in ids:
            self.dedup.add(id_key(event_id), nid)
            self.dedup.advance(nid)
        self.dedup.covered = max(self.dedup.covered, last)

    def close(self) -> None:
        """Persist the dedup index and release it."""
        try:
            self.dedup.flush()
        finally:
            self.dedup.close()

    def __enter__(self) -> Ingestor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
