"""Whether a store is partitioned, without loading PostgreSQL's client where it is not.

``partitioned.py`` runs a partition; this module answers the two questions every
ingest asks first: does ``--partition`` mean partition tables on this backend,
and may an ingest without ``--partition`` write to this store.
"""

from __future__ import annotations

from eventfold.application.app import Eventfold
from eventfold.infra.errors import EventfoldError


class PartitionRefusedError(EventfoldError):
    """A partitioned ingest that cannot run on this store as asked (exit code 2)."""

    label = "partition refused"


def partitioned_backend(backend: str | None) -> bool:
    """Whether ``--partition`` means partition tables on this backend (postgres)."""
    from eventfold.infra.backends import backend_name

    return backend_name(backend) == "postgres"


def refuse_if_partitioned(app: Eventfold, command: str = "ingest") -> None:
    """``PartitionRefusedError`` when ``app``'s store is partitioned: ``command`` (an
    ingest without ``--partition``, a reconcile) would write to its log beside the join,
    where the join's record of the ids in the log cannot see what it writes."""
    if app.backend.name != "postgres":
        return
    from eventfold.infra.backends.partitions import recorded_partitions  # psycopg

    count = recorded_partitions(app.process_recorder)  # type: ignore[arg-type]
    if count is not None:
        msg = (
            f"this store has {count} partitions: {command} would write to its log beside "
            f"them; ingest with --partition K/{count} (all {count} partitions over the same "
            "files; eventfold status says what waits)"
        )
        raise PartitionRefusedError(msg)
