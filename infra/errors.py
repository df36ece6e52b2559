"""Errors of the file event store, in the eventsourcing library's hierarchy."""

from __future__ import annotations

from eventsourcing.persistence import DataError, OperationalError


class StoreCorruptedError(DataError):
    """Committed data failed a check: names the file and byte offset."""

    def __init__(self, path: str, offset: int, reason: str) -> None:
        self.path = path
        self.offset = offset
        self.reason = reason
        msg = f"{path}: byte offset {offset}: {reason}"
        super().__init__(msg)


class StoreLockedError(OperationalError):
    """Another process holds the store's writer lock."""


class StoreWriteError(OperationalError):
    """A write or fsync failed; the writer refuses further writes until reopened."""


class StoreClosedError(OperationalError):
    """The store was closed."""
