"""The reading half of ingest: source lines become parsed, encoded batches.

``read_batches`` applies the source rules (blank lines, the pending tail,
``parse_event``) and encodes each valid event's stored state, which does not
depend on versions, so it can run in a second process while the first one
decides duplicates and commits (``piped_batches``). Either way the writer
sees the same ``ParsedBatch`` objects, in source order.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import marshal
import os
import queue
import struct
import subprocess
import sys
import threading
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import IO, BinaryIO

from eventfold.application.codec import RecordedCodec
from eventfold.domain.model import Category
from eventfold.infra import failpoints
from eventfold.infra.dedup import id_key
from eventfold.infra.source import (
    SourceEvent,
    is_blank,
    is_whole_object,
    line_blocks,
    parse_event,
)

FRAME = struct.Struct("<Q")
PIPE_BYTES = 1 << 20
READ_AHEAD_BYTES = 8 << 20  # parsed batches the writer may have waiting
HEAD_BYTES = 2 << 20  # read by the writer while the child starts and gets ahead


@dataclass
class ParsedBatch:
    """Consecutive source lines: valid events (as columns), invalid lines, where it ends.

    ``read`` counts the non-blank lines consumed; ``position`` and ``line`` are
    the byte offset and line number just after the batch. ``pending`` is set
    on the last batch when an unterminated last line was left for later.
    Valid events are kept as columns (cheap to send and to walk); ``event``
    builds one ``SourceEvent`` when it is needed (a repeated id).
    """

    timestamp: datetime
    position: int = 0
    line: int = 0
    read: int = 0
    ids: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    values: list[Decimal] = field(default_factory=list)
    isos: list[str | None] = field(default_factory=list)
    numbers: array[int] = field(default_factory=lambda: array("q"))  # sent as bytes
    offsets: array[int] = field(default_factory=lambda: array("q"))
    keys: list[bytes] = field(default_factory=list)
    states: list[bytes] = field(default_factory=list)
    invalid: list[tuple[int, int, str, str]] = field(default_factory=list)
    pending: tuple[int, int, int] | None = None

    def add(self, event: SourceEvent, number: int, offset: int, state: bytes) -> None:
        """Append one valid event, read at line ``number`` and byte ``offset``."""
        self.ids.append(event.event_id)
        self.categories.append(sys.intern(event.category))  # shared strings
        self.values.append(event.value)
        iso = event.occurred_iso
        if iso is None and event.occurred_at is not None:
            iso = event.occurred_at.isoformat()
        self.isos.append(iso)
        self.numbers.append(number)
        self.offsets.append(offset)
        self.keys.append(id_key(event.event_id))
        self.states.append(state)

    def event(self, i: int) -> SourceEvent:
        """The ``i``-th valid event of the batch."""
        iso = self.isos[i]
        when = None if iso is None else datetime.fromisoformat(iso)
        return SourceEvent(self.ids[i], self.categories[i], self.values[i], when, iso)

    def to_bytes(self) -> bytes:
        """The batch for the writing process (``marshal``: both ends are this interpreter)."""
        return marshal.dumps((
            self.timestamp.isoformat(), self.position, self.line, self.read, self.ids,
            self.categories, list(map(str, self.values)), self.isos, self.numbers.tobytes(),
            self.offsets.tobytes(), self.keys, self.states, self.invalid, self.pending,
        ))  # fmt: skip

    @classmethod
    def from_bytes(cls, data: bytes) -> ParsedBatch:
        """The batch ``to_bytes`` wrote."""
        (timestamp, position, line, read, ids, categories, values, isos, numbers, offsets, keys,
         states, invalid, pending) = marshal.loads(data)  # fmt: skip
        return cls(
            datetime.fromisoformat(timestamp), position, line, read, ids, categories,
            list(map(Decimal, values)), isos, array("q", numbers), array("q", offsets), keys,
            states, invalid, pending,
        )  # fmt: skip


def read_batches(
    stream: BinaryIO,
    position: int,
    line: int,
    size: int,
    codec: RecordedCodec,
    source: str,
    *,
    growing: bool,
) -> Iterator[ParsedBatch]:
    """Batches of ``size`` non-blank lines read from ``position`` (after ``line``).

    With ``growing`` (a file), an unterminated last line that is not yet a
    whole JSON object is left pending; on a stream it is an ordinary line.
    """
    batch = _new_batch(codec, source, position, line)
    number, end, state = line, position, codec.state
    for lines, terminated in line_blocks(stream):
        for raw in lines:
            number += 1
            offset, end = end, end + len(raw) + terminated
            if is_blank(raw):
                if not terminated:
                    break  # an unterminated blank tail: wait for more
                batch.position, batch.line = end, number
                continue
            parsed = parse_event(raw)
            if not terminated and growing and not is_whole_object(parsed):
                batch.pending = (number, offset, len(raw))
                break
            batch.read += 1
            if isinstance(parsed, str):
                text = raw.decode("utf-8", errors="backslashreplace")
                batch.invalid.append((number, offset, parsed, text))
            else:
                batch.add(parsed, number, offset, state(parsed, number, offset))
            batch.position, batch.line = end, number
            if batch.read >= size:
                yield batch
                batch = _new_batch(codec, source, end, number)
    yield batch


def _new_batch(codec: RecordedCodec, source: str, position: int, line: int) -> ParsedBatch:
    timestamp = Category.Recorded.create_timestamp()
    codec.prepare(timestamp, source)
    return ParsedBatch(timestamp, position, line)


# -- a reader process ----------------------------------------------------------


def piped_batches(
    fd: int, position: int, line: int, size: int, source: str
) -> Iterator[ParsedBatch]:
    """``read_batches`` of an open file, mostly in a child process (plain JSON state only).

    The child starts at once, where a batch ends about a quarter of the way in
    (at most ``HEAD_BYTES``), while this process reads the lines before it (so
    the child's start-up costs no time and it gets ahead). The child reads the
    same open file (``fd``), so a rename cannot swap it.
    """
    left = os.fstat(fd).st_size - position
    head = os.pread(fd, min(HEAD_BYTES, left // 4), position)
    cut, lines = _whole_batches(head, size)
    boundary, boundary_line = position + cut, line + lines
    child = subprocess.Popen(
        [sys.executable, "-m", "eventfold.application.batches", str(fd), str(boundary),
         str(boundary_line), str(size), source],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        pass_fds=(fd,),
    )  # fmt: skip
    assert child.stdout is not None
    with contextlib.suppress(OSError):  # fewer, larger transfers between the halves
        fcntl.fcntl(child.stdout.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    ahead = _ReadAhead(child.stdout, READ_AHEAD_BYTES)
    try:
        if cut:
            yield from read_batches(io.BytesIO(head[:cut]), position, line, size,
                                    RecordedCodec.plain(), source, growing=True)  # fmt: skip
        for frame in ahead:
            yield ParsedBatch.from_bytes(frame)
    finally:
        ahead.stop()
        child.kill()
        _, err = child.communicate()
    if child.returncode not in (0, -9):
        msg = f"{source}: the reader process failed: {err.decode(errors='replace').strip()}"
        raise OSError(msg)


def _whole_batches(head: bytes, size: int) -> tuple[int, int]:
    """Bytes and lines of ``head`` that make whole batches of ``size`` non-blank lines.

    Ending the head where ``read_batches`` ends a batch keeps commits the same
    whichever process reads which part.
    """
    cut = lines = count = offset = 0
    for number, raw in enumerate(head.split(b"\n")[:-1], 1):  # terminated lines only
        offset += len(raw) + 1
        if not is_blank(raw):
            count += 1
            if count % size == 0:
                cut, lines = offset, number
    return cut, lines


class _ReadAhead:
    """The child's frames, read by a thread while the writer works (``limit`` bytes held).

    Without it the child stalls on a full pipe whenever the writer pauses (an
    index flush), and the writer later waits for the child.
    """

    def __init__(self, stream: IO[bytes], limit: int) -> None:
        self._stream, self._limit = stream, limit
        self._frames: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._room = threading.Condition()
        self._held = 0
        self._stopped = False
        self._thread = threading.Thread(target=self._drain, name="eventfold-read-ahead",
                                        daemon=True)  # fmt: skip
        self._thread.start()

    def _drain(self) -> None:
        try:
            while header := self._stream.read(FRAME.size):
                (length,) = FRAME.unpack(header)
                frame = self._stream.read(length)
                with self._room:
                    self._room.wait_for(lambda: self._held < self._limit or self._stopped)
                    if self._stopped:
                        return
                    self._held += len(frame)
                self._frames.put(frame)
        finally:
            self._frames.put(None)

    def __iter__(self) -> Iterator[bytes]:
        while (frame := self._frames.get()) is not None:
            with self._room:
                self._held -= len(frame)
                self._room.notify()
            yield frame

    def stop(self) -> None:
        with self._room:
            self._stopped = True
            self._room.notify()


def _serve(argv: list[str]) -> None:
    fd, position, line, size, source = argv
    out = sys.stdout.buffer
    with open(int(fd), "rb") as stream:
        stream.seek(int(position))
        codec = RecordedCodec.plain()
        for batch in read_batches(stream, int(position), int(line), int(size), codec, source,
                                  growing=True):
            data = batch.to_bytes()
            out.write(FRAME.pack(len(data)) + data)
            out.flush()
            failpoints.reach("reader.after-batch")


if __name__ == "__main__":
    try:
        _serve(sys.argv[1:])
    except BrokenPipeError:  # the writer stopped reading: it is done or gone
        os._exit(0)
