"""Where a run over a source starts, and the digest of what it has read.

A source's position and digest are of its uncompressed bytes. Resuming a
plain file hashes its prefix with ``pread`` (``hash_range``); a compressed
file cannot be read from the middle, so resuming it reads its prefix through
once, uncompressed, hashing it (``read_prefix``): the cost of resuming inside
a compressed file is one pass over its compressed prefix, and no more. While
a compressed file is read, ``HashingReader`` keeps the bytes read since the
last commit, so that each commit's digest covers exactly the bytes before
its position.

A new file whose first line is the first line of sources ingested before (a
``Fingerprint``) may be one of them under a new name (a rotated log):
``first_line`` and ``fingerprint_of`` find the candidates; the digest of the
candidate's ingested prefix decides.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from hashlib import blake2b
from typing import Any, BinaryIO

from eventfold.domain.model import Fingerprint, Source
from eventfold.infra.sourcefile import SourceFile

DIGEST_CHUNK = 1 << 20
FIRST_LINE_BYTES = 1 << 16  # a first line longer than this gives no fingerprint


def new_hasher() -> Any:
    """The hash of a source's prefix (``Source.digest``): BLAKE2b, 32 bytes."""
    return blake2b(digest_size=32)


def hash_range(
    fd: int, hasher: Any, start: int, end: int, read: Callable[[int], None] | None = None
) -> int:
    """Feed bytes ``start..end`` of ``fd`` to ``hasher``; return where it stopped (EOF).
    ``read`` is told the size of each chunk read."""
    while start < end:
        chunk = os.pread(fd, min(DIGEST_CHUNK, end - start), start)
        if not chunk:
            break
        hasher.update(chunk)
        start += len(chunk)
        if read is not None:
            read(len(chunk))
    return start


def read_prefix(
    stream: BinaryIO, length: int, hasher: Any, read: Callable[[int], None] | None = None
) -> tuple[int, bytes]:
    """Read the first ``length`` bytes of ``stream`` (at its start), hashing them;
    ``read`` is told the size of each chunk read.

    Returns how many there were (fewer when the stream ends first) and the last
    byte read (b"" when none).
    """
    done, last = 0, b""
    while done < length:
        chunk = stream.read(min(DIGEST_CHUNK, length - done))
        if not chunk:
            break
        hasher.update(chunk)
        done += len(chunk)
        last = chunk[-1:]
        if read is not None:
            read(len(chunk))
    return done, last


def hash_prefix(opened: SourceFile, length: int, hasher: Any) -> tuple[int, bytes]:
    """Hash the first ``length`` bytes of a source: a plain file by ``pread``, a
    compressed one by reading its stream (which must be at its start) through.

    Returns how many there were (fewer when it is shorter) and the last byte
    hashed (b"" when none).
    """
    if opened.fd is None:
        return read_prefix(opened.stream, length, hasher)
    reached = hash_range(opened.fd, hasher, 0, length)
    return reached, os.pread(opened.fd, 1, reached - 1) if reached else b""


class HashingReader:
    """A source stream whose bytes are hashed, on demand, up to a position.

    Reads pass through (``read``, ``peek``); the bytes read are held until
    ``hash_to`` feeds them to ``hasher``, so memory holds only what was read
    ahead of the last commit.
    """

    def __init__(self, stream: BinaryIO, hasher: Any, position: int) -> None:
        self._stream = stream
        self.hasher = hasher
        self.hashed = position  # bytes before this are in ``hasher``
        self._read = position  # bytes before this were read
        self._held: deque[bytes] = deque()

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        if data:
            self._held.append(data)
            self._read += len(data)
        return data

    def peek(self, size: int = 1) -> bytes:
        peek = getattr(self._stream, "peek", None)
        return b"" if peek is None else bytes(peek(size))

    def hash_to(self, position: int) -> int:
        """Hash the bytes read up to ``position``; return where hashing stands (below
        ``position`` only when fewer bytes were read)."""
        while self.hashed < position and self._held:
            chunk = self._held[0]
            take = min(len(chunk), position - self.hashed)
            self.hasher.update(chunk[:take] if take < len(chunk) else chunk)
            self.hashed += take
            if take < len(chunk):
                self._held[0] = chunk[take:]
            else:
                self._held.popleft()
        return self.hashed


def first_line(source: SourceFile) -> bytes | None:
    """The first line of a regular source, with its ``\\n`` (None when it has no whole
    first line of at most ``FIRST_LINE_BYTES`` yet). Reads nothing from its stream."""
    if source.fd is not None:
        head = os.pread(source.fd, FIRST_LINE_BYTES, 0)
    else:
        peek = getattr(source.stream, "peek", None)
        head = b"" if peek is None else bytes(peek(FIRST_LINE_BYTES))
    end = head.find(b"\n", 0, FIRST_LINE_BYTES)
    return None if end < 0 else head[: end + 1]


def fingerprint_of(line: bytes) -> str:
    """The fingerprint of a source whose first line is ``line``."""
    return blake2b(line, digest_size=16).hexdigest()


@dataclass
class Start:
    """Where a run over a source starts: its ``Source``, the opened file (opened anew when
    a compressed file had to be read from its start again) and the hash of its prefix."""

    source: Source
    opened: SourceFile
    hasher: Any
    last: bytes = b""  # the byte before the position, when a compressed prefix was read
    rescanned: bool = False
    adopted: bool = False  # it continues a renamed source (``Source.adopt``)
    fingerprint: Fingerprint | None = None
    note: bool = False  # the fingerprint does not list the source yet
