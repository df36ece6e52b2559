"""Parallel rebuilds: disjoint ranges of notification ids folded in worker processes, merged.

Projections are order-independent folds with a ``merge``, so ``workers``
processes (this one and ``workers - 1`` children) fold disjoint ranges and
merge, in the order of the ranges, to exactly the single-process state.
A worker runs ``fold_range`` through the one entry point of child processes
(``application/children.py``) and writes JSON lines on stdout: ``{"folded": N}``
as it goes (notifications of its range folded so far), then its result
``{"applied": N}`` and, on the next line, its state as the projection's
``dump_state`` gives it (``msgspec`` for ``category_totals``: the parent
decodes it without building a JSON document first).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from eventfold.application.app import open_app
from eventfold.application.progress import NOTIFICATIONS, REBUILDING, Progress, tell
from eventfold.projections.registry import load_projection

if TYPE_CHECKING:
    from eventfold.application.projecting.projector import Projector


def range_bounds(last: int, workers: int) -> list[int]:
    """The bounds of ``workers`` disjoint ranges of notifications ``1..last``: range ``k``
    (from 1) is ``bounds[k-1]+1..bounds[k]``. A parallel rebuild and a rebuild shared
    by several machines (``distributed.py``) split the store alike."""
    return [last * k // workers for k in range(workers + 1)]


def fold_parallel(
    projector: Projector, last: int, workers: int, progress: Progress | None = None
) -> tuple[Any, int]:
    """Fold disjoint ranges of notification ids, then merge them in order.

    Worker processes fold the first ``workers - 1`` ranges while this process
    folds the last one (so one core is not left waiting while the workers
    start). Each worker reports the notifications it has folded as it goes;
    ``progress`` is told the sum over every range, of ``last``, as reports arrive.
    """
    bounds = range_bounds(last, workers)
    spec = f"{type(projector.projection).__module__}:{type(projector.projection).__qualname__}"
    env = os.environ | projector.app.backend.worker_env()  # workers open the same store
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "eventfold.application.children",
                "fold",
                projector.store_dir,
                projector.app.backend.name,
                spec,
                str(bounds[k]),
                str(bounds[k + 1]),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for k in range(workers - 1)
    ]
    try:
        reports = _Reports(children, bounds, progress)
        own = projector.projection.initial()
        own_applied = projector._fold(
            own, bounds[-2], bounds[-1], None, 0, reports.own_progress, REBUILDING
        )
        results = reports.collect()
    finally:
        for child in children:
            child.kill()
            child.wait()
    projection = projector.projection
    state: Any = None  # the first part, then merged with each next one
    applied = 0
    for doc in results:
        part = projection.load_state(doc.pop("state"))  # its bytes are not kept meanwhile
        state = part if state is None else projection.merge_into(state, part)
        applied += int(doc["applied"])
    return projection.merge_into(state, own), applied + own_applied


class _Reports:
    """The workers' reports, read by one thread per worker; the sum folded told to
    ``progress`` from the calling thread only (as this process folds, and in ``collect``)."""

    def __init__(
        self,
        children: list[subprocess.Popen[bytes]],
        bounds: list[int],
        progress: Progress | None,
    ) -> None:
        self.children, self.bounds, self.progress = children, bounds, progress
        self.queue: queue.Queue[tuple[int, dict[str, Any] | None]] = queue.Queue()
        self.folded = [0] * (len(bounds) - 1)  # per range; the last one is this process's
        self.results: dict[int, dict[str, Any]] = {}
        self.running = len(children)
        for k, child in enumerate(children):
            threading.Thread(target=self._read, args=(k, child), daemon=True).start()

    def _read(self, k: int, child: subprocess.Popen[bytes]) -> None:
        assert child.stdout is not None
        lines = iter(child.stdout)
        for line in lines:
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if "applied" in doc:  # the result: its state is the next line, as it is
                state = next(lines, None)
                if state is None:
                    break
                doc["state"] = state
            self.queue.put((k, doc))
        self.queue.put((k, None))

    def own_progress(
        self, phase: str, done: int, total: int | None, unit: str, **_: object
    ) -> None:
        """This process's fold's progress (its range's count): told with the workers'."""
        self.folded[-1] = done
        while True:
            try:
                self._take(*self.queue.get_nowait())
            except queue.Empty:
                break
        self._tell()

    def _take(self, k: int, doc: dict[str, Any] | None) -> None:
        if doc is None:
            self.running -= 1
        elif "folded" in doc:
            self.folded[k] = max(self.folded[k], int(doc["folded"]))
        else:
            self.results[k] = doc
            self.folded[k] = self.bounds[k + 1] - self.bounds[k]

    def _tell(self) -> None:
        tell(self.progress, REBUILDING, sum(self.folded), self.bounds[-1], NOTIFICATIONS)

    def collect(self) -> list[dict[str, Any]]:
        """Each worker's result, in order, once every worker is done."""
        while self.running:
            self._take(*self.queue.get())
            self._tell()
        for k, child in enumerate(self.children):
            assert child.stderr is not None
            err = child.stderr.read()
            if child.wait() != 0 or k not in self.results:
                msg = f"a rebuild worker failed: {err.decode(errors='replace').strip()}"
                raise RuntimeError(msg)
        return [self.results[k] for k in range(len(self.children))]


def fold_range(
    store_dir: str,
    backend: str,
    spec: str,
    after: int,
    last: int,
    folded: Callable[[int], None] | None = None,
) -> tuple[bytes, int]:
    """In a worker process: fold ``after+1..last`` from an empty state; tell ``folded`` the
    notifications folded so far, per page. The state (``dump_state``) and the events
    applied."""
    app = open_app(store_dir, backend)
    try:
        projection = load_projection(spec)
        state = projection.initial()
        from eventfold.application.projecting.projector import Projector

        def progress(phase: str, done: int, total: int | None, unit: str, **_: object) -> None:
            if folded is not None:
                folded(done)

        applied = Projector(app, store_dir, projection)._fold(
            state, after, last, None, 0, progress, REBUILDING
        )
        return projection.dump_state(state), applied
    finally:
        app.close()
