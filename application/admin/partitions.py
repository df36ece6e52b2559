"""How a partitioned store's join stands (``status``): read only, nothing created."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eventfold.application.app import Eventfold
from eventfold.application.recorded import RECORDED_TOPIC


@dataclass(frozen=True)
class PartitionsStatus:
    """How a partitioned store's join stands."""

    count: int
    files_planned: int
    files_joined: int
    events_waiting: int  # source events in partitions' tables, not in the log yet
    waiting_file: str | None  # the first file not joined whole
    waiting_on: str | None  # its partition, "K/N"
    # why: "read" (it joins at any partition's next run), "reading" (its partition
    # runs), "not read" (its partition is not running: start it)
    waiting_because: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "files_planned": self.files_planned,
            "files_joined": self.files_joined,
            "events_waiting": self.events_waiting,
            "waiting_file": self.waiting_file,
            "waiting_on": self.waiting_on,
            "waiting_because": self.waiting_because,
        }


def partitions_status(app: Eventfold) -> PartitionsStatus | None:
    """The join's state of ``app``'s store; None when it is not partitioned. Reads only."""
    if app.backend.name != "postgres":
        return None
    from eventfold.infra.backends.partitions import (  # psycopg: only on postgres
        PartitionTables,
        partition_table,
        recorded_partitions,
    )

    log = app.process_recorder
    count = recorded_partitions(log)  # type: ignore[arg-type]
    if count is None:
        return None
    tables = PartitionTables(log, create=False)  # type: ignore[arg-type]
    every = tables.files()
    first = next((f for f in every if not f.joined), None)
    plan = first.plan if first is not None else (every[-1].plan if every else None)
    planned = [f for f in every if f.plan == plan]  # the plan under way, or the last one
    joined = tables.joined_positions()
    tables_of = [partition_table(k, count) for k in range(1, count + 1)]
    waiting = sum(
        tables.waiting_events(table, joined.get(k, 0), RECORDED_TOPIC)
        for k, table in enumerate(tables_of, start=1)
        if tables.exists(table)
    )
    because = None
    if first is not None:
        running = tables.partition_running(first.partition, count)
        because = "read" if first.done else "reading" if running else "not read"
    return PartitionsStatus(
        count,
        len(planned),
        sum(1 for f in planned if f.joined),
        waiting,
        None if first is None else first.identity,
        None if first is None else f"{first.partition}/{count}",
        because,
    )


def partitions_waiting(app: Eventfold) -> str | None:
    """One line when events of ``app``'s partitioned store wait to join its log (a
    command reading the log does not see them yet); else None."""
    status = partitions_status(app)
    if status is None or status.waiting_file is None:
        return None
    return (
        f"{status.events_waiting:,} events of this partitioned store wait in partition "
        f"tables on {status.waiting_file} (partition {status.waiting_on}): they are not in "
        "the store's log yet (eventfold status says why)"
    )
