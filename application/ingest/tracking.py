"""The tracking record of an ingest: ``eventfold.ingest:<source id>:<generation>`` -> the
byte position the source was consumed up to, committed with each batch (``run.py``).

Every ``Source`` with events has one (its first batch committed both), so the tracking
records name every source the store knows (``admin/sources.py`` finds them so).
"""

from __future__ import annotations

from uuid import UUID

PREFIX = "eventfold.ingest:"


def record_name(source_id: UUID, generation: int) -> str:
    """The tracking record's name of a source's ``generation`` (0, then one per rescan)."""
    return f"{PREFIX}{source_id}:{generation}"


def source_of(name: str) -> UUID | None:
    """The source id a tracking record's name holds, or None for another record's name."""
    if not name.startswith(PREFIX):
        return None
    source_id, _, generation = name[len(PREFIX) :].rpartition(":")
    if not generation.isdigit():
        return None
    try:
        return UUID(source_id)
    except ValueError:
        return None
