"""How a long step tells its caller how far it has got (no rendering here).

A use case that can take more than a second takes an optional ``progress``
callback and calls it as it goes: ``progress(phase, done, total, unit)``.
``phase`` names what it is doing ("reading source", "catching up",
"comparing", "replaying", ...); ``done`` counts ``unit`` ("bytes",
"notifications", "events", "records") and never decreases within a phase;
``total`` is the count ``done`` reaches when the phase ends, or None when it
is not known in advance. A new phase starts a new count. The callback must be
cheap: callers call it per page or batch, not per event.

A step may tell more, as keywords, and only when it has them (``tell`` passes
a keyword only when it is given, so a callback of the four arguments alone
still serves every step that tells none):

- ``files=(current, total)``: the step goes through a list of ``total`` files
  and is reading the ``current``-th (from 1; it stays at the last one read
  once the list is done). ``done`` and ``total`` then count over all files.
- ``events=N``: the events read so far in this phase, beside ``done``'s unit
  (an ingest counts bytes, and tells the events the bytes held).
"""

from __future__ import annotations

from typing import Protocol, TypedDict

BYTES = "bytes"
NOTIFICATIONS = "notifications"
EVENTS = "events"
RECORDS = "records"

# The phases, as shown.
INGESTING = "ingesting"
READING_SOURCE = "reading source"
REBUILDING = "rebuilding"
CATCHING_UP = "catching up"
READING_EVENTS = "reading events"
COMPARING = "comparing"
REPLAYING = "replaying"
COPYING = "copying"
CHECKING = "checking"
CHECKING_SOURCES = "checking sources"


class Progress(Protocol):
    def __call__(
        self,
        phase: str,
        done: int,
        total: int | None,
        unit: str,
        *,
        files: tuple[int, int] | None = None,
        events: int | None = None,
    ) -> None: ...


class _Told(TypedDict, total=False):
    """The keywords given to ``tell``, and only those."""

    files: tuple[int, int]
    events: int


def tell(
    progress: Progress | None,
    phase: str,
    done: int,
    total: int | None,
    unit: str,
    *,
    files: tuple[int, int] | None = None,
    events: int | None = None,
) -> None:
    """Call ``progress`` if there is one, with ``files`` and ``events`` only when given."""
    if progress is None:
        return
    told: _Told = {}
    if files is not None:
        told["files"] = files
    if events is not None:
        told["events"] = events
    progress(phase, done, total, unit, **told)
