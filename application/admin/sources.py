"""``eventfold sources``: every source the store knows, and how its file stands now.

The sources are found from the store alone, in the order they were first seen, and
loaded through the application's repository; nothing is written. The ingest
tracking records name every source, and the file store's index orders them by
their first events, so no event is read to find them; a backend without such an
index reads the notifications of ``Source.Opened`` (the ``Source`` aggregate's
created event). Each file is then looked at again:

- ``complete``: the file holds exactly the bytes ingested;
- ``grew``: it holds more (``new_bytes`` after the position; ``pending_tail_bytes``
  of them at its end have no newline yet: a line still being written);
- ``rewritten``: it is shorter than the position, or its first ``position`` bytes
  no longer have the recorded digest (BLAKE2b-256);
- ``vanished``: no such file now;
- ``unreadable``: it is there but cannot be opened as a source (``problem`` says why);
- ``unchecked``: a compressed file looked at by size only (its position is in
  uncompressed bytes: the size on disk says nothing);
- ``not a file``: standard input, a stream or a replay, which cannot be read again.

Checking the digest reads the first ``position`` bytes of each file (uncompressed,
through ``open_source``); ``digest=False`` (``--quick``, and ``status``) decides by
sizes only, and each source then says ``digest_checked: false``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic

from eventfold.application.app import Eventfold
from eventfold.application.ingest.resuming import hash_range, new_hasher, read_prefix
from eventfold.application.ingest.tracking import source_of
from eventfold.application.pages import notification_pages
from eventfold.application.progress import BYTES, CHECKING_SOURCES, Progress, tell
from eventfold.domain.model import Source
from eventfold.infra.sourcefile import SourceError, SourceFile, open_source

CHUNK = 1 << 20


def source_topic(name: str) -> str:
    """The topic the mapper writes for the ``Source`` event class ``name`` (``Opened``)."""
    return get_topic(getattr(Source, name))


OPENED = source_topic("Opened")

COMPLETE, GREW, REWRITTEN, VANISHED = "complete", "grew", "rewritten", "vanished"
UNREADABLE, UNCHECKED, NOT_A_FILE = "unreadable", "unchecked", "not a file"
STATES = (COMPLETE, GREW, REWRITTEN, VANISHED, UNREADABLE, UNCHECKED, NOT_A_FILE)
KINDS = ("file", "stdin", "stream", "replay")
COUNTS = ("read", "ingested", "duplicates", "conflicts", "quarantined")

_PARTITION = re.compile(r"#partition=(\d+/\d+)$")


def kind_and_path(identity: str) -> tuple[str, str, str | None]:
    """A source identity's kind, its path (``-`` for standard input, the source's name
    for a replay) and its partition (``K/N``, or None)."""
    found = _PARTITION.search(identity)
    partition = found.group(1) if found else None
    bare = identity[: found.start()] if found else identity
    if bare.startswith("stdin:"):
        return "stdin", "-", partition
    for kind in ("stream", "replay"):
        if bare.startswith(kind + ":"):
            name, _, _ = bare[len(kind) + 1 :].rpartition(":")  # the last part is a uuid
            return kind, name, partition
    return "file", bare, partition


@dataclass
class SourceState:
    """One source: what the store says of it, and how its file stands now."""

    identity: str
    kind: str
    path: str
    partition: str | None
    position: int
    line: int
    generation: int
    renamed_from: str | None
    counts: dict[str, int]
    digest: str = field(repr=False, default="")
    state: str = NOT_A_FILE
    compression: str | None = None
    size_on_disk: int | None = None
    new_bytes: int | None = None  # grew: bytes after the position (uncompressed)
    pending_tail_bytes: int | None = None  # of those, at the end with no newline yet
    digest_checked: bool = False
    problem: str | None = None

    def count(self, key: str) -> int:
        """One of ``COUNTS`` (``quarantined`` is the store's ``invalid``)."""
        return self.counts.get("invalid" if key == "quarantined" else key, 0)

    def to_json(self) -> dict[str, Any]:
        """One element of ``sources --json``'s ``sources`` (keys are only ever added)."""
        return {
            "identity": self.identity,
            "kind": self.kind,
            "path": self.path,
            "partition": self.partition,
            "position": self.position,
            "line": self.line,
            "compression": self.compression,
            "size_on_disk": self.size_on_disk,
            "state": self.state,
            "new_bytes": self.new_bytes,
            "pending_tail_bytes": self.pending_tail_bytes,
            "digest_checked": self.digest_checked,
            "problem": self.problem,
            **{key: self.count(key) for key in COUNTS},
            "renamed_from": self.renamed_from,
            "generation": self.generation,
        }


@dataclass
class SourcesReport:
    sources: list[SourceState]
    digests: bool  # prefixes were hashed (not --quick)

    def states(self) -> dict[str, int]:
        """How many sources are in each state (every state, 0 included)."""
        found = {state: 0 for state in STATES}
        for source in self.sources:
            found[source.state] += 1
        return found

    def totals(self) -> dict[str, Any]:
        """The ``totals`` of ``sources --json``: counts of sources by kind and state, and the
        sums of their counts."""
        states = self.states()
        return {
            "sources": len(self.sources),
            "files": sum(1 for s in self.sources if s.kind == "file"),
            **{state.replace(" ", "_"): count for state, count in states.items()},
            **{key: sum(s.count(key) for s in self.sources) for key in COUNTS},
            "new_bytes": sum(s.new_bytes or 0 for s in self.sources),
        }

    def summary(self) -> dict[str, int]:
        """The ``sources`` object of ``status --json``: how many sources, how many of them
        files, and how many in each state."""
        states = self.states()
        return {
            "count": len(self.sources),
            "files": sum(1 for s in self.sources if s.kind == "file"),
            **{state.replace(" ", "_"): count for state, count in states.items()},
        }

    def to_json(self) -> dict[str, Any]:
        """The ``sources --json`` document (keys are only ever added)."""
        return {"sources": [s.to_json() for s in self.sources], "totals": self.totals()}


def known_source_ids(app: Eventfold) -> list[UUID]:
    """The id of every ``Source`` of the store, in the order they were first seen.

    Found from the ingest tracking records (``ingest/tracking.py``), ordered by the
    backend's index of streams, where it has one; else from the notifications of
    ``Source.Opened`` (every event is read).
    """
    found = app.backend.tracked_originators(source_of)
    if found is not None:
        return found
    last = app.recorder.max_notification_id() or 0
    ids: list[UUID] = []
    for page in notification_pages(app, 0, last, topics=[OPENED]):
        ids.extend(UUID(str(n.originator_id)) for n in page)
    return ids


def known_sources(app: Eventfold) -> list[Source]:
    """Every ``Source`` of the store, in the order they were first seen."""
    found: list[Source] = []
    for source_id in known_source_ids(app):
        source: Any = app.repository.get(source_id)
        assert isinstance(source, Source)
        found.append(source)
    return found


def source_states(
    app: Eventfold, *, digest: bool = True, tail: bool = True, progress: Progress | None = None
) -> SourcesReport:
    """Every source of the store and its state now. ``digest``: hash each file's ingested
    prefix (else decide by sizes); ``tail``: measure a grown file's pending tail.
    ``progress`` is told the bytes hashed, of all the prefixes to hash."""
    states = [_state_of(source) for source in known_sources(app)]
    files = [s for s in states if s.kind == "file"]
    prefixes = {(s.path, s.position): s.position for s in files}  # a file's partitions: once
    hashed = _Hashed(progress, sum(prefixes.values()) if digest else None)
    expected = 0
    for source in files:
        expected += prefixes.pop((source.path, source.position), 0)
        _look(source, digest=digest, tail=tail, hashed=hashed)
        if digest and hashed.done < expected:  # not hashed (vanished, shorter): counted done
            hashed.advanced(expected - hashed.done)
    return SourcesReport(states, digest)


def _state_of(source: Source) -> SourceState:
    kind, path, partition = kind_and_path(source.identity)
    return SourceState(
        identity=source.identity,
        kind=kind,
        path=path,
        partition=partition,
        position=source.position,
        line=source.line,
        generation=source.generation,
        renamed_from=source.renamed_from,
        counts=dict(source.counts),
        digest=source.digest,
    )


class _Hashed:
    """The prefixes hashed so far (one file may be several sources: its partitions), and
    the progress of hashing them."""

    def __init__(self, progress: Progress | None, total: int | None) -> None:
        self.progress, self.total, self.done = progress, total, 0
        self.digests: dict[tuple[str, int], str] = {}  # of plain files
        self.read: dict[tuple[str, int], _Read] = {}  # compressed files read through

    def advanced(self, count: int) -> None:
        self.done += count
        tell(self.progress, CHECKING_SOURCES, self.done, self.total, BYTES)


def _look(source: SourceState, *, digest: bool, tail: bool, hashed: _Hashed) -> None:
    """Set ``source``'s state from its file as it is now."""
    try:
        os.stat(source.path)
    except FileNotFoundError:
        source.state = VANISHED
        return
    except OSError as e:
        source.state, source.problem = UNREADABLE, f"{source.path}: {e.strerror or e}"
        return
    try:
        opened = open_source(source.path)
    except SourceError as e:
        source.state, source.problem = UNREADABLE, str(e)
        return
    with opened:
        source.compression = opened.compression
        source.size_on_disk = opened.size_on_disk()
        if opened.fd is not None:
            _look_plain(source, opened.fd, digest=digest, tail=tail, hashed=hashed)
        elif not digest:
            source.state = UNCHECKED
        else:
            _look_compressed(source, opened, hashed)


def _look_plain(source: SourceState, fd: int, *, digest: bool, tail: bool, hashed: _Hashed) -> None:
    size = os.fstat(fd).st_size
    source.size_on_disk = size
    if size < source.position:
        source.state = REWRITTEN
        return
    if digest and source.digest:
        key = (source.path, source.position)
        if key not in hashed.digests:
            hashed.digests[key] = _prefix_digest(fd, source, hashed)
        source.digest_checked = True
        if hashed.digests[key] != source.digest:
            source.state = REWRITTEN
            return
    if size == source.position:
        source.state = COMPLETE
        return
    source.state, source.new_bytes = GREW, size - source.position
    if tail:
        source.pending_tail_bytes = _pending_tail(fd, source.position, size)


def _prefix_digest(fd: int, source: SourceState, hashed: _Hashed) -> str:
    """The digest of the file's first ``position`` bytes (``""`` when it is shorter)."""
    hasher = new_hasher()
    if hash_range(fd, hasher, 0, source.position, hashed.advanced) < source.position:
        return ""  # shorter than the position: no digest matches
    digest: str = hasher.hexdigest()
    return digest


def _pending_tail(fd: int, position: int, size: int) -> int:
    """The bytes at the end of the file after its last newline (none before ``position``
    counts: what was ingested is not pending)."""
    end = size
    while end > position:
        start = max(position, end - CHUNK)
        newline = os.pread(fd, end - start, start).rfind(b"\n")
        if newline >= 0:
            return size - (start + newline + 1)
        end = start
    return size - position


@dataclass(frozen=True)
class _Read:
    """What reading a compressed file through found."""

    prefix: int  # uncompressed bytes of the prefix read (fewer: the file is shorter)
    digest: str
    rest: int  # uncompressed bytes after it
    pending: int  # of those, at the end with no newline
    damage: str | None


def _look_compressed(source: SourceState, opened: SourceFile, hashed: _Hashed) -> None:
    """A compressed file read through: its uncompressed prefix hashed, the rest counted."""
    key = (source.path, source.position)
    found = hashed.read.get(key)
    if found is None:
        found = hashed.read[key] = _read_through(opened, source.position, hashed)
    if found.damage is not None:
        source.problem = f"{source.path}: {found.damage}"
    source.digest_checked = bool(source.digest)
    if found.prefix < source.position or (source.digest and found.digest != source.digest):
        source.state = REWRITTEN
    elif found.rest:
        source.state, source.new_bytes, source.pending_tail_bytes = GREW, found.rest, found.pending
    else:
        source.state = COMPLETE


def _read_through(opened: SourceFile, position: int, hashed: _Hashed) -> _Read:
    stream = opened.stream
    hasher = new_hasher()
    at, _ = read_prefix(stream, position, hasher, hashed.advanced)
    rest = pending = 0
    while chunk := stream.read(CHUNK):
        rest += len(chunk)
        newline = chunk.rfind(b"\n")
        pending = len(chunk) - newline - 1 if newline >= 0 else pending + len(chunk)
    damage = None if opened.damage is None else opened.damage.describe()
    return _Read(at, hasher.hexdigest(), rest, pending, damage)
