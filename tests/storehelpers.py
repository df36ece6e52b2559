"""Helpers for the store tests: factories, events and byte surgery on segments."""

from __future__ import annotations

import os
from pathlib import Path
from uuid import uuid4

from eventsourcing.persistence import StoredEvent

from eventfold.infra.filestore import FileApplicationRecorder, FileStoreFactory


def factory_for(path: Path, **settings: str | float) -> FileStoreFactory:
    env = {"FILESTORE_PATH": str(path)}
    env.update({f"FILESTORE_{k.upper()}": str(v) for k, v in settings.items()})
    return FileStoreFactory(env)


def recorder_of(factory: FileStoreFactory) -> FileApplicationRecorder:
    recorder = factory.application_recorder()
    assert isinstance(recorder, FileApplicationRecorder)
    return recorder


def new_events(count: int, tag: str = "e") -> list[StoredEvent]:
    originator = uuid4()
    return [StoredEvent(originator, v, "topic", f"{tag}:{v}".encode()) for v in range(count)]


def segment(path: Path, number: int = 1, log: str = "stored_events") -> Path:
    return path / log / f"{number:08d}.seg"


def flip_byte(file: Path, offset: int) -> None:
    with open(file, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x40]))


def commit_offsets(file: Path) -> list[int]:
    """Byte offsets at which the commits of a segment start (read by the one scanner)."""
    from eventfold.infra.filestore.format import pack_location
    from eventfold.infra.filestore.scan import CommitScanner

    number = int(file.name.removesuffix(".seg"))
    scanner = CommitScanner(str(file.parent), pack_location(number, 0), None, last_segment=number)
    offsets: list[int] = []
    for commit in scanner:
        offsets.append(commit.offset)
    return offsets


def states(recorder: FileApplicationRecorder) -> list[bytes]:
    return [n.state for n in recorder.select_notifications(None, 10**9)]


def file_size(path: Path) -> int:
    return os.stat(path).st_size
