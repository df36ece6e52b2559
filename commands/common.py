"""What every command shares: exit codes, usage errors, the store argument."""

from __future__ import annotations

import os

EXIT_OK, EXIT_MISMATCH, EXIT_USAGE, EXIT_DAMAGED = 0, 1, 2, 3


class UsageError(Exception):
    """Bad arguments or unusable input: exit 2."""


def require_store(store: str) -> None:
    if not os.path.isdir(store):
        raise UsageError(f"{store}: no such store (eventfold ingest creates one)")
