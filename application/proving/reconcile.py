"""Reconcile: find the source events the store lacks, replay them, prove the result.

Missing events are found by id (so it works when source positions were lost) in
the sources read in order (the first valid occurrence of an id counts, as in
ingest), replayed in event order (timestamp, then file order, then position;
events without a timestamp first) through the same idempotent ingest, each
keeping its own file, line and offset, and the projection is caught up and
verified again. A second run finds nothing to replay.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, BinaryIO

from eventfold.application.app import Eventfold
from eventfold.application.ingest import Ingestor
from eventfold.application.ingest.report import IngestReport
from eventfold.application.progress import Progress
from eventfold.application.projecting import Projector
from eventfold.application.proving.eventdiff import EventDiff
from eventfold.application.proving.fromsources import read_expected_source
from eventfold.application.proving.reference import SourceRecord
from eventfold.application.proving.verify import VerifyReport, verify_source
from eventfold.application.sources import SourceList
from eventfold.infra.lines import MAX_LINE_BYTES
from eventfold.infra.sourcefile import open_source, regular_copy, source_name
from eventfold.projections.builtin import CategoryTotals
from eventfold.projections.registry import UnknownProjectionError, load_projection

SAMPLES = 20
EARLIEST = datetime.min.replace(tzinfo=UTC)


DECIDE = (
    "decide which side is right: correct a wrong source; recorded events are never "
    "rewritten, so if the store is wrong, ingest the right source into a new store"
)


def inspect_step(command: str) -> str:
    """The next step when the store and a source disagree: ``command`` shows both
    versions of each conflicting event (every report words it so)."""
    return f"inspect them with {command} (both versions, with their lines) and {DECIDE}"


def left_steps(events: EventDiff, command: str) -> list[str]:
    """The next steps for what reconcile leaves as it is, one for each kind there is
    (conflicting, extra, recorded twice); ``command`` shows them (every report words
    them so)."""
    steps = [inspect_step(command)] if events.conflicting_count else []
    if events.extra_count:
        steps.append(
            f"see the extra events with {command} (each with the file and line it was "
            "recorded from): if they came from sources not given here, give those too; if "
            "they do not belong in the store, ingest the right sources into a new store "
            "(recorded events are never removed)"
        )
    if events.duplicated_count:
        steps.append(
            f"see the events recorded twice with {command} (each counts twice): recorded "
            "events are never removed, so to count each once, ingest the sources into a new "
            "store"
        )
    return steps


def left_parts(events: EventDiff, many: bool) -> list[str]:
    """What reconcile leaves as it is, each kind there is in words (``many``: several
    sources were read)."""
    sources = "the sources" if many else "the source"
    parts = []
    if events.conflicting_count:
        n = events.conflicting_count
        parts.append(f"{n:,} conflicting event{'s' * (n != 1)} (the store and {sources} disagree)")
    if events.extra_count:
        n = events.extra_count
        parts.append(f"{n:,} extra event{'s' * (n != 1)} (in the store, not in {sources})")
    if events.duplicated_count:
        parts.append(f"{events.duplicated_count:,} recorded twice")
    return parts


@dataclass(frozen=True)
class Gap:
    """Consecutive missing events of one source file (no recorded event between them)."""

    first_line: int
    last_line: int
    events: int
    source: str = "-"  # the file's name


@dataclass
class ReconcileReport:
    source: str | None  # the one source's name; None with several (``sources``)
    before: VerifyReport
    after: VerifyReport | None
    missing: int
    gaps: list[Gap]
    plan: list[dict[str, Any]]  # the first ``limit`` replays, in replay order
    replay: IngestReport | None = None
    dry_run: bool = False
    elapsed: float = 0.0
    caught_up: list[str] = field(default_factory=list)  # other projections brought up to date
    limit: int = SAMPLES  # rows of each list shown (0: all)
    sources: list[str] = field(default_factory=list)  # the names of the sources, in order

    @property
    def matches(self) -> bool:
        final = self.after or self.before
        return final.matches

    def verify_arguments(self, asked: SourceList | None = None) -> list[str]:
        """The sources of a ``verify`` that shows what is left: ``asked``, the sources
        as they were given (None: each file read, as ``--source NAME``)."""
        if asked is not None:
            return asked.arguments("--source")
        return [word for name in self.sources for word in ("--source", name)]

    def unresolved(
        self, store_options: Sequence[str] = (), asked: SourceList | None = None
    ) -> dict[str, Any] | None:
        """What reconcile leaves as it is, and the next step; None when nothing is left.

        It only adds missing events: events that conflict with the source (same id,
        other content), extra events and ids recorded twice stay as they are.
        ``store_options`` (``--store DIR`` ...) and the sources as given (``asked``; see
        ``verify_arguments``) go into the command of the next step.
        """
        final = self.after or self.before
        e = final.events
        if e is None or not (e.conflicting_count or e.extra_count or e.duplicated_count):
            return None
        given = [*self.verify_arguments(asked), *store_options]
        return {
            "conflicting_events": e.conflicting_count,
            "conflicting_ids": [row["id"] for row in e.conflicting],
            "extra_events": e.extra_count,
            "extra_ids": [row["id"] for row in e.extra],
            "duplicated_events": e.duplicated_count,
            "next_step": "; ".join(
                left_steps(e, f"`{shlex.join(['eventfold', 'verify', *given])}`")
            ),
        }

    def to_json(
        self, store_options: Sequence[str] = (), asked: SourceList | None = None
    ) -> dict[str, Any]:
        """The ``--json`` document of ``reconcile`` (keys are only ever added);
        ``store_options`` and ``asked`` go into the command of ``unresolved.next_step``."""
        r = self.replay
        return {
            "source": self.source,
            "sources": self.sources,
            "status": "match" if self.matches else "mismatch",
            "dry_run": self.dry_run,
            "missing": self.missing,
            "replayed": 0 if r is None else r.ingested,
            "duplicates": 0 if r is None else r.duplicates,
            "conflicts": 0 if r is None else r.conflicts,
            "gaps": [vars(g) for g in self.gaps],
            "plan": self.plan,
            "before": self.before.to_json(),
            "after": None if self.after is None else self.after.to_json(),
            "elapsed_seconds": round(self.elapsed, 6),
            "projections_caught_up": self.caught_up,
            "unresolved": self.unresolved(store_options, asked),
        }


def reconcile(
    app: Eventfold,
    store_dir: str,
    source: str | Sequence[str],
    *,
    dry_run: bool = False,
    batch: int = 1000,
    max_line: int = MAX_LINE_BYTES,
    limit: int = SAMPLES,
    progress: Progress | None = None,
) -> ReconcileReport:
    """Verify against ``source`` (a file, or files in reading order as ``resolve_sources``
    gives them; ``-``: standard input, kept in a temporary copy while it runs, since the
    missing lines are read a second time), replay what the store lacks (unless
    ``dry_run``), verify again. The plan and the event lists keep ``limit`` rows (0:
    all). ``progress`` is told each phase: reading the sources, catching up, comparing
    (finding the missing events), replaying."""
    started = time.perf_counter()
    given = [source] if isinstance(source, str) else list(source)
    names = [source_name(p) for p in given]
    with contextlib.ExitStack() as stack:
        paths = [stack.enter_context(regular_copy(p)) for p in given]
        report = _reconcile(app, store_dir, paths, names, dry_run, batch, max_line, limit, progress)
    report.elapsed = time.perf_counter() - started
    return report


def _reconcile(
    app: Eventfold,
    store_dir: str,
    paths: list[str],
    names: list[str],
    dry_run: bool,
    batch: int,
    max_line: int,
    limit: int,
    progress: Progress | None,
) -> ReconcileReport:
    expected = read_expected_source(paths, max_line, progress, names=names)
    before = verify_source(app, store_dir, expected, limit, progress)
    assert before.events is not None
    missing = [(event_id, expected.records[event_id]) for event_id in before.events.missing_ids]
    order = sorted(missing, key=lambda m: (m[1].occurred_at or EARLIEST, m[1].file, m[1].line))
    plan = [_planned(event_id, record) for event_id, record in (order[:limit] if limit else order)]
    report = ReconcileReport(
        before.source,
        before,
        None,
        len(missing),
        _gaps(expected.records, set(before.events.missing_ids)),
        plan,
        dry_run=dry_run,
        limit=limit,
        sources=expected.sources,
    )
    if not dry_run and missing:
        raws = _raw_lines(paths, [record for _, record in order])
        lines = [(r.source, r.line, r.offset, raws[r.file, r.offset]) for _, r in order]
        with Ingestor(app, store_dir, batch=batch, max_line=max_line) as ingestor:
            report.replay = ingestor.replay(lines, progress)
        report.after = verify_source(app, store_dir, expected, limit, progress)
        report.caught_up = catch_up_all(app, store_dir, progress)
    return report


def _raw_lines(paths: list[str], records: Iterable[SourceRecord]) -> dict[tuple[int, int], bytes]:
    """The raw bytes of ``records``' lines, by (file, uncompressed offset): a plain file's
    by ``pread``, a compressed file's by reading it once more, picking them in one pass."""
    wanted: dict[int, dict[int, int]] = {}
    for r in records:
        wanted.setdefault(r.file, {})[r.offset] = r.length
    raws: dict[tuple[int, int], bytes] = {}
    for file, lines in wanted.items():
        with open_source(paths[file]) as source:
            if source.fd is not None:
                for offset, length in lines.items():
                    raws[file, offset] = os.pread(source.fd, length, offset)
                continue
            at = 0
            for offset in sorted(lines):
                _skip(source.stream, offset - at)  # past the lines not wanted
                raws[file, offset] = _read(source.stream, lines[offset])
                at = offset + lines[offset]
    return raws


def _skip(stream: BinaryIO, size: int) -> None:
    """Read past the next ``size`` bytes of ``stream``, keeping none of them."""
    while size > 0 and (part := stream.read(min(size, 1 << 20))):
        size -= len(part)


def _read(stream: BinaryIO, size: int) -> bytes:
    """The next ``size`` bytes of ``stream`` (fewer at its end), a MiB at a time."""
    parts: list[bytes] = []
    while size > 0 and (part := stream.read(min(size, 1 << 20))):
        parts.append(part)
        size -= len(part)
    return b"".join(parts)


def catch_up_all(app: Eventfold, store_dir: str, progress: Progress | None = None) -> list[str]:
    """Catch up every other projection the store has (category_totals is, by verify)."""
    done = []
    for name in app.backend.projection_names():
        if name == CategoryTotals.name:
            continue
        try:
            projection = load_projection(name)
        except UnknownProjectionError:
            continue  # its code is not installed here
        Projector(app, store_dir, projection).catchup(progress=progress)
        done.append(name)
    return done


def _planned(event_id: str, record: SourceRecord) -> dict[str, Any]:
    return {
        "id": event_id,
        "category": record.category,
        "value": str(record.value),
        "timestamp": None if record.occurred_at is None else record.occurred_at.isoformat(),
        "line": record.line,
        "offset": record.offset,
        "source": record.source,
    }


def _gaps(records: dict[str, SourceRecord], missing: set[str]) -> list[Gap]:
    """Runs of missing events in source order, each within one file."""
    gaps: list[Gap] = []
    run: list[SourceRecord] = []
    for event_id, record in records.items():  # insertion order is source order
        if run and (event_id not in missing or record.file != run[0].file):
            gaps.append(Gap(run[0].line, run[-1].line, len(run), run[0].source))
            run = []
        if event_id in missing:
            run.append(record)
    if run:
        gaps.append(Gap(run[0].line, run[-1].line, len(run), run[0].source))
    return gaps
