"""``eventfold quarantine``: the quarantined lines of every source, from the store.

The lines come from the store's events (``Source.Quarantined``, whatever the
backend), not from the quarantine files beside it: sources in the order they
were first seen (``Source.Opened``), each source's lines in line order. A source
rescanned (``Source.Rescanned``) shows only the lines of its current generation:
the earlier ones were of content that is no longer there.

A line over the line limit was kept as its first 1,024 bytes and ``…``
(``truncated``): its raw text is not the whole line.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventfold.application.admin.sources import kind_and_path, source_topic
from eventfold.application.app import Eventfold
from eventfold.application.pages import notification_pages

QUARANTINED = source_topic("Quarantined")
RESCANNED = source_topic("Rescanned")
OPENED = source_topic("Opened")

# The reason of a line over the limit (``infra/lines.OverlongLine.reason``).
_OVERLONG = re.compile(r"^line of [\d,]+ bytes is longer than the limit \([\d,]+ bytes\)$")


@dataclass(frozen=True)
class QuarantinedLine:
    """One quarantined line: its source's path (``-`` for standard input), where it was,
    why, and its raw text."""

    source: str
    line: int
    offset: int
    reason: str
    raw: str

    @property
    def truncated(self) -> bool:
        """Its raw text is only the head of a line over the line limit."""
        return bool(_OVERLONG.match(self.reason)) and self.raw.endswith("…")

    def to_json(self) -> dict[str, Any]:
        """The shape of the store's quarantine files: ``{"source", "line", "offset",
        "reason", "raw"}``."""
        return {
            "source": self.source,
            "line": self.line,
            "offset": self.offset,
            "reason": self.reason,
            "raw": self.raw,
        }


@dataclass
class QuarantineReport:
    lines: list[QuarantinedLine]  # the first ``limit`` of those that match
    count: int  # how many match

    def to_json(self) -> dict[str, Any]:
        """The ``quarantine --json`` document (keys are only ever added)."""
        return {"lines": [line.to_json() for line in self.lines], "count": self.count}


class _Stream:
    def __init__(self, path: str) -> None:
        self.path = path
        self.lines: list[QuarantinedLine] = []


def source_matches(path: str, wanted: str) -> bool:
    """Whether a source's ``path`` is ``wanted`` (compared by real path; ``-``: standard
    input) or matches it as a glob pattern (a relative one from the working directory)."""
    if wanted == "-" or path == "-":
        return path == wanted
    if path == os.path.realpath(wanted):
        return True
    pattern = wanted if os.path.isabs(wanted) else os.path.join(os.getcwd(), wanted)
    return fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(path, wanted)


def quarantined_lines(
    app: Eventfold,
    *,
    source: str | None = None,
    reason: str | None = None,
    limit: int | None = None,
) -> QuarantineReport:
    """The quarantined lines of the store: of the sources whose path matches ``source``
    (``source_matches``), whose reason contains ``reason`` (case-insensitive); the first
    ``limit`` of them (None: all), and how many there are."""
    last = app.recorder.max_notification_id() or 0
    streams: dict[UUID | str, _Stream] = {}
    topics = [OPENED, QUARANTINED, RESCANNED]
    for page in notification_pages(app, 0, last, topics=topics):
        for notification in page:
            if notification.topic == OPENED:
                opened = app.mapper.to_domain_event(notification)
                path = kind_and_path(opened.identity)[1]  # type: ignore[attr-defined]
                streams[notification.originator_id] = _Stream(path)
                continue
            stream = streams.get(notification.originator_id)
            if stream is None:  # pragma: no cover - every stream begins with Opened
                continue
            if notification.topic == RESCANNED:
                stream.lines.clear()
                continue
            event = app.mapper.to_domain_event(notification)
            stream.lines.append(
                QuarantinedLine(
                    stream.path,
                    event.line,  # type: ignore[attr-defined]
                    event.offset,  # type: ignore[attr-defined]
                    event.reason,  # type: ignore[attr-defined]
                    event.raw,  # type: ignore[attr-defined]
                )
            )
    folded = reason.casefold() if reason is not None else None
    found: list[QuarantinedLine] = []
    for stream in streams.values():
        if source is not None and not source_matches(stream.path, source):
            continue
        lines = sorted(stream.lines, key=lambda q: (q.line, q.offset))
        found += [q for q in lines if folded is None or folded in q.reason.casefold()]
    shown = found if limit is None else found[:limit]
    return QuarantineReport(shown, len(found))
