"""Verified projection snapshots, kept per generation of a projection.

A snapshot is a JSON document: ``format``, ``projection``, ``version`` (the
projection's code version), ``position`` (the last notification id applied),
``created``, ``events_applied``, ``state``, ``state_checksum`` and
``file_checksum`` (the SHA-256 of the canonical JSON of every other field).
It is the same document in every backend; where and how documents are kept
(files, or rows of the database) is the backend's (``infra/backends``). A
rebuild writes a new generation and switches to it only at the end, so a
crash mid-rebuild leaves the previous generation in use.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eventfold.infra.backends.base import SnapshotDocuments, StoredDocument
from eventfold.projections.base import Projection, canonical_bytes, state_checksum

FORMAT = 1


@dataclass(frozen=True)
class SnapshotInfo:
    path: str
    position: int
    checksum: str
    created: str
    events_applied: int
    size: int = 0  # bytes of the document (0: not known)

    def to_json(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "path": self.path,
            "checksum": self.checksum,
            "created": self.created,
            "events_applied": self.events_applied,
        }


@dataclass(frozen=True)
class Skipped:
    """A snapshot that was not used, and why."""

    path: str
    reason: str


@dataclass
class Loaded:
    """The newest usable snapshot of a generation (or none), and what was passed over."""

    state: Any
    info: SnapshotInfo | None
    skipped: list[Skipped]


class ProjectionSnapshots:
    """The snapshots of one projection: its states, kept as documents by a backend.

    The backend (``infra/backends``) stores bytes by generation and position; this
    class writes and reads the documents, and checks everything it reads.
    """

    def __init__(self, documents: SnapshotDocuments, projection: Projection[Any]) -> None:
        self.documents = documents
        self.projection = projection

    def try_lock(self) -> Callable[[], None] | None:
        """Take the projection's lock (rebuild, follow, snapshot writes); None if held."""
        return self.documents.try_lock()

    def lock_holder(self) -> str:
        return self.documents.lock_holder()

    def current(self) -> str | None:
        return self.documents.current()

    def new_generation(self) -> str:
        return self.documents.new_generation()

    def switch(self, generation: str) -> None:
        self.documents.switch(generation)

    def write(
        self,
        generation: str,
        state: Any,
        position: int,
        events_applied: int,
        canonical: Any = None,
    ) -> SnapshotInfo:
        """Write a snapshot durably (the backend keeps the newest few). ``canonical``: the
        projection's ``canonical(state)``, if the caller has it."""
        data, checksum, created = snapshot_bytes(
            self.projection, state, position, events_applied, canonical=canonical
        )
        where = self.documents.put(generation, position, data)
        return SnapshotInfo(where, position, checksum, created, events_applied, len(data))

    def load(self, generation: str, store_end: int) -> Loaded:
        """The newest snapshot that verifies; older ones are tried when it does not."""
        skipped: list[Skipped] = []
        for stored in self.documents.documents(generation):
            try:
                state, info = read_document(self.projection, _read(stored), stored.where, store_end)
            except SnapshotUnusable as e:
                skipped.append(Skipped(stored.where, str(e)))
                continue
            return Loaded(state, info, skipped)
        return Loaded(self.projection.initial(), None, skipped)

    def list(self) -> tuple[str | None, list[tuple[str, SnapshotInfo | None, str | None]]]:
        """The current generation and each snapshot with its info or why it is unusable."""
        generation = self.current()
        if generation is None:
            return None, []
        rows: list[tuple[str, SnapshotInfo | None, str | None]] = []
        for stored in self.documents.documents(generation):
            try:
                _, info = read_document(self.projection, _read(stored), stored.where, None)
                rows.append((stored.where, info, None))
            except SnapshotUnusable as e:
                rows.append((stored.where, None, str(e)))
        return generation, rows


def _read(stored: StoredDocument) -> bytes:
    try:
        return stored.read()
    except OSError as e:
        raise SnapshotUnusable(f"unreadable ({type(e).__name__}: {e})") from None


def snapshot_document(
    projection: Projection[Any],
    state: Any,
    position: int,
    events_applied: int,
    created: datetime | None = None,
) -> dict[str, Any]:
    """The JSON document of a snapshot (the same in every backend)."""
    p = projection
    doc: dict[str, Any] = {
        "format": FORMAT,
        "projection": p.name,
        "version": p.version,
        "position": position,
        "created": (created or datetime.now(UTC)).isoformat(),
        "events_applied": events_applied,
        "state": p.to_json(state),
        "state_checksum": p.checksum(state),
    }
    doc["file_checksum"] = state_checksum(doc)
    return doc


def snapshot_bytes(
    projection: Projection[Any],
    state: Any,
    position: int,
    events_applied: int,
    created: datetime | None = None,
    canonical: Any = None,
) -> tuple[bytes, str, str]:
    """``canonical_bytes(snapshot_document(...))``, its state checksum and ``created``.

    The state is serialized once: the document's canonical JSON is its members'
    canonical JSON in key order, so the file checksum's input and the document
    itself are put together from the same bytes (equal to ``snapshot_document``'s,
    tested).
    """
    p = projection
    when = (created or datetime.now(UTC)).isoformat()
    if canonical is None:
        checksum = p.checksum(state)
    else:
        checksum = hashlib.sha256(p.canonical_json(canonical)).hexdigest()
    members = {
        "format": canonical_bytes(FORMAT),
        "projection": canonical_bytes(p.name),
        "version": canonical_bytes(p.version),
        "position": canonical_bytes(position),
        "created": canonical_bytes(when),
        "events_applied": canonical_bytes(events_applied),
        "state": p.state_json(state),
        "state_checksum": canonical_bytes(checksum),
    }
    members["file_checksum"] = canonical_bytes(hashlib.sha256(_object(members)).hexdigest())
    return _object(members), checksum, when


def _object(members: dict[str, bytes]) -> bytes:
    """The canonical JSON of an object whose members' values are canonical JSON already."""
    return (
        b"{"
        + b",".join(canonical_bytes(key) + b":" + members[key] for key in sorted(members))
        + b"}"
    )


def snapshot_damage(data: bytes) -> str | None:
    """Why a snapshot file's bytes are damaged (its file checksum fails), or None."""
    try:
        doc = json.loads(data)
        stored = doc.pop("file_checksum")
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        return f"unreadable ({type(e).__name__}: {e})"
    return None if stored == state_checksum(doc) else "file checksum mismatch"


def read_document(
    projection: Projection[Any], data: bytes, where: str, store_end: int | None
) -> tuple[Any, SnapshotInfo]:
    """The state and info of a snapshot document; ``SnapshotUnusable`` says why not.

    Checks both checksums, the projection, its code version, and (given
    ``store_end``) that the snapshot is not beyond the end of the store.
    """
    p = projection
    try:
        doc = _verified(p, data)
        if doc["version"] != p.version:
            raise SnapshotUnusable(
                f"made by version {doc['version']} of the projection, not {p.version}"
            )
        position = int(doc["position"])
        if store_end is not None and position > store_end:
            raise SnapshotUnusable(
                f"position {position} is beyond the end of the store ({store_end})"
            )
        state = p.from_json(doc["state"])
        if p.checksum(state) != doc["state_checksum"]:
            raise SnapshotUnusable("state checksum mismatch")
    except SnapshotUnusable:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise SnapshotUnusable(f"unreadable ({type(e).__name__}: {e})") from None
    info = SnapshotInfo(
        where,
        position,
        doc["state_checksum"],
        doc["created"],
        int(doc["events_applied"]),
        len(data),
    )
    return state, info


class SnapshotUnusable(Exception):
    """Why a snapshot cannot be used."""


def _verified(projection: Projection[Any], data: bytes) -> dict[str, Any]:
    """A snapshot document whose file checksum holds, of ``projection``, in this format
    (without its ``file_checksum``); ``SnapshotUnusable`` or a decoding error if not."""
    doc: dict[str, Any] = json.loads(data)
    stored = doc.pop("file_checksum")
    if stored != state_checksum(doc):
        raise SnapshotUnusable("file checksum mismatch (damaged)")
    if doc["format"] != FORMAT or doc["projection"] != projection.name:
        raise SnapshotUnusable(f"not a {projection.name} snapshot of format {FORMAT}")
    return doc


@dataclass(frozen=True)
class Kept:
    """A verified snapshot document of any code version, as another version reads it:
    its position and checksum, and its canonical state when this code reads the
    state to that very checksum (else None, and ``why`` says why not)."""

    where: str
    position: int
    checksum: str
    version: int
    created: str
    canonical: Any
    why: str = ""


def read_kept(projection: Projection[Any], data: bytes, where: str, store_end: int) -> Kept:
    """A snapshot document of ``projection`` made by any version of its code;
    ``SnapshotUnusable`` when it is damaged, of another projection, or beyond the store."""
    p = projection
    try:
        doc = _verified(p, data)
        position, checksum = int(doc["position"]), str(doc["state_checksum"])
        version, created = int(doc["version"]), str(doc["created"])
    except SnapshotUnusable:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise SnapshotUnusable(f"unreadable ({type(e).__name__}: {e})") from None
    if position > store_end:
        raise SnapshotUnusable(f"position {position} is beyond the end of the store ({store_end})")
    try:
        canonical = p.canonical(p.from_json(doc["state"]))
    except Exception as e:  # another version's state: this code may not read it at all
        why = f"this code cannot read a state of version {version} ({type(e).__name__}: {e})"
        return Kept(where, position, checksum, version, created, None, why)
    if state_checksum(canonical) != checksum:
        why = f"this code reads the state of version {version} to another checksum"
        return Kept(where, position, checksum, version, created, None, why)
    return Kept(where, position, checksum, version, created, canonical)


def newest_kept(snapshots: ProjectionSnapshots, generation: str, store_end: int) -> Kept | None:
    """The newest verified snapshot of ``generation`` by any code version, or None."""
    for stored in snapshots.documents.documents(generation):
        try:
            return read_kept(snapshots.projection, _read(stored), stored.where, store_end)
        except SnapshotUnusable:
            continue
    return None
