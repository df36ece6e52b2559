"""What ingest set aside for one category, from the store's ``Source`` events.

- **conflicts**: ``Source.Conflicted`` events whose first version (the one
  recorded) or later version (the one not applied) has the category, with
  both versions;
- **quarantined lines** that named it: ``Source.Quarantined`` events whose raw
  line, read as JSON, is an object with that ``category``; a line that is not
  JSON (or not UTF-8) names it when its text holds ``"category":`` and the
  category as a JSON string (spaces allowed around the colon);
- **duplicates** are not kept per category: a duplicate has the content of
  the event it repeats, so it changes no total, and the store counts them per
  source only (``Source.counts``). Those counts are given for the sources
  that hold the category's events or set-aside lines (of every category).

As ``quarantine`` does, a rescanned source (``Source.Rescanned``) keeps only
what its latest scan set aside. At most ``LISTED`` of each kind are kept (the
first, sources in the order they were first seen and each source's in the
order ingest met them); ``conflicts_count`` and ``quarantined_count`` count
them all.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventfold.application.admin.quarantine import QuarantinedLine
from eventfold.application.admin.sources import (
    kind_and_path,
    known_source_ids,
    known_sources,
    source_topic,
)
from eventfold.application.app import Eventfold
from eventfold.application.pages import stream_pages

LISTED = 100
STREAM_PAGE = 1000
OPENED = source_topic("Opened")
QUARANTINED = source_topic("Quarantined")
CONFLICTED = source_topic("Conflicted")
RESCANNED = source_topic("Rescanned")
_WANTED = frozenset((OPENED, QUARANTINED, CONFLICTED, RESCANNED))


@dataclass(frozen=True)
class Conflict:
    """An id that came again with other content: where the later line was, and both
    versions (``{"category", "value", "occurred_at", "source", "line", "offset"}``;
    the first is the recorded one)."""

    event_id: str
    source: str
    line: int
    offset: int
    first: dict[str, Any]
    later: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "source": self.source,
            "line": self.line,
            "offset": self.offset,
            "first": self.first,
            "later": self.later,
        }


@dataclass
class SetAside:
    """What was set aside for one category (see the module's docstring)."""

    conflicts: list[Conflict] = field(default_factory=list)
    conflicts_count: int = 0
    quarantined: list[QuarantinedLine] = field(default_factory=list)
    quarantined_count: int = 0
    duplicates: dict[str, int] = field(default_factory=dict)  # source path -> duplicates

    @property
    def any(self) -> bool:
        return bool(self.conflicts_count or self.quarantined_count)

    def to_json(self) -> dict[str, Any]:
        """The ``set_aside`` object of ``explain --json`` (keys are only ever added)."""
        return {
            "conflicts": [c.to_json() for c in self.conflicts],
            "conflicts_count": self.conflicts_count,
            "quarantined": [q.to_json() for q in self.quarantined],
            "quarantined_count": self.quarantined_count,
            "duplicates_by_source": [
                {"source": source, "duplicates": count} for source, count in self.duplicates.items()
            ],
        }


class _Stream:
    """One source's set-aside lines of the category, in the order ingest met them (line
    order within a scan): the first ``LISTED`` of each kind, and how many."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.clear()

    def clear(self) -> None:
        self.conflicts: list[Conflict] = []
        self.quarantined: list[QuarantinedLine] = []
        self.conflicts_count = self.quarantined_count = 0


def names_category(raw: str, category: str) -> bool:
    """Whether a quarantined line's raw text names ``category`` (module docstring)."""
    try:
        doc = json.loads(raw)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        return doc.get("category") == category
    quoted = (
        re.escape(json.dumps(category)) + "|" + re.escape(json.dumps(category, ensure_ascii=False))
    )
    return re.search(r'"category"\s*:\s*(?:' + quoted + ")", raw) is not None


def set_aside(app: Eventfold, category: str, sources: set[str]) -> SetAside:
    """What was set aside for ``category``; ``sources``: the source names of its events
    (their duplicate counts are given, with those of sources that set it aside).

    Each source's stream is read a page at a time (``STREAM_PAGE`` events), only its
    conflicts and quarantined lines decoded: the category streams are not read.
    """
    found = SetAside()
    for source_id in known_source_ids(app):
        stream = _read_stream(app, source_id, category)
        found.conflicts += stream.conflicts[: LISTED - len(found.conflicts)]
        found.quarantined += stream.quarantined[: LISTED - len(found.quarantined)]
        found.conflicts_count += stream.conflicts_count
        found.quarantined_count += stream.quarantined_count
        if stream.conflicts_count or stream.quarantined_count:
            sources = sources | {stream.path}
    found.duplicates = _duplicates(app, sources)
    return found


def _read_stream(app: Eventfold, source_id: UUID, category: str) -> _Stream:
    """One source's conflicts and quarantined lines of ``category`` (its latest scan's)."""
    stream = _Stream("")
    for page in stream_pages(app, source_id, page=STREAM_PAGE):
        for stored in page:
            if stored.topic not in _WANTED:
                continue  # Advanced, Renamed: nothing set aside
            event: Any = app.mapper.to_domain_event(stored)
            if stored.topic == OPENED:
                stream.path = kind_and_path(event.identity)[1]
            elif stored.topic == RESCANNED:
                stream.clear()
            elif stored.topic == CONFLICTED:
                if category in (event.first.get("category"), event.later.get("category")):
                    stream.conflicts_count += 1
                    if len(stream.conflicts) < LISTED:
                        first, later = dict(event.first), dict(event.later)
                        stream.conflicts.append(
                            Conflict(
                                event.event_id, stream.path, event.line, event.offset, first, later
                            )
                        )
            elif names_category(event.raw, category):
                stream.quarantined_count += 1
                if len(stream.quarantined) < LISTED:
                    stream.quarantined.append(
                        QuarantinedLine(
                            stream.path, event.line, event.offset, event.reason, event.raw
                        )
                    )
    return stream


def _duplicates(app: Eventfold, paths: set[str]) -> dict[str, int]:
    """The duplicates each of ``paths`` counted (of every category; a file's partitions
    summed), in the order the sources were first seen."""
    counts: dict[str, int] = {}
    for source in known_sources(app):
        path = kind_and_path(source.identity)[1]
        if path in paths:
            counts[path] = counts.get(path, 0) + source.counts.get("duplicates", 0)
    return counts
