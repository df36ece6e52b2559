"""New files of a list read ahead, in a second process, while the writer commits.

A file never ingested before is read from its first byte whatever the store
holds, so its lines can be parsed, encoded and hashed before its turn. The
prefetching process (``children.py``'s ``prefetch``) reads such files in the
list's order and sends, per file, a start frame (its device, inode and
change time, or why it could not be opened), its batches (``ParsedBatch``,
each with the digest of the file's bytes before its position: for a
compressed file, of its uncompressed bytes), and an end frame (the number of
batches, and where compressed data was damaged). The writer takes a file's
batches at its turn when it still starts the file at byte 0 and the file is
the one that was read, unchanged (same device, inode and change time);
otherwise it drops them and reads the file itself. So many small files cost
one process start, not one each, and reading overlaps committing as it does
for one large file.

Frames are those of ``reader_process.ReadAhead`` (``length:u64 payload``, then
the end frame with the count), the payload's first byte its kind: ``F``
(start, JSON), ``B`` (a batch), ``E`` (end, JSON).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO, cast

from eventfold.application.ingest.reader_process import (
    FRAME,
    READ_AHEAD_BYTES,
    ReadAhead,
    failure,
    start_process,
)
from eventfold.application.ingest.reading import ParsedBatch, ReaderError, read_batches
from eventfold.application.ingest.resuming import HashingReader, new_hasher
from eventfold.application.recorded import RecordedCodec
from eventfold.infra.compression import Damage
from eventfold.infra.lines import MAX_LINE_BYTES
from eventfold.infra.sourcefile import open_source

END = (1 << 64) - 1


@dataclass
class Prefetched:
    """One file's batches as the prefetching process read them."""

    path: str
    identity: tuple[int, int, int] = (-1, -1, -1)  # device, inode, change time (ns)
    error: str | None = None
    damage: Damage | None = None
    frames: Iterator[bytes] = field(default_factory=lambda: iter(()))
    _done: bool = False

    def same_file(self, fd: int | None) -> bool:
        """Whether ``fd`` is the file that was read, unchanged since (an inode number can
        be reused by a new file, and a file that changed is read again by the writer)."""
        return fd is not None and self.error is None and _identity(fd) == self.identity

    def batches(self) -> Iterator[ParsedBatch]:
        """The file's batches, in order (then ``damage`` is set)."""
        for frame in self.frames:
            kind, payload = frame[:1], frame[1:]
            if kind == b"E":
                self._end(payload)
                return
            if kind != b"B":
                msg = f"{self.path}: the prefetching process sent a {kind!r} frame in a file"
                raise ReaderError(msg)
            yield ParsedBatch.from_bytes(payload)
        msg = f"{self.path}: the prefetching process stopped inside the file"
        raise ReaderError(msg)

    def drop(self) -> None:
        """Skip what is left of the file's frames (the writer reads the file itself)."""
        if not self._done:
            for _ in self.batches():
                pass

    def _end(self, payload: bytes) -> None:
        end = json.loads(payload)
        if end.get("damage") is not None:
            self.damage = Damage(**end["damage"])
        self._done = True


class Prefetcher:
    """The prefetching process over ``paths`` (files to read from byte 0, in order)."""

    def __init__(self, paths: Sequence[str], batch: int, max_line: int = MAX_LINE_BYTES) -> None:
        self.paths = list(paths)
        self._places = {path: place for place, path in enumerate(self.paths)}
        self._next = 0  # the place of the next file whose frames come
        self._child = start_process(["prefetch", str(batch), str(max_line)], stdin=True)
        assert self._child.stdin is not None and self._child.stdout is not None
        self._ahead = ReadAhead(self._child.stdout, READ_AHEAD_BYTES)
        self._frames = iter(self._ahead)
        self._current: Prefetched | None = None
        try:
            self._child.stdin.write(json.dumps(self.paths).encode("utf-8"))
            self._child.stdin.close()
        except OSError:  # it died at once: its end says why
            pass

    def take(self, path: str) -> Prefetched | None:
        """The batches of ``path`` when it is one of the files read ahead (None if not).
        Files read ahead before it that were not taken are skipped."""
        if self._places.get(path, -1) < self._next:
            return None
        while True:
            if self._current is not None:
                self._current.drop()
            name = self.paths[self._next]
            self._next += 1
            start = next(self._frames, None)
            if start is None or start[:1] != b"F":
                self.close()
                raise self._failed(name)
            head = json.loads(start[1:])
            device, inode, changed = head.get("identity", (-1, -1, -1))
            identity = (int(device), int(inode), int(changed))
            self._current = Prefetched(name, identity, head.get("error"), None, self._frames)
            if name == path:
                return self._current

    def _failed(self, path: str) -> ReaderError:
        _, err = self._child.communicate()
        problem = self._ahead.problem or "it sent no start of the file"
        return failure(path, problem, self._child.returncode or 0, err, "prefetching process")

    def close(self) -> None:
        """Stop the process (at once, when files it read are left unused)."""
        self._ahead.stop()
        if self._child.poll() is None:
            self._child.kill()
        with contextlib.suppress(OSError, ValueError):
            self._child.communicate()

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _identity(fd: int) -> tuple[int, int, int]:
    info = os.fstat(fd)
    return info.st_dev, info.st_ino, info.st_ctime_ns


def serve(argv: list[str]) -> None:
    """The prefetching process: the JSON list of paths on stdin; frames on stdout."""
    batch, max_line = int(argv[0]), int(argv[1])
    paths = json.loads(sys.stdin.buffer.read())
    out = sys.stdout.buffer
    sent = 0

    def send(payload: bytes) -> None:
        nonlocal sent
        out.write(FRAME.pack(len(payload)) + payload)
        sent += 1

    codec = RecordedCodec.plain()
    for path in paths:
        try:
            source = open_source(path)
        except Exception as e:  # the writer opens it too, and says why
            send(b"F" + json.dumps({"error": str(e)}).encode())
            send(b"E" + json.dumps({"batches": 0}).encode())
            continue
        with source:
            assert source.file_fd is not None
            head: dict[str, Any] = {"identity": _identity(source.file_fd)}
            send(b"F" + json.dumps(head).encode())
            tee = HashingReader(source.stream, new_hasher(), 0)
            count = 0
            for parsed in read_batches(
                cast(BinaryIO, tee),
                0,
                0,
                batch,
                codec,
                source.real,
                growing=True,
                max_line=max_line,
            ):
                tee.hash_to(parsed.position)
                parsed.digest = tee.hasher.hexdigest()
                send(b"B" + parsed.to_bytes())
                count += 1
            damage = None if source.damage is None else vars(source.damage)
            send(b"E" + json.dumps({"batches": count, "damage": damage}).encode())
        out.flush()
    out.write(FRAME.pack(END) + FRAME.pack(sent))
    out.flush()
