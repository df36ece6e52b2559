"""Errors that reach the command line: each says its exit code and how it is labelled.

``EventfoldError`` is the family: every error the CLI reports carries its exit
code (2 usage or unusable input, 3 damaged store) and the label of its one line
(``eventfold: LABEL: message``). The file store's own errors are also in the
eventsourcing library's hierarchy (``DataError``, ``OperationalError``), as a
persistence module's must be.
"""

from __future__ import annotations

from typing import ClassVar

from eventsourcing.persistence import DataError, OperationalError

EXIT_USAGE, EXIT_DAMAGED = 2, 3


class EventfoldError(Exception):
    """An error the command line reports as one line, with ``exit_code``."""

    exit_code: ClassVar[int] = EXIT_USAGE
    label: ClassVar[str] = "error"


class StoreCorruptedError(DataError, EventfoldError):
    """Committed data failed a check: names the file and byte offset."""

    exit_code = EXIT_DAMAGED
    label = "damaged store"

    def __init__(self, path: str, offset: int, reason: str) -> None:
        self.path = path
        self.offset = offset
        self.reason = reason
        msg = f"{path}: byte offset {offset}: {reason}"
        super().__init__(msg)


class StoreLockedError(OperationalError, EventfoldError):
    """Another process holds the store's writer lock."""

    label = "store busy"


class StoreWriteError(OperationalError, EventfoldError):
    """A write or fsync failed; the writer refuses further writes until reopened."""

    label = "write failed"


class StoreReadOnlyError(OperationalError, EventfoldError):
    """The store cannot be written here (a read-only file system, or no write permission);
    names the store and what would have written to it (exit code 2)."""

    label = "store is read-only"


class StoreClosedError(OperationalError, EventfoldError):
    """The store was closed."""


class StoreBusyError(EventfoldError):
    """Another process holds what this one needs (an ingest, a projection)."""

    label = "store busy"


class UsageError(EventfoldError):
    """Bad arguments or unusable input."""


class OutputWriteError(UsageError):
    """A file the user asked for (a report) could not be written (exit code 2)."""

    label = "write failed"


class MissingArgumentError(UsageError):
    """The command line lacks what the command needs (and no default supplies it)."""

    label = "usage"
