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

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eventfold.application.ingest.report import IngestReport
from eventfold.application.ingest.run import Ingestor, SourceRewrittenError
from eventfold.application.progress import BYTES, INGESTING, Progress, tell
from eventfold.infra.sourcefile import SourceError, open_source

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
    report = IngestSetReport()
    overall = None if progress is None else _Overall(progress, [_size(p) for p in paths])
    for index, path in enumerate(paths):
        told = None if overall is None else overall.file(index)
        try:
            source = open_source(path)
        except SourceError as e:  # it changed or vanished since it was looked at
            report.refused.append(Refused(_name(path), _reason(e, path)))
            if overall is not None:
                overall.done(index)
            continue
        try:
            report.files.append(ingestor.run(source, rescan=rescan, progress=told))
        except SourceRewrittenError as e:
            report.refused.append(Refused(_name(path), _reason(e, path)))
        if overall is not None:
            overall.done(index)
    report.elapsed = time.perf_counter() - started
    return report


def _size(path: str) -> int | None:
    if path == "-":
        return None
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _name(path: str) -> str:
    return path if path == "-" else os.path.realpath(path)


def _reason(error: Exception, path: str) -> str:
    """The error's message without the file name it begins with."""
    text = str(error)
    for prefix in (f"{path}: ", f"{_name(path)}: "):
        if text.startswith(prefix):
            return text[len(prefix) :]
    return text
