"""Ingest of a list of sources: each file in turn, exactly once each, one report for all.

The files come in the order ``application/sources.resolve_sources`` gives
(name order, or modification time); the first occurrence of an id in that
order is recorded, later ones are duplicates or conflicts, as within one
file. Each file keeps its own identity and position (``run.py``): a file
ingested before resumes, a renamed rotated file continues the source it was,
a file that grew is read from where it was left.

A file that cannot be read whole does not stop the others: a file rewritten
since it was ingested is refused (unless ``rescan``), a compressed file
damaged part way is ingested up to the damage; both are in the report, and
``IngestSetReport.unread`` says so (the command then exits 2).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eventfold.application.ingest.categories import stored
from eventfold.application.ingest.prefetch import Prefetcher
from eventfold.application.ingest.report import IngestReport
from eventfold.application.ingest.run import READER_PROCESS_BYTES, Ingestor, SourceRewrittenError
from eventfold.application.progress import BYTES, INGESTING, Progress, tell
from eventfold.domain.model import Source
from eventfold.infra.compression import compression_of_file
from eventfold.infra.sourcefile import SourceError, open_source, source_name

COUNTS = ("read", "ingested", "duplicates", "conflicts", "invalid")


@dataclass(frozen=True)
class Refused:
    """A file of the list that was not ingested, and why."""

    source: str
    reason: str


@dataclass
class IngestSetReport:
    """What one ingest run did over several files: each file's report, and the totals."""

    files: list[IngestReport] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    elapsed: float = 0.0

    def total(self, count: str) -> int:
        total: int = sum(getattr(report, count) for report in self.files)
        return total

    @property
    def damaged(self) -> list[IngestReport]:
        return [report for report in self.files if report.damage is not None]

    @property
    def renamed(self) -> list[IngestReport]:
        return [report for report in self.files if report.renamed_from is not None]

    @property
    def unread(self) -> list[str]:
        """One line per file not read whole (refused, or damaged), naming it."""
        lines = [f"{r.source}: {r.reason}" for r in self.refused]
        lines += [f"{r.source}: {r.damage.describe()}" for r in self.damaged if r.damage]
        return lines

    @property
    def events_per_second(self) -> float:
        return self.total("read") / self.elapsed if self.elapsed > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document of an ingest of several files (keys are only ever added)."""
        return {
            "files": [report.to_json() for report in self.files],
            "refused": [vars(r) for r in self.refused],
            "files_listed": len(self.files) + len(self.refused),
            **{count: self.total(count) for count in COUNTS},
            "files_ingested": len(self.files),
            "files_refused": len(self.refused),
            "files_damaged": len(self.damaged),
            "files_renamed": len(self.renamed),
            "pending_tails": sum(1 for r in self.files if r.pending_tail is not None),
            "elapsed_seconds": round(self.elapsed, 6),
            "events_per_second": round(self.events_per_second, 1),
        }


class _Overall:
    """Each file's progress told as part of the whole list's: bytes of all files and, with
    more than one file, which file of how many (``files``) and the events read from all
    files (``events``). With one file, its progress is told as it is."""

    def __init__(self, progress: Progress, sizes: list[int | None]) -> None:
        self.progress = progress
        self.total = None if None in sizes else sum(s or 0 for s in sizes)
        self.sizes = sizes
        self.before = 0  # bytes of the files done
        self.events_before = 0  # events read from the files done
        self.events = 0  # events read from the file being read, as last told

    def file(self, index: int) -> Progress:
        """The progress of the ``index``-th file; told at once when it is one of several."""
        self.events = 0
        many = len(self.sizes) > 1

        def told(
            phase: str,
            done: int,
            total: int | None,
            unit: str,
            *,
            files: tuple[int, int] | None = None,
            events: int | None = None,
        ) -> None:
            if phase == INGESTING and unit == BYTES:
                self.events = events if events is not None else self.events
                if many:
                    self._tell(index, self.before + done)
                else:
                    self.progress(phase, self.before + done, self.total, unit)
            else:
                tell(self.progress, phase, done, total, unit, files=files, events=events)

        if many:
            self._tell(index, self.before)
        return told

    def done(self, index: int) -> None:
        """The ``index``-th file is done (ingested, refused or damaged): all its bytes count."""
        self.before += self.sizes[index] or 0
        self.events_before += self.events
        self.events = 0
        if len(self.sizes) > 1:
            self._tell(index, self.before)
        else:
            tell(self.progress, INGESTING, self.before, self.total, BYTES)

    def _tell(self, index: int, done: int) -> None:
        files = (index + 1, len(self.sizes))
        events = self.events_before + self.events
        tell(self.progress, INGESTING, done, self.total, BYTES, files=files, events=events)


def ingest_all(
    ingestor: Ingestor,
    paths: Sequence[str],
    *,
    rescan: bool = False,
    progress: Progress | None = None,
) -> IngestSetReport:
    """Ingest ``paths`` in order (each as ``Ingestor.run``); a file refused or damaged is in
    the report and the others are ingested all the same."""
    started = time.perf_counter()
    if ingestor.partition is not None:
        _refuse_compressed(paths)
    report = IngestSetReport()
    overall = None if progress is None else _Overall(progress, [_size(p) for p in paths])
    changed: list[tuple[str, SourceRewrittenError]] = []
    with _prefetcher(ingestor, paths) as prefetch:
        for index, path in enumerate(paths):
            told = None if overall is None else overall.file(index)
            try:
                source = open_source(path)
            except SourceError as e:  # it changed or vanished since it was looked at
                report.refused.append(Refused(source_name(path), _reason(e, path)))
                if overall is not None:
                    overall.done(index)
                continue
            ahead = None if prefetch is None else prefetch.take(path)
            try:
                report.files.append(
                    ingestor.run(source, rescan=rescan, progress=told, prefetched=ahead)
                )
            except SourceRewrittenError as e:
                changed.append((path, e))
            if overall is not None:
                overall.done(index)
    _new_under_old_names(ingestor, report, changed)
    report.elapsed = time.perf_counter() - started
    return report


def _new_under_old_names(
    ingestor: Ingestor,
    report: IngestSetReport,
    changed: list[tuple[str, SourceRewrittenError]],
) -> None:
    """The files whose ingested prefix changed: a file whose earlier content another file
    of this run continues (it was rotated: renamed, or copied and truncated, and a new
    file took its name) is a new file, ingested from its start; any other is refused."""
    continued = {f.renamed_from: f.source for f in report.files if f.renamed_from}
    for path, error in changed:
        moved = continued.get(source_name(path))
        if moved is None:
            report.refused.append(Refused(source_name(path), _reason(error, path)))
            continue
        try:  # its bytes were counted in the progress already
            again = ingestor.run(path, rescan=True)
        except SourceError as e:
            report.refused.append(Refused(source_name(path), _reason(e, path)))
            continue
        again.rotated_to = moved
        report.files.append(again)


def _prefetcher(
    ingestor: Ingestor, paths: Sequence[str]
) -> contextlib.AbstractContextManager[Prefetcher | None]:
    """A ``Prefetcher`` over the files never ingested before, when reading them ahead pays:
    several files (or a compressed one) with more than ``READER_PROCESS_BYTES`` in all.
    One plain file keeps ``run.py``'s own reading process."""
    if ingestor.reader_process is False or ingestor.partition is not None:
        return contextlib.nullcontext()
    if not ingestor.codec.plain_json:
        return contextlib.nullcontext()
    new, size, compressed = [], 0, False
    for path in paths:
        if path == "-" or not os.path.isfile(path):
            continue
        if stored(ingestor.app, Source.create_id(source_name(path))):
            continue  # read by the writer, from where it was left
        new.append(path)
        size += os.path.getsize(path)
        compressed = compressed or compression_of_file(path) is not None
    pays = ingestor.reader_process is True or size > READER_PROCESS_BYTES
    if not new or not pays or (len(new) == 1 and not compressed):
        return contextlib.nullcontext()
    return Prefetcher(new, ingestor.batch_size, ingestor.max_line)


def _refuse_compressed(paths: Sequence[str]) -> None:
    """A partition reads uncompressed files only (it re-reads parts of its file by offset
    after a crash): ``SourceError`` naming the first compressed one."""
    for path in paths:
        if path == "-":
            continue
        try:
            compression = compression_of_file(path)
        except OSError:
            continue  # opening it says what is wrong
        if compression is not None:
            msg = (
                f"{path}: {compression} data; --partition on the file store reads "
                "uncompressed files only (uncompress it first, ingest it without "
                "--partition, or partition on postgres: --backend postgres)"
            )
            raise SourceError(msg)


def _size(path: str) -> int | None:
    if path == "-":
        return None
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _reason(error: Exception, path: str) -> str:
    """The error's message without the file name it begins with."""
    text = str(error)
    for prefix in (f"{path}: ", f"{source_name(path)}: "):
        if text.startswith(prefix):
            return text[len(prefix) :]
    return text
