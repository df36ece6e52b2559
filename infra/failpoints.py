"""Named points at which a test can kill this process, and know that it did.

A crash test sets ``EVENTFOLD_FAILPOINT=NAME@N`` (several: ``A@1,B@3``) in a
child's environment. The N-th time the child reaches point ``NAME`` it writes
one line to standard error, ``eventfold: failpoint NAME@N reached (pid P)``,
and sends itself SIGKILL: the test observes exactly where the crash landed,
whatever the machine's speed (etcd's failpoints do the same for its
robustness tests). Unset, a point costs one dictionary lookup.

The points (docs/TESTING.md lists them with what each interrupts):

- ``log.before-write``, ``log.torn-write`` (half of the commit is written),
  ``log.after-write`` (before fsync), ``log.after-fsync`` (before it is
  acknowledged): every commit of every log;
- ``file.before-rename``, ``file.after-rename`` (before the directory fsync):
  every atomic file replacement (index and dedup checkpoints, Bloom filters,
  projection snapshots, ``CURRENT``);
- ``ingest.started`` (source opened, before the first batch),
  ``ingest.before-commit``, ``ingest.after-commit``: each ingest batch;
- ``reader.after-batch``: the reading process of an ingest, after it sent a batch;
- ``projection.after-snapshot``, ``projection.before-switch``: a rebuild (and
  the merge of a shared one);
- ``rebuild.worker-page`` (a worker of a shared rebuild folded a page, its part
  not written), ``rebuild.part-written`` (its part is written, before it looks
  whether it is the last): ``rebuild --worker K/N``;
- ``partition.inside-commit`` (a partition's batch is copied to its own tables,
  the transaction not committed), ``join.before-commit`` (a join step copied its
  rows to the log, the transaction not committed): partitions on PostgreSQL;
- ``migrate.after-commit``: each batch that ``migrate`` copies;
- ``merge.started`` (an index's writer handed a merge of runs to its worker
  process), ``merge.worker-chunk`` (the worker process, at each chunk it merges).
"""

from __future__ import annotations

import os
import signal

ENV = "EVENTFOLD_FAILPOINT"


def _armed(text: str) -> dict[str, int]:
    """``{name: N}`` from ``NAME@N[,NAME@N...]``; malformed parts are ignored."""
    points: dict[str, int] = {}
    for part in text.split(","):
        name, _, count = part.strip().partition("@")
        if name and count.isdigit() and int(count) > 0:
            points[name] = int(count)
    return points


_points = _armed(os.environ.get(ENV, ""))
_hits: dict[str, int] = {}


def due(name: str) -> bool:
    """Count a pass through point ``name``; True on the pass that is to be the last."""
    target = _points.get(name)
    if target is None:
        return False
    _hits[name] = hit = _hits.get(name, 0) + 1
    return hit == target


def die(name: str) -> None:
    """Announce point ``name`` on standard error and end the process with SIGKILL."""
    line = f"eventfold: failpoint {name}@{_points[name]} reached (pid {os.getpid()})\n"
    os.write(2, line.encode())
    os.kill(os.getpid(), signal.SIGKILL)


def reach(name: str) -> None:
    """Point ``name``: the process dies here when it is armed for this pass."""
    if name in _points and due(name):
        die(name)
