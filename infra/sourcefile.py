"""Opening a source: a regular file, standard input (``-``), or another stream (a FIFO).

A regular file can be resumed (its position and digest are recorded); any
other source is read once, as a stream, with the same limits. Either way the
first bytes are looked at before anything is read as lines:

- compressed data (gzip, bzip2, xz, zstd: ``infra/compression.py``) is
  recognised by its first bytes, whatever the name, and read uncompressed;
  positions are then in the uncompressed bytes;
- data that is plainly not JSON Lines (an archive, another compression, a
  known binary format, or NUL bytes in the first 64 KiB, compressed or not)
  is refused, saying what it looks like, so that it is never counted as
  thousands of invalid lines nor taken for an empty source.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import stat
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, cast

from eventfold.infra.compression import Damage, LineAlignedReader, compression_of, looks_like
from eventfold.infra.errors import EventfoldError

logger = logging.getLogger("eventfold.source")

SNIFF_BYTES = 1 << 16  # how much of the start is looked at
FIFO_NOTE_SECONDS = 1.0  # when to say that a FIFO has no writer yet
COPY_CHUNK = 1 << 20  # bytes per read when a stream is copied to a temporary file


class SourceError(EventfoldError):
    """The source cannot be read or used as asked (exit code 2)."""

    label = "unusable source"


@dataclass
class SourceFile:
    """An open source.

    ``stream`` gives the source's lines (uncompressed). ``fd`` is set for an
    uncompressed regular file (its bytes are the source's: ``pread`` works);
    ``file_fd`` for any regular file, compressed or not. ``compression`` names
    the compression (else None).
    """

    name: str  # as given ("-" for standard input)
    real: str  # the real path of a file; ``name`` for standard input
    stream: BinaryIO
    fd: int | None
    compression: str | None = None
    file_fd: int | None = None

    def __post_init__(self) -> None:
        if self.file_fd is None:
            self.file_fd = self.fd

    @property
    def regular(self) -> bool:
        """A regular file: it can be read again, resumed, and its identity kept."""
        return self.file_fd is not None

    @property
    def damage(self) -> Damage | None:
        """Where compressed data stopped being readable (after the stream's end), or None."""
        return getattr(self.stream, "damage", None)

    def compressed_read(self) -> int:
        """Compressed bytes read so far (0 for an uncompressed source)."""
        return int(getattr(self.stream, "compressed", 0))

    def size_on_disk(self) -> int | None:
        """The file's size now (compressed, for a compressed file); None for a stream."""
        return None if self.file_fd is None else os.fstat(self.file_fd).st_size

    def close(self) -> None:
        if self.name != "-":
            self.stream.close()

    def __enter__(self) -> SourceFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_source(path: str) -> SourceFile:
    """Open ``path`` (``-``: standard input) and check that it can be JSON Lines.

    ``SourceError`` names the path and the problem: missing, a directory,
    unreadable, or binary data.
    """
    if path == "-":
        stream = _peekable(sys.stdin.buffer)
        source = SourceFile("-", "-", stream, None)
    else:
        source = _open_path(path)
    try:
        _refuse_binary(source)
        return _decompressed(source)
    except BaseException:
        source.close()
        raise


def source_name(path: str) -> str:
    """How a source is named in reports: its real, absolute path (``-`` for standard input)."""
    return path if path == "-" else os.path.realpath(path)


@contextlib.contextmanager
def regular_copy(path: str) -> Iterator[str]:
    """The path of a regular file holding the source ``path``: the file itself, or, for
    standard input or a FIFO (which can be read only once), a temporary copy (in
    ``$TMPDIR``), removed afterwards. Copied a block at a time (memory stays bounded);
    binary data is refused as ``open_source`` refuses it."""
    with open_source(path) as source:
        if source.regular:
            yield path
            return
        with tempfile.NamedTemporaryFile(prefix="eventfold-source-", suffix=".jsonl") as copy:
            try:
                shutil.copyfileobj(source.stream, copy, COPY_CHUNK)
                copy.flush()
            except OSError as e:
                msg = f"{path}: cannot keep a copy of the source in {copy.name} ({e.strerror or e})"
                raise SourceError(msg) from None
            yield copy.name


def _open_path(path: str) -> SourceFile:
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        msg = f"{path}: cannot read the source ({e.strerror or e})"
        raise SourceError(msg) from None
    if stat.S_ISDIR(mode):
        msg = f"{path}: is a directory, not a JSON Lines file"
        raise SourceError(msg)
    real = os.path.realpath(path)
    try:
        opener = _open_fifo if stat.S_ISFIFO(mode) else _open_file
        raw = opener(path)
    except OSError as e:
        msg = f"{path}: cannot read the source ({e.strerror or e})"
        raise SourceError(msg) from None
    if stat.S_ISREG(mode):
        return SourceFile(path, real, io.BufferedReader(raw), raw.fileno())
    return SourceFile(path, real, _peekable(raw), None)


def _open_file(path: str) -> io.FileIO:
    return open(path, "rb", buffering=0)


def _open_fifo(path: str) -> io.FileIO:
    """Open a FIFO for reading; say so on stderr if no writer comes within a second."""
    note = threading.Timer(
        FIFO_NOTE_SECONDS, logger.warning, ("%s: a FIFO with no writer yet: waiting for one", path)
    )
    note.daemon = True
    note.start()
    try:
        return _open_file(path)
    finally:
        note.cancel()


def _peekable(raw: BinaryIO | io.RawIOBase) -> io.BufferedReader:
    if isinstance(raw, io.BufferedReader):
        return raw
    return io.BufferedReader(raw, buffer_size=SNIFF_BYTES)  # type: ignore[arg-type]


def _head(source: SourceFile) -> bytes:
    if source.fd is not None:
        return os.pread(source.fd, SNIFF_BYTES, 0)
    reader = source.stream
    assert isinstance(reader, io.BufferedReader | LineAlignedReader)
    return reader.peek(SNIFF_BYTES)[:SNIFF_BYTES]


def _refuse_binary(source: SourceFile) -> None:
    """Refuse data that is plainly not JSON Lines (compressed data is looked at after
    ``_decompressed``)."""
    head = _head(source)
    if compression_of(head) is not None:
        return
    what = looks_like(head)
    at = head.find(b"\0")
    if what is None and at >= 0:
        what = f"binary data (a NUL byte at offset {at:,})"
    if what is not None:
        msg = f"{source.name}: looks like {what}, not JSON Lines; nothing was read from it"
        raise SourceError(msg)


def _decompressed(source: SourceFile) -> SourceFile:
    """``source`` read uncompressed when it is compressed (else itself), its
    uncompressed head checked as ``_refuse_binary`` checks a plain one."""
    compression = compression_of(_head(source))
    if compression is None:
        return source
    stream = LineAlignedReader(source.stream, compression)  # nothing was read from it yet
    lines = cast(BinaryIO, stream)  # it reads as a binary stream does (read, peek, tell)
    opened = SourceFile(source.name, source.real, lines, None, compression, source.fd)
    head = stream.peek(SNIFF_BYTES)[:SNIFF_BYTES]
    what = looks_like(head)
    at = head.find(b"\0")
    if what is None and at >= 0:
        what = f"binary data (a NUL byte at uncompressed offset {at:,})"
    if what is not None:
        msg = (
            f"{source.name}: {compression} data that looks like {what} once uncompressed, "
            "not JSON Lines; nothing was read from it"
        )
        raise SourceError(msg)
    return opened
