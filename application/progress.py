"""How a long step tells its caller how far it has got (no rendering here).

A use case that can take more than a second takes an optional ``progress``
callback and calls it as it goes: ``progress(phase, done, total, unit)``.
``phase`` names what it is doing ("reading source", "catching up",
"comparing", "replaying", ...); ``done`` counts ``unit`` ("bytes",
"notifications", "events", "records") and never decreases within a phase;
``total`` is the count ``done`` reaches when the phase ends, or None when it
is not known in advance. A new phase starts a new count. The callback must be
cheap: callers call it per page or batch, not per event.
"""

from __future__ import annotations

from typing import Protocol

BYTES = "bytes"
NOTIFICATIONS = "notifications"
EVENTS = "events"
RECORDS = "records"

# The phases, as shown.
INGESTING = "ingesting"
READING_SOURCE = "reading source"
REBUILDING = "rebuilding"
CATCHING_UP = "catching up"
COMPARING = "comparing"
REPLAYING = "replaying"
COPYING = "copying"
CHECKING = "checking"
CHECKING_SOURCES = "checking sources"


class Progress(Protocol):
    def __call__(self, phase: str, done: int, total: int | None, unit: str) -> None: ...


def tell(progress: Progress | None, phase: str, done: int, total: int | None, unit: str) -> None:
    """Call ``progress`` if there is one."""
    if progress is not None:
        progress(phase, done, total, unit)
