"""The eventfold application: one eventsourcing ``Application`` over a store.

``open_store`` builds it over the file store in a directory (the embedded
default). The recorder is a process recorder so that ingest can commit its
source position (a tracking record) atomically with the events it produced.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import ProcessRecorder

from eventfold.domain.model import Category, Source

DEFAULT_SNAPSHOT_INTERVAL = 10_000


class Eventfold(Application[UUID]):
    """Categories and sources, with the library's snapshotting of both."""

    name = "Eventfold"
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {
        Category: DEFAULT_SNAPSHOT_INTERVAL,
        Source: DEFAULT_SNAPSHOT_INTERVAL,
    }

    def __init__(
        self, env: Mapping[str, str] | None = None, *, snapshot_interval: int | None = None
    ) -> None:
        super().__init__(env)
        if snapshot_interval is not None:
            if snapshot_interval < 1:
                msg = f"snapshot interval must be at least 1, not {snapshot_interval}"
                raise ValueError(msg)
            # The library reads the intervals through the instance.
            self.snapshotting_intervals = {  # type: ignore[misc]
                Category: snapshot_interval,
                Source: snapshot_interval,
            }
        self.state_dir = self.env.get("FILESTORE_PATH")

    def construct_recorder(self) -> ProcessRecorder:
        return self.factory.process_recorder()

    @property
    def process_recorder(self) -> ProcessRecorder:
        recorder = self.recorder
        assert isinstance(recorder, ProcessRecorder)
        return recorder

    def snapshot_interval(self, aggregate_type: type[Any]) -> int | None:
        return self.snapshotting_intervals.get(aggregate_type)


def store_env(store: str) -> dict[str, str]:
    """The environment of the file store in directory ``store``."""
    return {
        "PERSISTENCE_MODULE": "eventfold.infra.filestore",
        "FILESTORE_PATH": os.path.abspath(store),
    }


def open_store(store: str, *, snapshot_interval: int | None = None) -> Eventfold:
    """The application over the file store in ``store`` (created if missing).

    Settings in the process environment (``FILESTORE_DURABILITY`` and the like)
    apply; ``PERSISTENCE_MODULE`` and ``FILESTORE_PATH`` are set here.
    """
    env = dict(os.environ)
    env.update(store_env(store))
    return Eventfold(env, snapshot_interval=snapshot_interval)
