"""Parallel rebuilds: disjoint ranges of notification ids folded in worker processes, merged.

Projections are order-independent folds with a ``merge``, so ``workers``
processes fold disjoint ranges and merge to exactly the single-process state.
A worker runs ``fold_range`` through the one entry point of child processes
(``application/children.py``) and writes its state as JSON on stdout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING, Any

from eventfold.application.app import open_app
from eventfold.projections.registry import load_projection

if TYPE_CHECKING:
    from eventfold.application.projecting.projector import Projector


def fold_parallel(projector: Projector, last: int, workers: int) -> tuple[Any, int]:
    """Fold disjoint ranges of notification ids in worker processes, then merge."""
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
    state, applied = projector.projection.initial(), 0
    for child in children:
        out, err = child.communicate()
        if child.returncode != 0:
            for other in children:
                other.kill()
            msg = f"a rebuild worker failed: {err.decode(errors='replace').strip()}"
            raise RuntimeError(msg)
        doc = json.loads(out)
        state = projector.projection.merge(state, projector.projection.from_json(doc["state"]))
        applied += int(doc["applied"])
    return state, applied


def fold_range(store_dir: str, backend: str, spec: str, after: int, last: int) -> dict[str, Any]:
    """In a worker process: fold ``after+1..last`` from an empty state."""
    app = open_app(store_dir, backend)
    try:
        projection = load_projection(spec)
        state = projection.initial()
        from eventfold.application.projecting.projector import Projector

        applied = Projector(app, store_dir, projection)._fold(state, after, last, None, 0, None)
        return {"state": projection.to_json(state), "applied": applied}
    finally:
        app.close()
