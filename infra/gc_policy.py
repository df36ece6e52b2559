"""The garbage collector's thresholds in eventfold's own processes.

An ingest or a rebuild makes millions of container objects, and most of them
live to the end of the run: the index's tables, the ingest's streams, a
projection's entries. With CPython's default thresholds every 700 new containers
start a collection, every tenth of those a second-generation one, and the
growing heap is walked again and again: 0.4 s of a rebuild of 100,000
categories, 0.8 s of an ingest into them, 2.9 s of an ingest of 10 million
events (docs/PERFORMANCE.md). Eventfold's code makes no reference cycles on
those paths, so its processes collect the first generation every 50,000 new
containers instead; cycles are still found, later.

Applied by the command line (``cli.py``) and the child processes
(``application/children.py``) only: a program that imports eventfold keeps its
own policy.
"""

from __future__ import annotations

import gc

BATCH_THRESHOLDS = (50_000, 20, 10)


def use_batch_thresholds() -> None:
    """Set ``BATCH_THRESHOLDS`` for this process (``gc.set_threshold``)."""
    gc.set_threshold(*BATCH_THRESHOLDS)
