"""Ingest: source lines become ``Category.Recorded`` events, exactly once.

Each batch is one atomic commit of the store: the new events, the source's
own events (lines quarantined, conflicts seen, ``Advanced`` with the byte
position and a digest of everything before it) and a tracking record
(``eventfold.ingest:<source id>:<generation>`` -> byte position). A run killed
at any instant therefore resumes exactly where the last commit ended, and ids
are checked against the dedup index, which the store can always rebuild.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from hashlib import blake2b
from typing import Any, BinaryIO
from uuid import UUID, uuid4

from eventsourcing.persistence import StoredEvent, Tracking

from eventfold.application.app import Eventfold
from eventfold.application.codec import RecordedCodec
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
from eventfold.infra.source import Line, SourceEvent, is_blank, parse_event, read_lines

Progress = Callable[[int, int | None], None]
DIGEST_CHUNK = 1 << 20


class SourceError(Exception):
    """The source cannot be read or used as asked (exit code 2)."""


class SourceRewrittenError(SourceError):
    """A source's already-ingested prefix changed since the last run."""


class DedupCollisionError(Exception):
    """Two different ids share a 128-bit key: never silently merged."""


@dataclass
class _Batch:
    stored: list[StoredEvent] = field(default_factory=list)
    recorded: list[tuple[int, bytes]] = field(default_factory=list)  # (index, id key)
    pending: dict[str, tuple[SourceEvent, int, int]] = field(default_factory=dict)
    invalid: list[InvalidLine] = field(default_factory=list)
    touched: set[str] = field(default_factory=set)
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("read", "ingested", "duplicates", "conflicts", "invalid"), 0
        )
    )

    @property
    def lines(self) -> int:
        return self.counts["read"]


def _describe(event: SourceEvent, source: str, line: int, offset: int) -> dict[str, Any]:
    return {
        "category": event.category,
        "value": str(event.value),
        "occurred_at": None if event.occurred_at is None else event.occurred_at.isoformat(),
        "source": source,
        "line": line,
        "offset": offset,
    }


class Ingestor:
    """Ingests sources into one application's store; not thread-safe; one run at a time."""

    def __init__(
        self, app: Eventfold, state_dir: str, *, batch: int = 1000, lock_timeout: float = 5.0
    ) -> None:
        if batch < 1:
            msg = f"batch must be at least 1, not {batch}"
            raise ValueError(msg)
        self.app = app
        self.batch_size = batch
        self.state_dir = state_dir
        self.codec = RecordedCodec(app.mapper)
        self.categories: dict[str, Category] = {}
        self._snapshotted: dict[UUID, int] = {}  # aggregate id -> version at load or snapshot
        self.dedup = DedupIndex(os.path.join(state_dir, "dedup"))
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
        if path == "-":
            return self._run_stream(
                sys.stdin.buffer,
                "-",
                f"stdin:{uuid4()}",
                None,
                started,
                rescan=False,
                progress=progress,
            )
        try:
            stream = open(path, "rb")  # noqa: SIM115 - closed below
        except OSError as e:
            msg = f"{path}: cannot read the source ({e.strerror or e})"
            raise SourceError(msg) from None
        try:
            if not os.path.isfile(path):
                msg = f"{path}: not a regular file"
                raise SourceError(msg)
            identity = os.path.realpath(path)
            return self._run_stream(
                stream,
                identity,
                identity,
                stream.fileno(),
                started,
                rescan=rescan,
                progress=progress,
            )
        finally:
            stream.close()

    def _run_stream(
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
        quarantine = QuarantineFile(
            quarantine_path(qdir, identity, str(source.id), source.generation), name
        )
        quarantine.open(source.position)
        size = os.fstat(fd).st_size if fd is not None else None
        try:
            if fd is not None:
                stream.seek(source.position)
            self._consume(stream, source, name, fd, hasher, quarantine, report, size, progress)
        finally:
            quarantine.close()
        if report.invalid:
            report.quarantine_file = quarantine.path
        report.elapsed = time.perf_counter() - started
        return report

    def _prefix_problem(self, fd: int, source: Source, hasher: Any) -> str | None:
        """Why the already-ingested prefix no longer stands, or None (hasher then covers it)."""
        size = os.fstat(fd).st_size
        if size < source.position:
            return (
                f"the source was truncated: it has {size} bytes, but {source.position} "
                f"were ingested (up to line {source.line})"
            )
        offset = 0
        while offset < source.position:
            chunk = os.pread(fd, min(DIGEST_CHUNK, source.position - offset), offset)
            if not chunk:
                break
            hasher.update(chunk)
            offset += len(chunk)
        if hasher.hexdigest() != source.digest:
            return (
                f"the source was rewritten: its first {source.position} bytes "
                f"(up to line {source.line}) changed since they were ingested"
            )
        return None

    def _consume(
        self,
        stream: BinaryIO,
        source: Source,
        name: str,
        fd: int | None,
        hasher: Any,
        quarantine: QuarantineFile,
        report: IngestReport,
        size: int | None,
        progress: Progress | None,
    ) -> None:
        batch = _Batch()
        hashed = source.position
        self.codec.prepare(Category.Recorded.create_timestamp(), name)
        for line in read_lines(stream, source.position, source.line):
            if is_blank(line.raw):
                if not line.terminated:
                    break  # an unterminated blank tail: wait for more
                report.position, report.line = line.end, line.number
                continue
            parsed = parse_event(line.raw)
            if not line.terminated and fd is not None and not _complete(parsed, line):
                report.pending_tail = PendingTail(line.number, line.offset, len(line.raw))
                break
            batch.counts["read"] += 1
            report.read += 1
            if isinstance(parsed, str):
                self._quarantine(batch, source, line, parsed, report)
            else:
                self._accept(batch, source, name, parsed, line, report)
            report.position, report.line = line.end, line.number
            if batch.lines >= self.batch_size:
                hashed = self._commit(batch, source, fd, hasher, hashed, quarantine, report)
                batch = _Batch()
                self.codec.prepare(Category.Recorded.create_timestamp(), name)
                if progress is not None:
                    progress(report.position, size)
        if report.position > source.position:
            self._commit(batch, source, fd, hasher, hashed, quarantine, report)
        if progress is not None:
            progress(report.position, size)

    # -- one line ------------------------------------------------------------

    def _quarantine(
        self, batch: _Batch, source: Source, line: Line, reason: str, report: IngestReport
    ) -> None:
        raw = line.raw.decode("utf-8", errors="backslashreplace")
        record = InvalidLine(line.number, line.offset, reason, raw)
        batch.invalid.append(record)
        batch.counts["invalid"] += 1
        report.invalid += 1
        if len(report.invalid_samples) < SAMPLES:
            report.invalid_samples.append(record)
        source.quarantine(line.number, line.offset, reason, raw)
        batch.stored.extend(self.app.mapper.to_stored_event(e) for e in source.collect_events())

    def _accept(
        self,
        batch: _Batch,
        source: Source,
        name: str,
        event: SourceEvent,
        line: Line,
        report: IngestReport,
    ) -> None:
        key = id_key(event.event_id)
        first = self._first_occurrence(batch, event.event_id, key, name)
        if first is not None:
            if first[0].same_content(event):
                batch.counts["duplicates"] += 1
                report.duplicates += 1
            else:
                self._conflict(batch, source, name, event, line, first[1], report)
            return
        category = self.categories.get(event.category) or self._category(batch, event.category)
        category.tally(event.value)
        version = category.version + 1
        category.version = version
        batch.touched.add(event.category)
        batch.recorded.append((len(batch.stored), key))
        batch.pending[event.event_id] = (event, line.number, line.offset)
        stored = self.codec.encode(category.id, version, event, line.number, line.offset)
        batch.stored.append(stored)
        batch.counts["ingested"] += 1
        report.ingested += 1

    def _conflict(
        self,
        batch: _Batch,
        source: Source,
        name: str,
        event: SourceEvent,
        line: Line,
        first: dict[str, Any],
        report: IngestReport,
    ) -> None:
        conflict = ConflictSeen(
            event.event_id, first, _describe(event, name, line.number, line.offset)
        )
        batch.counts["conflicts"] += 1
        report.conflicts += 1
        if len(report.conflict_samples) < SAMPLES:
            report.conflict_samples.append(conflict)
        source.conflict(event.event_id, line.number, line.offset, conflict.first, conflict.later)
        batch.stored.extend(self.app.mapper.to_stored_event(e) for e in source.collect_events())

    def _first_occurrence(
        self, batch: _Batch, event_id: str, key: bytes, name: str
    ) -> tuple[SourceEvent, dict[str, Any]] | None:
        """The first valid occurrence of ``event_id`` and where it was, or None."""
        if event_id in batch.pending:
            event, line, offset = batch.pending[event_id]
            return event, _describe(event, name, line, offset)
        nid = self.dedup.find(key)
        if nid is None:
            return None
        page = self.app.recorder.select_notifications(nid, 1)
        recorded = self.app.mapper.to_domain_event(page[0]) if page and page[0].id == nid else None
        r: Any = recorded
        if not isinstance(recorded, Category.Recorded) or r.event_id != event_id:
            msg = f"dedup index: id {event_id!r} maps to notification {nid}, which records another"
            raise DedupCollisionError(msg)
        first = SourceEvent(r.event_id, r.category, r.value, r.occurred_at)
        described = _describe(first, r.source, r.line, r.offset)
        described["notification_id"] = nid
        return first, described

    def _category(self, batch: _Batch, name: str) -> Category:
        category = self.categories.get(name)
        if category is None:
            category = load_or_create(
                self.app, Category, Category.create_id(name), lambda: Category(name)
            )
            self.categories[name] = category
            self._snapshotted[category.id] = category.version
            batch.stored.extend(
                self.app.mapper.to_stored_event(e) for e in category.collect_events()
            )
        return category

    # -- the commit ----------------------------------------------------------

    def _commit(
        self,
        batch: _Batch,
        source: Source,
        fd: int | None,
        hasher: Any,
        hashed: int,
        quarantine: QuarantineFile,
        report: IngestReport,
    ) -> int:
        """Commit the batch atomically with the new source position; return bytes hashed."""
        if fd is not None:
            while hashed < report.position:
                chunk = os.pread(fd, min(DIGEST_CHUNK, report.position - hashed), hashed)
                if not chunk:
                    msg = f"{report.source}: the source shrank while it was being read"
                    raise SourceRewrittenError(msg)
                hasher.update(chunk)
                hashed += len(chunk)
        source.advance(
            report.position,
            report.line,
            hasher.hexdigest() if fd is not None else "",
            dict(batch.counts),
        )
        batch.stored.extend(self.app.mapper.to_stored_event(e) for e in source.collect_events())
        quarantine.append(batch.invalid)
        tracking = Tracking(f"eventfold.ingest:{source.id}:{source.generation}", report.position)
        nids = self.app.process_recorder.insert_events(batch.stored, tracking=tracking)
        assert nids is not None and len(nids) == len(batch.stored)
        if nids[0] != self.dedup.covered + 1:  # another writer's events came between
            self._catch_up_dedup(stop=nids[0] - 1)
        for index, key in batch.recorded:
            self.dedup.add(key, nids[index])
        self.dedup.advance(nids[-1])
        for name in batch.touched:
            self.categories[name].modified_on = self.codec.timestamp
        self._snapshot([self.categories[n] for n in batch.touched] + [source])
        return hashed

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

    def _catch_up_dedup(self, stop: int | None = None) -> None:
        """Add the ids of the Recorded events after the index's coverage (up to ``stop``)."""
        last = (self.app.recorder.max_notification_id() or 0) if stop is None else stop
        for nid, event_id in recorded_event_ids(self.app, self.dedup.covered, last):
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


def _complete(parsed: SourceEvent | str, line: Line) -> bool:
    """An unterminated last line is complete once it is a whole JSON object."""
    if isinstance(parsed, SourceEvent):
        return True
    return not parsed.startswith(("not valid JSON", "not valid UTF-8", "not a JSON object"))
