"""A rebuild shared by N processes on any machines: ``rebuild --worker K/N`` (postgres).

The processes meet in the shared store (``Backend.rebuild_plans``):

- **The plan.** The first worker to arrive opens the projection's plan: N,
  the generation it will write and ``until``, the store's last notification
  id at that moment (and the projection's code version). Later workers, and
  restarted ones, join it; a worker of another N or another code version is
  refused (``PlanMismatchError``). Worker K folds range K of N of
  ``1..until``, split as a parallel rebuild splits it (``range_bounds``), with
  the projector's own fold.
- **The parts.** A worker writes its part (the projection's ``dump_state``,
  the events applied, its range) in one transaction at the end of its fold: a
  worker killed before leaves nothing. A part already written for K is not
  written again: the worker says so, shows that part and exits 0 like the
  first one did (a worker may be run again safely).
- **The merge.** The worker whose write makes the N-th part (writes are
  serialized), or a worker that finds all N written, merges: under the
  projection's lock, it merges the parts in range order with the projection's
  ``merge``, writes the snapshot of the new generation at ``until``, then, in
  one transaction, switches to it and closes the plan (its parts deleted). A
  crash before that transaction leaves the previous generation in use and
  the plan open with its parts: running any worker again merges them. Events
  after ``until`` are left to a later ``catchup`` (the report counts them).
- Starting a generation otherwise (a plain ``rebuild``, ``rebuild
  --compare``, a ``catchup`` that rebuilds) drops an open plan; a worker that
  then writes its part is told so (``PlanClosedError``) and writes nothing.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eventfold.application.kofn import k_of_n
from eventfold.application.progress import Progress, tell
from eventfold.application.projecting.projector import ProjectionBusyError
from eventfold.application.projecting.workers import range_bounds
from eventfold.infra import failpoints
from eventfold.infra.backends import backend_name, is_shared
from eventfold.infra.backends.base import (
    BackendError,
    PartWrite,
    RebuildPart,
    RebuildPlan,
    RebuildPlans,
)
from eventfold.infra.errors import UsageError

if TYPE_CHECKING:
    from eventfold.application.projecting.projector import ProjectionReport, Projector


class PlanMismatchError(UsageError):
    """The open plan is for another number of workers or another code version (exit 2)."""


class PlanClosedError(UsageError):
    """The plan this worker joined was dropped while it folded (exit 2): nothing written."""


@dataclass(frozen=True)
class Worker:
    """Worker ``index`` of ``count`` (``K/N`` on the command line)."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Worker:
        """``K/N`` with 1 <= K <= N; ValueError says what is wrong."""
        return cls(*k_of_n(text, "worker"))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass
class SharedRun:
    """What one worker of a shared rebuild did: its plan, its part, whether it merged."""

    worker: Worker
    plan: RebuildPlan
    opened: bool  # this worker opened the plan
    after: int  # its range: notifications after+1..last
    last: int
    applied: int = 0  # events of its range applied
    written: bool = False  # this worker wrote its part (False: written before it, or not needed)
    parts: int = 0  # parts of the plan written, as this worker last saw them
    merged: bool = False
    left_to_catchup: int = 0  # notifications after ``until`` when it merged
    note: str = ""  # why it did not merge

    def to_json(self) -> dict[str, Any]:
        """The keys a worker adds to ``rebuild --json``."""
        plan = self.plan
        return {
            "worker": str(self.worker),
            "merged": self.merged,
            "plan": {
                "workers": plan.workers,
                "generation": plan.generation,
                "until": plan.until,
                "opened": self.opened,
            },
            "part": {
                "after": self.after,
                "last": self.last,
                "events_applied": self.applied,
                "written": self.written,
            },
            "parts_written": self.parts,
            "left_to_catchup": self.left_to_catchup if self.merged else None,
            "not_merged_because": self.note or None,
        }


def require_shared(backend: str | None) -> None:
    """Refuse (``BackendError``, exit 2) a backend that machines do not share."""
    name = backend_name(backend)
    if not is_shared(name):
        raise BackendError(_unshared(name))


def _unshared(name: str) -> str:
    return (
        "--worker needs the postgres backend: the workers of a shared rebuild meet in its "
        f"database (this store is on the {name} backend; --workers N folds in N processes "
        "of one machine)"
    )


def rebuild_worker(
    projector: Projector, worker: Worker, progress: Progress | None = None
) -> ProjectionReport:
    """Be worker ``worker`` of the projection's shared rebuild (the module's docstring).

    The report is the whole rebuild's when this worker merged; else its part's
    (its range, events applied and state), its ``shared.note`` saying why it did not
    merge. Either way ``shared`` says what it did. ``ProjectionBusyError`` when a
    plain rebuild or ``follow`` holds the projection (at the start, or at the merge).
    """
    started = time.perf_counter()
    projection = projector.projection
    plans = projector.app.backend.rebuild_plans(projection.name)
    if plans is None:
        raise BackendError(_unshared(projector.app.backend.name))
    with projector._lock(required=True):
        pass  # only a look: the workers fold side by side; the merge takes the lock
    end = projector.app.recorder.max_notification_id() or 0
    plan, opened = plans.open(worker.count, projection.version, end)
    _check_joins(projection.name, projection.version, plan, worker)
    bounds = range_bounds(plan.until, plan.workers)
    run = SharedRun(worker, plan, opened, bounds[worker.index - 1], bounds[worker.index])
    state: Any
    found = plans.parts(plan, worker.index)
    if found:
        state = projection.load_state(found[0].state)
        run.applied = found[0].applied
        outcome = PartWrite("present", len(plans.written(plan)))
    else:
        state = projection.initial()
        run.applied = projector.fold_range(state, run.after, run.last, 0, _folding(progress))
        dumped = projection.dump_state(state)
        part = RebuildPart(worker.index, run.after, run.last, run.applied, dumped)
        outcome = plans.write_part(plan, part)
        failpoints.reach("rebuild.part-written")
    if outcome.outcome == "closed":
        if projector.snapshots.current() != plan.generation:
            msg = (
                f"projection {projection.name}: the shared rebuild of {plan.generation} was "
                "dropped while this worker folded (a plain rebuild or a catch-up started a "
                "newer generation); nothing was written: start its workers again"
            )
            raise PlanClosedError(msg)
        run.note = "another worker merged the plan while this one folded"
        return _part_report(projector, run, state, started)
    run.written, run.parts = outcome.outcome == "written", outcome.parts
    if outcome.parts >= plan.workers:
        merged = _merge(projector, plans, run, started)
        if merged is not None:
            return merged
        run.note = "another worker merged the plan"
    else:
        run.note = (
            f"the merge is left to the last worker ({outcome.parts:,} of "
            f"{plan.workers:,} parts written)"
        )
    return _part_report(projector, run, state, started)


def _check_joins(name: str, version: int, plan: RebuildPlan, worker: Worker) -> None:
    """Refuse a worker whose N or code version is not the open plan's."""
    opened = f"a rebuild shared by {plan.workers} workers is open ({plan.generation}"
    if plan.workers != worker.count:
        msg = (
            f"projection {name}: {opened}, notifications 1 to {plan.until:,}): start each "
            f"worker as --worker K/{plan.workers}, K from 1 to {plan.workers} (a plain "
            "rebuild drops the plan)"
        )
        raise PlanMismatchError(msg)
    if plan.version != version:
        msg = (
            f"projection {name}: {opened}) by version {plan.version} of the projection, "
            f"this is version {version}: run every worker with the same code (a plain "
            "rebuild drops the plan)"
        )
        raise PlanMismatchError(msg)


def _folding(progress: Progress | None) -> Progress:
    """``progress`` of a worker's fold, told per page; failpoint ``rebuild.worker-page``
    there (the fold goes on, nothing written yet)."""

    def told(
        phase: str,
        done: int,
        total: int | None,
        unit: str,
        *,
        files: tuple[int, int] | None = None,
        events: int | None = None,
    ) -> None:
        failpoints.reach("rebuild.worker-page")
        tell(progress, phase, done, total, unit, files=files, events=events)

    return told


def _merge(
    projector: Projector, plans: RebuildPlans, run: SharedRun, started: float
) -> ProjectionReport | None:
    """Merge every part of ``run.plan`` under the projection's lock, write the new
    generation's snapshot at ``until``, switch and close the plan; None when another
    worker merged it first."""
    plan, projection = run.plan, projector.projection
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(projector._lock(required=True))
        except ProjectionBusyError as e:
            msg = (
                f"{e}; all {plan.workers} parts of the shared rebuild of {plan.generation} "
                "are written: run any of its workers again to merge them"
            )
            raise ProjectionBusyError(msg) from None
        if plans.plan() != plan:
            return None
        parts = plans.parts(plan)
        bounds = range_bounds(plan.until, plan.workers)
        planned = [(k, bounds[k - 1], bounds[k]) for k in range(1, plan.workers + 1)]
        if [(p.worker, p.after, p.last) for p in parts] != planned:
            msg = f"the parts of {plan.generation} do not cover notifications 1 to {plan.until:,}"
            raise UsageError(msg)
        state: Any = None
        applied = 0
        for part in parts:
            loaded = projection.load_state(part.state)
            state = loaded if state is None else projection.merge_into(state, loaded)
            applied += part.applied
        canonical = projection.canonical(state)
        written = projector.snapshots.write(plan.generation, state, plan.until, applied, canonical)
        failpoints.reach("projection.after-snapshot")
        failpoints.reach("projection.before-switch")
        if not plans.complete(plan):
            return None
    run.merged, run.note = True, ""
    run.left_to_catchup = max(0, (projector.app.recorder.max_notification_id() or 0) - plan.until)
    report = projector._report(
        "rebuild",
        plan.generation,
        0,
        plan.until,
        applied,
        state,
        None,
        written,
        [],
        plan.workers,
        started,
        canonical,
    )
    report.shared = run
    return report


def _part_report(
    projector: Projector, run: SharedRun, state: Any, started: float
) -> ProjectionReport:
    """The report of a worker that did not merge: its range and its part's state."""
    report = projector._report(
        "rebuild",
        run.plan.generation,
        run.after,
        run.last,
        run.applied,
        state,
        None,
        None,
        [],
        run.plan.workers,
        started,
    )
    report.unwritten, report.shared = "a worker's part; the merge writes the snapshot", run
    return report
