"""Ingest: source lines become ``Category.Recorded`` events, exactly once.

Each batch is one atomic commit of the store: the new events, the source's
own events (lines quarantined, conflicts seen, ``Advanced`` with the byte
position and a digest of everything before it) and a tracking record
(``eventfold.ingest:<source id>:<generation>`` -> byte position). A run killed
at any instant therefore resumes exactly where the last commit ended, and ids
are checked against the dedup index, which the store can always rebuild.

Reading (parsing, validating, encoding) and writing (deciding duplicates,
versions: ``deciding.py``; committing: here) are separate halves
(``reading.py``, ``reader_process.py``); for a large file the reading half runs in a second
process, on a second core.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO, cast
from uuid import uuid4

from eventsourcing.persistence import Tracking

from eventfold.application.app import Eventfold
from eventfold.application.ingest.categories import find, load_or_create
from eventfold.application.ingest.deciding import Commit, Decider, SourceRun
from eventfold.application.ingest.known import KnownIds, UndecidedIds
from eventfold.application.ingest.partition import Partition
from eventfold.application.ingest.prefetch import Prefetched
from eventfold.application.ingest.quarantine import QuarantineFile, quarantine_path
from eventfold.application.ingest.reader_process import piped_batches
from eventfold.application.ingest.reading import (
    ParsedBatch,
    ends_inside_a_line,
    read_batches,
)
from eventfold.application.ingest.report import (
    IngestReport,
    PendingTail,
)
from eventfold.application.ingest.resuming import (
    HashingReader,
    Start,
    fingerprint_of,
    first_line,
    hash_prefix,
    hash_range,
    new_hasher,
)
from eventfold.application.ingest.rules import parse_event
from eventfold.application.progress import BYTES, EVENTS, INGESTING, REPLAYING, Progress, tell
from eventfold.application.recorded import RecordedCodec
from eventfold.domain.model import Category, Fingerprint, Source
from eventfold.infra import failpoints
from eventfold.infra.filestore.format import EventColumns
from eventfold.infra.filestore.shapes import ByFields
from eventfold.infra.lines import MAX_LINE_BYTES
from eventfold.infra.sourcefile import SourceError, SourceFile, open_source

logger = logging.getLogger("eventfold.ingest")
READER_PROCESS_BYTES = 1 << 20  # a file with more left to read gets a reader process
EXPECTED_LINE_BYTES = 80  # to size the dedup filter for a file before reading it


class SourceRewrittenError(SourceError):
    """A source's already-ingested prefix changed since the last run."""


def _read_again(start: Start, stack: contextlib.ExitStack) -> None:
    """A compressed file whose stream was read is opened again, to be read from its start
    (a plain file is read by offset: nothing to do)."""
    if start.opened.fd is None:
        start.opened = stack.enter_context(open_source(start.opened.real))


def _new_replay_batch(codec: RecordedCodec, name: str, position: int) -> ParsedBatch:
    timestamp = Category.Recorded.create_timestamp()
    codec.prepare(timestamp, name)
    return ParsedBatch(timestamp, position=position, line=position)


class Ingestor:
    """Ingests sources into one application's store; one run at a time per store.

    ``reader_process``: None picks a second process for files with more than
    ``READER_PROCESS_BYTES`` left to read; True or False forces the choice.
    ``repeats``: False records every valid line, a repeated id too, and keeps no dedup
    index: a partition's join decides repeats (``partitioned.py``).
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
        max_line: int = MAX_LINE_BYTES,
        repeats: bool = True,
    ) -> None:
        if batch < 1:
            msg = f"batch must be at least 1, not {batch}"
            raise ValueError(msg)
        self.app = app
        self.batch_size = batch
        self.max_line = max_line
        self.state_dir = state_dir
        self.reader_process = reader_process
        self.codec = RecordedCodec(app.mapper)
        self.partition = partition
        self.known: KnownIds | UndecidedIds = (
            KnownIds(app, state_dir, partition, lock_timeout, batch, max_line)
            if repeats
            else UndecidedIds()
        )
        self.warnings = self.known.warnings
        self.decider = Decider(app, self.codec, self.known.lookup, partition, repeats=repeats)
        # Each source seen by this ingestor as it stood before: position, line, digest.
        self.before: dict[str, tuple[int, int, str]] = {}

    # -- the run -------------------------------------------------------------

    def run(
        self,
        path: str | SourceFile,
        *,
        rescan: bool = False,
        progress: Progress | None = None,
        prefetched: Prefetched | None = None,
    ) -> IngestReport:
        """Ingest ``path`` (or ``-`` for standard input, or a source opened already with
        ``open_source``, which this closes) from where it was left. ``prefetched``: the
        file's batches read ahead from its first byte (``prefetch.py``), used when the
        run starts there (else dropped)."""
        started = time.perf_counter()
        if rescan and self.partition is not None:
            msg = (
                "--rescan cannot be combined with --partition: a partition's marks of the "
                "old content would stand; rescan without partitions"
            )
            raise SourceError(msg)
        suffix = "" if self.partition is None else self.partition.source_suffix
        with contextlib.ExitStack() as opened:
            source = opened.enter_context(open_source(path) if isinstance(path, str) else path)
            if source.name == "-":
                name, identity = "-", f"stdin:{uuid4()}{suffix}"
            elif not source.regular:  # a FIFO or a device: read once, as a stream
                name, identity = source.real, f"stream:{source.real}:{uuid4()}{suffix}"
            else:
                name, identity = source.real, source.real + suffix
            run = self._start(source, name, identity, opened, rescan=rescan and source.regular)
            return self._run(run, source, started, progress, self._ahead(run, prefetched))

    def _start(
        self,
        opened: SourceFile,
        name: str,
        identity: str,
        stack: contextlib.ExitStack,
        *,
        rescan: bool,
    ) -> Start:
        """Where the run over ``opened`` starts: its ``Source`` resumed (the prefix checked),
        rescanned, or continuing a renamed source; ``SourceRewrittenError`` when the
        ingested prefix changed and not ``rescan``."""
        created: list[bool] = []

        def create() -> Source:
            created.append(True)
            return Source(identity)

        source = load_or_create(self.app, Source, Source.create_id(identity), create)
        if not created:  # as it stood before this run, for files that may continue it
            self.before.setdefault(identity, (source.position, source.line, source.digest))
        start = Start(source, opened, new_hasher())
        fingerprints = self.partition is None and opened.regular
        if fingerprints:
            self._fingerprint(start, identity)
        if created and start.fingerprint is not None and start.note:
            self._continue_renamed(start, identity, stack)
        elif source.position and opened.regular:
            problem = self._prefix_problem(start)
            if problem is not None and start.fingerprint is not None and not rescan:
                # A numbered rotation moves each file's content to the next name.
                _read_again(start, stack)
                if self._continue_renamed(start, identity, stack, changed=problem):
                    return start
            if problem is not None:
                if not rescan:
                    msg = (
                        f"{name}: {problem}; run again with --rescan to ingest it anew "
                        "(ids already recorded then count as duplicates)"
                    )
                    raise SourceRewrittenError(msg)
                source.rescan(problem)
                start.rescanned = True
                start.hasher = new_hasher()
                _read_again(start, stack)
        return start

    def _fingerprint(self, start: Start, identity: str) -> None:
        """Find the source's ``Fingerprint`` (or make one), to note it at its first commit."""
        line = first_line(start.opened)
        if line is None:
            return
        digest = fingerprint_of(line)
        start.fingerprint = load_or_create(
            self.app, Fingerprint, Fingerprint.create_id(digest), lambda: Fingerprint(digest)
        )
        start.note = identity not in start.fingerprint.identities

    def _continue_renamed(
        self, start: Start, identity: str, stack: contextlib.ExitStack, changed: str = ""
    ) -> bool:
        """Continue a source that began with the same first line whose ingested prefix this
        file holds: a rotated file under a new name (for a known file whose own prefix
        ``changed``, in a new generation). Its bytes are not read again. Candidates are
        taken as they stood before this run, so that files moved along a chain of names
        are recognised in any order."""
        assert start.fingerprint is not None
        candidates = []
        for other in start.fingerprint.identities:
            if other == identity:
                continue
            state = self.before.get(other)
            if state is None:
                known = find(self.app, Source, Source.create_id(other))
                state = None if known is None else (known.position, known.line, known.digest)
            if state is not None and state[0]:
                candidates.append((other, *state))
        for other, position, line, digest in sorted(candidates, key=lambda c: -c[1]):
            hasher = new_hasher()
            reached, last = hash_prefix(start.opened, position, hasher)
            if reached == position and hasher.hexdigest() == digest:
                if changed:
                    start.source.rescan(changed)
                start.source.adopt(other, position, line, digest)
                start.hasher, start.last, start.adopted = hasher, last, True
                return True
            _read_again(start, stack)
        return False

    def _ahead(self, start: Start, prefetched: Prefetched | None) -> Prefetched | None:
        """``prefetched`` when its batches are the run's: from byte 0 of the same file."""
        if prefetched is None:
            return None
        usable = (
            start.source.position == 0
            and not start.adopted
            and self.partition is None
            and self.codec.plain_json
            and prefetched.same_file(start.opened.file_fd)
        )
        if usable:
            return prefetched
        prefetched.drop()
        return None

    def _run(
        self,
        start: Start,
        given: SourceFile,
        started: float,
        progress: Progress | None,
        ahead: Prefetched | None,
    ) -> IngestReport:
        source, opened = start.source, start.opened
        self.decider.snapshotted[source.id] = source.version
        report = IngestReport(source=given.real, identity=source.identity)
        report.partition = None if self.partition is None else str(self.partition)
        report.compression = opened.compression
        report.rescanned = start.rescanned
        report.renamed_from = source.renamed_from if start.adopted else None
        report.resumed_from = report.position = source.position
        report.line = source.line
        qdir = os.path.join(self.state_dir, "quarantine")
        where = report.source if opened.regular else source.identity  # without the partition
        path = quarantine_path(qdir, where, str(source.id), source.generation)
        quarantine = QuarantineFile(path, report.source)
        quarantine.open(source.position)
        fd = opened.fd
        stream = opened.stream
        tee = None
        if opened.compression is not None and opened.regular and ahead is None:
            tee = HashingReader(stream, start.hasher, source.position)
            stream = cast(BinaryIO, tee)
        run = SourceRun(
            source, report.source, fd, report, quarantine, start.hasher, source.position, tee
        )
        run.fingerprint = start.fingerprint if start.note else None
        size = opened.size_on_disk()
        if size is not None and fd is not None:
            self.known.index.reserve((size - source.position) // EXPECTED_LINE_BYTES)
        if self.partition is not None and fd is not None:
            self.known.mark_elsewhere(
                fd, source.identity, self.known.index.marks.get(source.identity, 0), source.position
            )
        with self._running(run, started):
            failpoints.reach("ingest.started")
            if start.adopted:  # record the continuation now, whatever follows
                self._commit(run, Commit(_new_replay_batch(self.codec, run.name, source.position)))
            batches = self._batches(stream, run, size, start) if ahead is None else ahead.batches()
            for parsed in batches:
                if parsed.pending is not None:
                    report.pending_tail = PendingTail(*parsed.pending)
                if parsed.position > source.position:
                    self._commit(run, self.decider.apply(run, parsed))
                if opened.compression is None or tee is not None:
                    done = report.position if tee is None else opened.compressed_read()
                    tell(progress, INGESTING, done, size, BYTES, events=report.read)
            report.damage = opened.damage if ahead is None else ahead.damage
        return report

    @contextlib.contextmanager
    def _running(self, run: SourceRun, started: float) -> Iterator[None]:
        """Close the run's quarantine file and time the report, however the run ends."""
        self.known.current = run
        try:
            yield
        except BaseException:
            self.decider.forget()  # cached aggregates may hold a batch that was not committed
            raise
        finally:
            self.known.current = None
            run.quarantine.close()
            if run.report.invalid:
                run.report.quarantine_file = run.quarantine.path
            run.report.elapsed = time.perf_counter() - started

    def _batches(
        self, stream: BinaryIO, run: SourceRun, size: int | None, start: Start
    ) -> Iterator[ParsedBatch]:
        position, line, fd = run.source.position, run.source.line, run.fd
        if run.tee is not None:  # compressed: read here, from where its prefix ended
            continued, growing = position > 0 and start.last != b"\n", True
        else:
            continued, growing = fd is not None and ends_inside_a_line(fd, position), fd is not None
            use_process = self.reader_process
            if use_process is None:
                use_process = size is not None and size - position > READER_PROCESS_BYTES
            if use_process and fd is not None and self.codec.plain_json:
                return piped_batches(
                    fd,
                    position,
                    line,
                    self.batch_size,
                    run.name,
                    max_line=self.max_line,
                    continued=continued,
                )
            if fd is not None:
                stream.seek(position)
        return read_batches(
            stream,
            position,
            line,
            self.batch_size,
            self.codec,
            run.name,
            growing=growing,
            max_line=self.max_line,
            continued=continued,
        )

    def replay(
        self,
        lines: Sequence[tuple[str, int, int, bytes]],
        progress: Progress | None = None,
    ) -> IngestReport:
        """Ingest chosen lines (source name, line number, byte offset, raw), in the order
        given, which may go from one source to another and back.

        For ``reconcile``: each event keeps its own source's name and position; a
        batch holds lines of one source (a new batch starts at each change of
        source). The run is tracked as a source of its own, and the dedup index keeps
        it idempotent (ids already recorded are duplicates).
        """
        started = time.perf_counter()
        names = list(dict.fromkeys(name for name, *_ in lines))
        name = names[0] if len(names) == 1 else f"{len(names)} sources"
        identity = f"replay:{name}:{uuid4()}"
        source = Source(identity)
        self.decider.snapshotted[source.id] = 0
        report = IngestReport(source=name, identity=identity)
        qdir = os.path.join(self.state_dir, "quarantine")
        path = quarantine_path(qdir, f"replay-{name}", str(source.id), 0)
        quarantine = QuarantineFile(path, name)
        quarantine.open(0)
        run = SourceRun(source, name, None, report, quarantine, None, 0, None)
        with self._running(run, started):
            self._replay(run, lines, progress)
        return report

    def _replay(
        self,
        run: SourceRun,
        lines: Sequence[tuple[str, int, int, bytes]],
        progress: Progress | None,
    ) -> None:
        first = 0
        while first < len(lines):
            name = lines[first][0]
            end = first + 1
            while end < min(len(lines), first + self.batch_size) and lines[end][0] == name:
                end += 1
            run.name = run.quarantine.source = name  # this batch's source
            parsed = _new_replay_batch(self.codec, name, end)
            for _, number, offset, raw in lines[first:end]:
                event = parse_event(raw)
                if isinstance(event, str):
                    parsed.invalid.append((number, offset, event, raw.decode(errors="replace")))
                    continue
                parsed.add(event, number, offset, self.codec.encoded(event, number, offset))
            parsed.read = end - first
            self._commit(run, self.decider.apply(run, parsed))
            tell(progress, REPLAYING, end, len(lines), EVENTS)
            first = end

    def _prefix_problem(self, start: Start) -> str | None:
        """Why the already-ingested prefix no longer stands, or None (``start.hasher`` then
        covers it; for a compressed file, its stream is then read up to the position)."""
        source, opened, hasher = start.source, start.opened, start.hasher
        reached, start.last = hash_prefix(opened, source.position, hasher)
        if reached < source.position:
            unit = "bytes" if opened.fd is not None else "bytes uncompressed"
            return (
                f"the source was truncated: it has {reached:,} {unit}, but "
                f"{source.position:,} were ingested (up to line {source.line:,})"
            )
        if hasher.hexdigest() != source.digest:
            return (
                f"the source was rewritten: its first {source.position:,} bytes "
                f"(up to line {source.line:,}) changed since they were ingested"
            )
        return None

    # -- one batch -------------------------------------------------------------

    # -- the commit ----------------------------------------------------------

    def _commit(self, run: SourceRun, commit: Commit) -> None:
        """Commit the batch atomically with the new source position and its digest."""
        failpoints.reach("ingest.before-commit")
        report, fd = run.report, run.fd
        if commit.parsed.digest:  # the reading side hashed the bytes before its position
            run.hashed, digest = report.position, commit.parsed.digest
        else:
            if fd is not None:
                run.hashed = hash_range(fd, run.hasher, run.hashed, report.position)
            elif run.tee is not None:
                run.hashed = run.tee.hash_to(report.position)
            hashed = fd is not None or run.tee is not None
            if hashed and run.hashed < report.position:
                msg = f"{report.source}: the source shrank while it was being read"
                raise SourceRewrittenError(msg)
            digest = run.hasher.hexdigest() if hashed and run.hasher else ""
        run.source.advance(report.position, report.line, digest, dict(commit.counts))
        commit.extend(self.decider.collect(run.source))
        if run.fingerprint is not None:  # the source's first line is now in the store
            run.fingerprint.note(run.source.identity)
            commit.extend(self.decider.collect(run.fingerprint))
            run.fingerprint = None
        run.quarantine.append(commit.invalid)
        tracking = Tracking(run.tracking_name, report.position)
        nids = self._insert(commit.events, tracking, commit.by_field)
        self.known.committed(run, commit, nids)
        self._snapshot_categories(commit.due)
        self._snapshot([run.source])
        failpoints.reach("ingest.after-commit")

    def _insert(
        self, events: EventColumns, tracking: Tracking, by_field: ByFields | None = None
    ) -> list[int]:
        """Insert the events and the tracking record atomically; their notification ids
        (``by_field``: states already split, for a backend that keeps them so)."""
        return self.app.backend.insert(self.app.process_recorder, events, tracking, by_field)

    def _snapshot_categories(self, names: list[str]) -> None:
        """Snapshot the categories whose version reached a multiple of their interval in
        the batch just committed (``Commit.due``).

        A category's aggregate is loaded for its first snapshot of the run (the store
        then holds the batch just committed) and kept up to date after it.
        """
        if not names or self.app.snapshots is None:
            return
        snapshots = []
        for name in names:
            category = self.decider.category(name)
            snapshots.append(Category.Snapshot.take(category))
            self.decider.snapshotted_at(name, category.version)
        self.app.snapshots.put(snapshots)

    def _snapshot(self, aggregates: list[Any]) -> None:
        """Snapshot aggregates whose version crossed a multiple of their interval."""
        snapshots = []
        for aggregate in aggregates:
            interval = self.app.snapshot_interval(type(aggregate))
            if interval is None or self.app.snapshots is None:
                continue
            last = self.decider.snapshotted.get(aggregate.id, 0)
            if aggregate.version // interval > last // interval:
                snapshots.append(type(aggregate).Snapshot.take(aggregate))
                self.decider.snapshotted[aggregate.id] = aggregate.version
        if snapshots and self.app.snapshots is not None:
            self.app.snapshots.put(snapshots)

    def close(self) -> None:
        """Persist the dedup index and release it."""
        self.known.close()

    def __enter__(self) -> Ingestor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
