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
import signal
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

from eventfold.application.ingest.dedup import id_key
from eventfold.application.ingest.rules import SourceEvent, is_blank, is_whole_object, parse_event
from eventfold.application.recorded import RecordedCodec
from eventfold.domain.model import Category
from eventfold.infra import failpoints
from eventfold.infra.errors import EventfoldError
from eventfold.infra.lines import MAX_LINE_BYTES, Block, OverlongLine, line_blocks

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
    digests: list[bytes] = field(default_factory=list)  # content_digest of each event
    states: list[bytes] = field(default_factory=list)
    invalid: list[tuple[int, int, str, str]] = field(default_factory=list)
    pending: tuple[int, int, int] | None = None

    def add(
        self, event: SourceEvent, number: int, offset: int, encoded: tuple[bytes, bytes]
    ) -> None:
        """Append one valid event, read at line ``number`` and byte ``offset``, with its
        stored state and content digest (``RecordedCodec.encoded``)."""
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
        self.states.append(encoded[0])
        self.digests.append(encoded[1])

    def event(self, i: int) -> SourceEvent:
        """The ``i``-th valid event of the batch."""
        iso = self.isos[i]
        when = None if iso is None else datetime.fromisoformat(iso)
        return SourceEvent(self.ids[i], self.categories[i], self.values[i], when, iso)

    def to_bytes(self) -> bytes:
        """The batch for the writing process (``marshal``: both ends are this interpreter)."""
        return marshal.dumps(
            (
                self.timestamp.isoformat(),
                self.position,
                self.line,
                self.read,
                self.ids,
                self.categories,
                list(map(str, self.values)),
                self.isos,
                self.numbers.tobytes(),
                self.offsets.tobytes(),
                self.keys,
                self.digests,
                self.states,
                self.invalid,
                self.pending,
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> ParsedBatch:
        """The batch ``to_bytes`` wrote."""
        (
            timestamp,
            position,
            line,
            read,
            ids,
            categories,
            values,
            isos,
            numbers,
            offsets,
            keys,
            digests,
            states,
            invalid,
            pending,
        ) = marshal.loads(data)
        return cls(
            datetime.fromisoformat(timestamp),
            position,
            line,
            read,
            ids,
            categories,
            list(map(Decimal, values)),
            isos,
            array("q", numbers),
            array("q", offsets),
            keys,
            digests,
            states,
            invalid,
            pending,
        )


class ReaderError(EventfoldError):
    """The source could not be read to its end (a read failed, or the reader process died).

    What was committed before stands; ingest resumes from there when run again.
    """

    label = "read failed"


def read_batches(
    stream: BinaryIO,
    position: int,
    line: int,
    size: int,
    codec: RecordedCodec,
    source: str,
    *,
    growing: bool,
    max_line: int = MAX_LINE_BYTES,
    continued: bool = False,
) -> Iterator[ParsedBatch]:
    """Batches of ``size`` non-blank lines read from ``position`` (after ``line``).

    With ``growing`` (a file), an unterminated last line that is not yet a
    whole JSON object is left pending; on a stream it is an ordinary line.
    ``continued``: ``position`` is inside line ``line`` (its first part was an
    unterminated last line, taken whole earlier), so what comes first belongs
    to that physical line. A line over ``max_line`` bytes is invalid, and
    quarantined by its offset, length and first bytes.
    """
    batch = _new_batch(codec, source, position, line)
    number, end, encode = line - continued, position, codec.encoded
    for lines, terminated in _blocks(stream, max_line, source, position):
        if isinstance(lines, OverlongLine):
            number += 1
            offset, end = end, end + lines.length + terminated
            if not terminated and growing:
                batch.pending = (number, offset, lines.length)
                break
            batch.read += 1
            text = lines.head.decode("utf-8", errors="backslashreplace") + "…"
            batch.invalid.append((number, offset, lines.reason(max_line), text))
            batch.position, batch.line = end, number
            if batch.read >= size:
                yield batch
                batch = _new_batch(codec, source, end, number)
            continue
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
                batch.add(parsed, number, offset, encode(parsed, number, offset))
            batch.position, batch.line = end, number
            if batch.read >= size:
                yield batch
                batch = _new_batch(codec, source, end, number)
    yield batch


def _blocks(stream: BinaryIO, max_line: int, source: str, position: int) -> Iterator[Block]:
    """``line_blocks``, with a failed read named (file and byte offset) as a ``ReaderError``."""
    blocks = line_blocks(stream, max_line)
    while True:
        try:
            block = next(blocks)
        except StopIteration:
            return
        except OSError as e:
            where = _tell(stream, position)
            msg = f"{source}: reading failed near byte offset {where:,}: {e.strerror or e}"
            raise ReaderError(msg) from None
        yield block


def _tell(stream: BinaryIO, default: int) -> int:
    try:
        return stream.tell()
    except OSError:
        return default


def ends_inside_a_line(fd: int, position: int) -> bool:
    """Whether byte ``position`` of a file follows an unterminated line (one taken whole)."""
    return position > 0 and os.pread(fd, 1, position - 1) != b"\n"


def _new_batch(codec: RecordedCodec, source: str, position: int, line: int) -> ParsedBatch:
    timestamp = Category.Recorded.create_timestamp()
    codec.prepare(timestamp, source)
    return ParsedBatch(timestamp, position, line)


# -- a reader process ----------------------------------------------------------
#
# The child writes frames ``length:u64 batch`` and, after the last batch, the end
# frame ``END:u64 batches:u64``. Only that end frame, with the right count, ends
# the source: a child that dies, fails, or is cut short mid-frame fails the run.

END = (1 << 64) - 1


def piped_batches(
    fd: int,
    position: int,
    line: int,
    size: int,
    source: str,
    *,
    max_line: int = MAX_LINE_BYTES,
    continued: bool = False,
) -> Iterator[ParsedBatch]:
    """``read_batches`` of an open file, mostly in a child process (plain JSON state only).

    The child starts at once, where a batch ends about a quarter of the way in
    (at most ``HEAD_BYTES``), while this process reads the lines before it (so
    the child's start-up costs no time and it gets ahead). The child reads the
    same open file (``fd``), so a rename cannot swap it. ``ReaderError`` when
    the child ends any way but by its end-of-input frame.
    """
    left = os.fstat(fd).st_size - position
    head = os.pread(fd, min(HEAD_BYTES, left // 4), position)
    cut, lines = _whole_batches(head, size, max_line, continued)
    boundary, boundary_line = position + cut, line + lines
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "eventfold.application.children",
            "read",
            str(fd),
            str(boundary),
            str(boundary_line),
            str(size),
            str(max_line),
            source,
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        pass_fds=(fd,),
    )
    assert child.stdout is not None
    with contextlib.suppress(OSError):  # fewer, larger transfers between the halves
        fcntl.fcntl(child.stdout.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    ahead = _ReadAhead(child.stdout, READ_AHEAD_BYTES)
    try:
        if cut:
            yield from read_batches(
                io.BytesIO(head[:cut]),
                position,
                line,
                size,
                RecordedCodec.plain(),
                source,
                growing=True,
                max_line=max_line,
                continued=continued,
            )
        for frame in ahead:
            yield ParsedBatch.from_bytes(frame)
    finally:
        ahead.stop()
        if ahead.problem is not None:  # it failed, or this side stopped early
            child.kill()
        _, err = child.communicate()
    if ahead.problem is not None:
        reason = ahead.problem
        if child.returncode:
            reason = f"{_ending(child.returncode)}; {reason}"
        last = err.decode(errors="replace").strip().splitlines()
        detail = f" ({last[-1]})" if last else ""
        msg = (
            f"{source}: the reader process stopped before the end of the source: {reason}"
            f"{detail}; what was committed stands, and ingest resumes there when run "
            "again"
        )
        raise ReaderError(msg)


def _ending(returncode: int) -> str:
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-returncode).name}"
        return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


def _whole_batches(head: bytes, size: int, max_line: int, continued: bool) -> tuple[int, int]:
    """Bytes and lines of ``head`` that make whole batches of ``size`` non-blank lines.

    Ending the head where ``read_batches`` ends a batch keeps commits the same
    whichever process reads which part.
    """
    cut = lines = count = offset = 0
    for number, raw in enumerate(head.split(b"\n")[:-1], 1 - continued):  # terminated only
        offset += len(raw) + 1
        if len(raw) > max_line or not is_blank(raw):
            count += 1
            if count % size == 0:
                cut, lines = offset, number
    return cut, lines


class _ReadAhead:
    """The child's frames, read by a thread while the writer works (``limit`` bytes held).

    Without it the child stalls on a full pipe whenever the writer pauses (an
    index flush), and the writer later waits for the child. Iteration ends at
    the child's end frame, or early with ``problem`` saying what went wrong.
    """

    def __init__(self, stream: IO[bytes], limit: int) -> None:
        self._stream, self._limit = stream, limit
        self._frames: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._room = threading.Condition()
        self._held = 0
        self._stopped = False
        self.problem: str | None = "it sent no end of input"
        self._thread = threading.Thread(
            target=self._drain, name="eventfold-read-ahead", daemon=True
        )
        self._thread.start()

    def _drain(self) -> None:
        sent = 0
        try:
            while header := self._stream.read(FRAME.size):
                if len(header) < FRAME.size:
                    self.problem = "its output was cut short inside a frame"
                    return
                (length,) = FRAME.unpack(header)
                if length == END:
                    count = self._stream.read(FRAME.size)
                    if len(count) < FRAME.size or FRAME.unpack(count)[0] != sent:
                        self.problem = "its end of input does not match the batches it sent"
                    else:
                        self.problem = None
                    return
                frame = self._stream.read(length)
                if len(frame) < length:
                    self.problem = "its output was cut short inside a frame"
                    return
                sent += 1
                with self._room:
                    self._room.wait_for(lambda: self._held < self._limit or self._stopped)
                    if self._stopped:
                        return
                    self._held += len(frame)
                self._frames.put(frame)
        except Exception as e:  # a failed read of the pipe is a failed run, never an end
            self.problem = f"reading its output failed ({type(e).__name__}: {e})"
        finally:
            self._frames.put(None)

    def __iter__(self) -> Iterator[bytes]:
        while (frame := self._frames.get()) is not None:
            with self._room:
                self._held -= len(frame)
                self._room.notify()
            yield frame
        self._thread.join()

    def stop(self) -> None:
        with self._room:
            self._stopped = True
            self._room.notify()


def serve(argv: list[str]) -> None:
    fd, position, line, size, max_line, source = argv
    out = sys.stdout.buffer
    sent = 0
    with open(int(fd), "rb") as stream:
        stream.seek(int(position))
        codec = RecordedCodec.plain()
        for batch in read_batches(
            stream,
            int(position),
            int(line),
            int(size),
            codec,
            source,
            growing=True,
            max_line=int(max_line),
        ):
            data = batch.to_bytes()
            out.write(FRAME.pack(len(data)) + data)
            out.flush()
            sent += 1
            failpoints.reach("reader.after-batch")
    out.write(FRAME.pack(END) + FRAME.pack(sent))
    out.flush()
