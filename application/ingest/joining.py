"""The join: partitions' events become the store's one log, file by file, in plan order.

``join_ready`` joins every file that is ready, in the plan's order, and stops
at the first file whose partition has not finished it (joining what that
partition has committed of it so far). Each step is one transaction
(``PartitionTables.join_step``), so a process killed at any instant leaves
the log, the cursors and the plan in step, and any partition's next run goes
on from there. An id that an earlier file holds is not copied: with the same
category, value and time it is a duplicate, else a conflict (recorded as a
``Source.Conflicted`` with both versions); a ``Source.Recounted`` moves the
file's counts from ``ingested`` to ``duplicates`` and ``conflicts``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from eventfold.application.app import Eventfold
from eventfold.application.ingest.deciding import recorded_occurrence
from eventfold.application.ingest.tracking import PREFIX
from eventfold.application.recorded import NIL, RECORDED_TOPIC
from eventfold.domain.model import Category, Source
from eventfold.infra.backends.partitions import (
    PartitionBackend,
    PartitionTables,
    PlannedFile,
    Repeat,
)


@dataclass
class JoinReport:
    """What joined the log in one call of ``join_ready``, and what waits."""

    events: int = 0  # source events (``Category.Recorded``) copied to the log
    files: int = 0  # files that joined whole
    duplicates: int = 0  # ids an earlier file of another partition holds, same content
    conflicts: int = 0  # ... other content
    waiting: PlannedFile | None = None  # the first file not joined whole, if any
    waiting_on: str | None = None  # its partition, "K/N"
    busy: bool = False  # another process was joining (it goes on)
    seconds: float = 0.0  # spent joining (waiting for another joining process included)

    def to_json(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "files": self.files,
            "duplicates": self.duplicates,
            "conflicts": self.conflicts,
            "waiting_file": None if self.waiting is None else self.waiting.identity,
            "waiting_on": self.waiting_on,
            "elapsed_seconds": round(self.seconds, 6),
        }


def join_ready(
    log_app: Eventfold,
    tables: PartitionTables,
    count: int,
    *,
    wait: bool,
    report: JoinReport | None = None,
) -> JoinReport:
    """Join every file that is ready (``wait``: for another joining process to finish
    first; else return at once when one is joining), adding to ``report``."""
    report = JoinReport() if report is None else report
    report.waiting, report.waiting_on, report.busy = None, None, False
    started = time.perf_counter()
    try:
        _join(log_app, tables, count, wait, report)
    finally:
        report.seconds += time.perf_counter() - started
    return report


# Rows a partition's commits gather before its join thread claims them, in one
# transaction: a few commits' worth, so that claiming adds few commits of its own.
CLAIM_ROWS = 8192


class BackgroundJoin:
    """Joins what is ready in a thread of its own, when asked (a partition finished a
    file), while the partition reads its next file: the join is the server's work, so
    the thread mostly waits on it. While ``claiming``, the thread also claims the ids of
    the partition's commits once ``CLAIM_ROWS`` rows wait (``nudge``), and all of them
    before a join. ``close`` waits for the step under way and raises what the thread
    raised."""

    def __init__(self, log_app: Eventfold, tables: PartitionTables, count: int) -> None:
        self.report = JoinReport()
        self._args = (log_app, tables, count)
        self._wake = threading.Event()
        self._asks = 0  # ``ask`` calls: one thread asks
        self._closing = False
        self._claim: Callable[[int], int] | None = None
        self._claim_lock = threading.Lock()  # held while the thread claims
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="eventfold-join", daemon=True)
        self._thread.start()

    def ask(self) -> None:
        """Join what is ready, soon (asks made while a join runs are one more join)."""
        self._asks += 1
        self._wake.set()

    def nudge(self) -> None:
        """The partition committed: claim its ids, soon."""
        self._wake.set()

    @contextlib.contextmanager
    def claiming(self, backend: PartitionBackend) -> Iterator[None]:
        """Within the block, each commit of ``backend`` nudges the thread, which claims
        them (``claim_committed``); at a normal end the rest are claimed here, so that
        every commit of the block is claimed when it returns. After an error, what is
        left unclaimed is claimed by the join."""
        with self._claim_lock:
            self._claim = backend.claim_committed
        backend.on_commit = self.nudge
        ended = False
        try:
            yield
            ended = True
        finally:
            with self._claim_lock:
                self._claim = None
            if ended:
                backend.claim_committed()

    def _run(self) -> None:
        answered = 0
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                asks = self._asks
                joining = asks != answered and not self._closing
                with self._claim_lock:
                    if self._claim is not None:
                        self._claim(1 if joining else CLAIM_ROWS)
                if self._closing:
                    return
                if joining:
                    answered = asks
                    log_app, tables, count = self._args
                    join_ready(log_app, tables, count, wait=False, report=self.report)
        except BaseException as e:  # handed to ``close``
            self._error = e

    def close(self) -> JoinReport:
        """Stop after the step under way; the report so far."""
        self._closing = True
        self._wake.set()
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self.report


def _join(
    log_app: Eventfold, tables: PartitionTables, count: int, wait: bool, report: JoinReport
) -> None:
    while True:
        step = tables.join_step(count, _corrections(log_app, report), _tracking_prefix, wait=wait)
        if step is None:
            report.busy = True
            return
        if step.planned is None:
            return
        report.events += step.copied
        if not step.finished:
            report.waiting = step.planned
            report.waiting_on = f"{step.planned.partition}/{count}"
            return
        report.files += 1


def _tracking_prefix(identity: str) -> str:
    """The start of the names of a file's ingest tracking records (``tracking.py``)."""
    return f"{PREFIX}{Source.create_id(identity)}:"


def _corrections(
    log_app: Eventfold, report: JoinReport
) -> Callable[[list[Repeat], Callable[[UUID], int]], Sequence[StoredEvent]]:
    """The source events that record a step's repeats (all of one file)."""

    def corrections(
        repeats: list[Repeat], next_version: Callable[[UUID], int]
    ) -> list[StoredEvent]:
        mapper = log_app.mapper
        events: list[Any] = []
        duplicates = conflicts = 0
        source_id: UUID | None = None
        for repeat in repeats:
            later_event = _recorded(log_app, repeat.state)
            later, later_described = recorded_occurrence(later_event)
            first, first_described = recorded_occurrence(
                _recorded(log_app, repeat.first_state), repeat.first_position
            )
            source_id = Source.create_id(later_event.source)
            if first.same_content(later):
                duplicates += 1
                continue
            conflicts += 1
            events.append(
                Source.Conflicted(  # type: ignore[attr-defined]
                    originator_id=source_id,
                    originator_version=next_version(source_id),
                    timestamp=Category.Recorded.create_timestamp(),
                    event_id=later.event_id,
                    line=later_event.line,
                    offset=later_event.offset,
                    first=first_described,
                    later=later_described,
                )
            )
        assert source_id is not None
        events.append(
            Source.Recounted(  # type: ignore[attr-defined]
                originator_id=source_id,
                originator_version=next_version(source_id),
                timestamp=Category.Recorded.create_timestamp(),
                counts={
                    "ingested": -(duplicates + conflicts),
                    "duplicates": duplicates,
                    "conflicts": conflicts,
                },
            )
        )
        report.duplicates += duplicates
        report.conflicts += conflicts
        return [mapper.to_stored_event(e) for e in events]

    return corrections


def _recorded(app: Eventfold, state: bytes) -> Any:
    stored = StoredEvent(originator_id=NIL, originator_version=1, topic=RECORDED_TOPIC, state=state)
    event = app.mapper.to_domain_event(stored)
    assert isinstance(event, Category.Recorded)
    return event
