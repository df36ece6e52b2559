"""Parallel rebuilds: disjoint ranges of notification ids folded in worker processes, merged.

Projections are order-independent folds with a ``merge``, so ``workers``
processes fold disjoint ranges and merge to exactly the single-process state.
A worker runs ``fold_range`` through the one entry point of child processes
(``application/children.py``) and writes JSON lines on stdout: ``{"folded": N}``
as it goes (notifications of its range folded so far), then its result
``{"state", "applied"}``.
"""

from __future__ import annotations

import contextlib
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


def fold_parallel(
    projector: Projector, last: int, workers: int, progress: Progress | None = None
) -> tuple[Any, int]:
    """Fold disjoint ranges of notification ids in worker processes, then merge.

    Each worker reports the notifications it has folded as it goes; ``progress`` is
    told their sum, of ``last``, as the reports arrive.
    """
    bounds = [last * k // workers for k in range(workers + 1)]
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
        for k in range(workers)
    ]
    try:
        results = _collect(children, bounds, progress)
    finally:
        for child in children:
            child.kill()
            child.wait()
    projection = projector.projection
    state: Any = None  # the first part, then merged with each next one
    applied = 0
    for doc in results:
        part = projection.from_json(doc.pop("state"))  # its JSON is not kept meanwhile
        state = part if state is None else projection.merge(state, part)
        applied += int(doc["applied"])
    return state, applied


def _collect(
    children: list[subprocess.Popen[bytes]], bounds: list[int], progress: Progress | None
) -> list[dict[str, Any]]:
    """Each worker's result, in order; ``progress`` told the sum folded as reports arrive."""
    reports: queue.Queue[tuple[int, dict[str, Any] | None]] = queue.Queue()

    def read(k: int, child: subprocess.Popen[bytes]) -> None:
        assert child.stdout is not None
        for line in child.stdout:
            with contextlib.suppress(ValueError):
                reports.put((k, json.loads(line)))
        reports.put((k, None))

    for k, child in enumerate(children):
        threading.Thread(target=read, args=(k, child), daemon=True).start()
    folded = [0] * len(children)
    results: dict[int, dict[str, Any]] = {}
    running = len(children)
    while running:
        k, doc = reports.get()
        if doc is None:
            running -= 1
            continue
        if "folded" in doc:
            folded[k] = max(folded[k], int(doc["folded"]))
        else:
            results[k] = doc
            folded[k] = bounds[k + 1] - bounds[k]
        tell(progress, REBUILDING, sum(folded), bounds[-1], NOTIFICATIONS)
    for k, child in enumerate(children):
        assert child.stderr is not None
        err = child.stderr.read()
        if child.wait() != 0 or k not in results:
            msg = f"a rebuild worker failed: {err.decode(errors='replace').strip()}"
            raise RuntimeError(msg)
    return [results[k] for k in range(len(children))]


def fold_range(
    store_dir: str,
    backend: str,
    spec: str,
    after: int,
    last: int,
    folded: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """In a worker process: fold ``after+1..last`` from an empty state; tell ``folded`` the
    notifications folded so far, per page."""
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
        return {"state": projection.to_json(state), "applied": applied}
    finally:
        app.close()
