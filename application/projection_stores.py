"""Where a projection's snapshots live: in the store directory, or in the database.

The file backend keeps them under ``STORE/projections/NAME/`` (``SnapshotStore``);
the postgres backend in two tables of the application's schema
(``PostgresSnapshotStore``), so that every machine using the database shares
them. Both take the same documents and answer the same questions.
"""

from __future__ import annotations

from typing import Any

from eventfold.application.app import Eventfold
from eventfold.projections.base import Projection
from eventfold.projections.snapshots import Snapshots, SnapshotStore, projections_in

DEFAULT_KEEP = 3


def snapshot_store(
    app: Eventfold, store_dir: str, projection: Projection[Any], keep: int = DEFAULT_KEEP
) -> Snapshots:
    """The snapshot store of ``projection`` for the application's backend."""
    if app.backend == "postgres":
        from eventfold.projections.pgsnapshots import PostgresSnapshotStore

        return PostgresSnapshotStore(_datastore(app), projection, keep)
    return SnapshotStore(store_dir, projection, keep)


def projection_names(app: Eventfold, store_dir: str) -> list[str]:
    """The projections that have snapshots in the application's backend."""
    if app.backend == "postgres":
        from eventfold.projections import pgsnapshots

        return pgsnapshots.projection_names(_datastore(app))
    return projections_in(store_dir)


def _datastore(app: Eventfold) -> Any:
    return app.recorder.datastore  # type: ignore[attr-defined]  # the library's Postgres recorder
