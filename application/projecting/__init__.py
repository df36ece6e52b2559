"""Projecting: folding the store's events into projections, with verified snapshots.

- ``projector.py``: ``Projector``: rebuild into a new generation, catch up from
  the newest valid snapshot; ``snapshots_of`` (a projection's snapshots, kept by
  the application's backend);
- ``following.py``: ``follow``, applying events as any process commits them;
- ``workers.py``: parallel rebuilds in worker processes, merged;
- ``distributed.py``: one rebuild shared by N processes on any machines
  (``rebuild --worker K/N``), merged through the shared store;
- ``runner.py``: the same projections on the library's own ``ProjectionRunner``.
"""

from eventfold.application.projecting.projector import (
    DEFAULT_KEEP,
    ProjectionBusyError,
    ProjectionReport,
    Projector,
    snapshots_of,
)

__all__ = ["DEFAULT_KEEP", "ProjectionBusyError", "ProjectionReport", "Projector", "snapshots_of"]
