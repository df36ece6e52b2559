"""Verified projection snapshots, kept per generation of a projection.

Layout under ``<store>/projections/<name>/``::

    CURRENT                       the generation in use, e.g. "gen-00000002"
    gen-00000002/snap-000000001000.json

A snapshot is JSON: ``format``, ``projection``, ``version`` (the projection's
code version), ``position`` (the last notification id applied), ``created``,
``events_applied``, ``state``, ``state_checksum`` and ``file_checksum`` (the
SHA-256 of the canonical JSON of every other field). Written atomically
(temporary file, fsync, rename, directory fsync); the newest ``keep`` are
kept. A rebuild writes a new generation and switches ``CURRENT`` (atomically)
only at the end, so a crash mid-rebuild leaves the previous generation in use.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from eventfold.infra import fileio
from eventfold.projections.base import Projection, canonical_bytes, state_checksum

FORMAT = 1
GENERATION = re.compile(r"^gen-(\d{8})$")
SNAPSHOT = re.compile(r"^snap-(\d{12})\.json$")


@dataclass(frozen=True)
class SnapshotInfo:
    path: str
    position: int
    checksum: str
    created: str
    events_applied: int

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


class Snapshots(Protocol):
    """What a projection's snapshot store does, whatever the backend."""

    def try_lock(self) -> Callable[[], None] | None: ...
    def lock_holder(self) -> str: ...
    def current(self) -> str | None: ...
    def new_generation(self) -> str: ...
    def switch(self, generation: str) -> None: ...
    def write(
        self, generation: str, state: Any, position: int, events_applied: int
    ) -> SnapshotInfo: ...
    def load(self, generation: str, store_end: int) -> Loaded: ...
    def list(self) -> tuple[str | None, list[tuple[str, SnapshotInfo | None, str | None]]]: ...


class DocumentSnapshots:
    """``load`` and ``list`` over a store's snapshot documents, wherever they are kept.

    A subclass says which generation is current and where a generation's
    documents are (``documents``: newest first, each with how to read it).
    """

    projection: Projection[Any]

    def current(self) -> str | None:
        raise NotImplementedError

    def documents(self, generation: str) -> list[tuple[str, Callable[[], bytes]]]:
        raise NotImplementedError

    def load(self, generation: str, store_end: int) -> Loaded:
        """The newest snapshot that verifies; older ones are tried when it does not."""
        skipped: list[Skipped] = []
        for where, read in self.documents(generation):
            try:
                state, info = read_document(self.projection, read(), where, store_end)
            except SnapshotUnusable as e:
                skipped.append(Skipped(where, str(e)))
                continue
            return Loaded(state, info, skipped)
        return Loaded(self.projection.initial(), None, skipped)

    def list(self) -> tuple[str | None, list[tuple[str, SnapshotInfo | None, str | None]]]:
        """The current generation and each snapshot with its info or why it is unusable."""
        generation = self.current()
        if generation is None:
            return None, []
        rows: list[tuple[str, SnapshotInfo | None, str | None]] = []
        for where, read in self.documents(generation):
            try:
                _, info = read_document(self.projection, read(), where, None)
                rows.append((where, info, None))
            except SnapshotUnusable as e:
                rows.append((where, None, str(e)))
        return generation, rows


def projection_dir(store_dir: str, name: str) -> str:
    return os.path.join(store_dir, "projections", name)


def projections_in(store_dir: str) -> list[str]:
    """Names of the projections that have a directory in the store."""
    directory = os.path.join(store_dir, "projections")
    return sorted(os.listdir(directory)) if os.path.isdir(directory) else []


class SnapshotStore(DocumentSnapshots):
    """The snapshots of one projection in one store directory."""

    def __init__(self, store_dir: str, projection: Projection[Any], keep: int = 3) -> None:
        self.projection = projection
        self.keep = keep
        self.dir = projection_dir(store_dir, projection.name)

    # -- the lock ----------------------------------------------------------------

    def try_lock(self) -> Callable[[], None] | None:
        """Take the projection's lock (rebuild, follow, snapshot writes).

        Returns the function that releases it, or None if another process holds it.
        """
        os.makedirs(self.dir, exist_ok=True)
        fd = fileio.try_flock(os.path.join(self.dir, "LOCK"))
        if fd is None:
            return None
        for directory in (self.dir, *(self._gen(n) for n in os.listdir(self.dir)
                                      if GENERATION.match(n))):  # fmt: skip
            fileio.remove_temporary(directory)  # left by a crash or a failed write
        return functools.partial(os.close, fd)

    def lock_holder(self) -> str:
        return fileio.flock_holder(os.path.join(self.dir, "LOCK"))

    # -- generations -----------------------------------------------------------

    def current(self) -> str | None:
        """The generation in use, or None before the first rebuild."""
        try:
            with open(os.path.join(self.dir, "CURRENT")) as f:
                name = f.read().strip()
        except FileNotFoundError:
            return None
        return name if GENERATION.match(name) and os.path.isdir(self._gen(name)) else None

    def new_generation(self) -> str:
        """Create the next generation's directory (removing an abandoned one)."""
        os.makedirs(self.dir, exist_ok=True)
        numbers = [int(m.group(1)) for n in os.listdir(self.dir) if (m := GENERATION.match(n))]
        current = self.current()
        for n in os.listdir(self.dir):  # left by a crashed rebuild
            if GENERATION.match(n) and n != current:
                shutil.rmtree(self._gen(n), ignore_errors=True)
        name = f"gen-{max(numbers, default=0) + 1:08d}"
        os.makedirs(self._gen(name))
        fileio.fsync_dir(self.dir)
        return name

    def switch(self, generation: str) -> None:
        """Make ``generation`` current (atomically), then drop the others."""
        fileio.atomic_write(os.path.join(self.dir, "CURRENT"), generation.encode() + b"\n")
        for n in os.listdir(self.dir):
            if GENERATION.match(n) and n != generation:
                shutil.rmtree(self._gen(n), ignore_errors=True)

    def _gen(self, generation: str) -> str:
        return os.path.join(self.dir, generation)

    # -- snapshots -------------------------------------------------------------

    def write(
        self, generation: str, state: Any, position: int, events_applied: int
    ) -> SnapshotInfo:
        """Write a snapshot atomically, then keep only the newest ``keep``."""
        doc = snapshot_document(self.projection, state, position, events_applied)
        path = os.path.join(self._gen(generation), f"snap-{position:012d}.json")
        fileio.atomic_write(path, canonical_bytes(doc) + b"\n")
        self._prune(generation)
        return SnapshotInfo(path, position, doc["state_checksum"], doc["created"], events_applied)

    def _prune(self, generation: str) -> None:
        for path in self.paths(generation)[self.keep :]:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def paths(self, generation: str) -> list[str]:
        """Snapshot files of a generation, newest first."""
        directory = self._gen(generation)
        names = sorted((n for n in os.listdir(directory) if SNAPSHOT.match(n)), reverse=True)
        return [os.path.join(directory, n) for n in names]

    def documents(self, generation: str) -> list[tuple[str, Callable[[], bytes]]]:
        return [(path, functools.partial(_read_file, path)) for path in self.paths(generation)]


def _read_file(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise SnapshotUnusable(f"unreadable ({type(e).__name__}: {e})") from None


def snapshot_document(
    projection: Projection[Any], state: Any, position: int, events_applied: int
) -> dict[str, Any]:
    """The JSON document of a snapshot (the same in every backend)."""
    p = projection
    doc: dict[str, Any] = {
        "format": FORMAT, "projection": p.name, "version": p.version,
        "position": position, "created": datetime.now(UTC).isoformat(),
        "events_applied": events_applied, "state": p.to_json(state),
        "state_checksum": p.checksum(state),
    }  # fmt: skip
    doc["file_checksum"] = state_checksum(doc)
    return doc


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
        doc = json.loads(data)
        stored = doc.pop("file_checksum")
        if stored != state_checksum(doc):
            raise SnapshotUnusable("file checksum mismatch (damaged)")
        if doc["format"] != FORMAT or doc["projection"] != p.name:
            raise SnapshotUnusable(f"not a {p.name} snapshot of format {FORMAT}")
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
    info = SnapshotInfo(where, position, doc["state_checksum"], doc["created"],
                        int(doc["events_applied"]))  # fmt: skip
    return state, info


class SnapshotUnusable(Exception):
    """Why a snapshot cannot be used."""
