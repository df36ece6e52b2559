"""The reading process of an ingest: most of a large file read on a second core.

The child starts at once, where a batch ends about a quarter of the way in (at
most ``HEAD_BYTES``), while the writer reads the lines before it itself (so the
child's start-up costs no time and it gets ahead). The child reads the same
open file (its descriptor is passed on), so a rename cannot swap it.

The protocol: the child writes frames ``length:u64 batch`` (``ParsedBatch.to_bytes``)
and, after the last batch, the end frame ``END:u64 batches:u64``. Only that end
frame, with the right count, ends the source: a child that dies, fails, or is
cut short mid-frame fails the run (``ReaderError``).
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import queue
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import IO

from eventfold.application.ingest.reading import ParsedBatch, ReaderError, read_batches
from eventfold.application.ingest.rules import is_blank
from eventfold.application.recorded import RecordedCodec
from eventfold.infra import failpoints
from eventfold.infra.lines import MAX_LINE_BYTES

FRAME = struct.Struct("<Q")
PIPE_BYTES = 1 << 20
READ_AHEAD_BYTES = 8 << 20  # parsed batches the writer may have waiting
HEAD_BYTES = 2 << 20  # read by the writer while the child starts and gets ahead

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
    child = _start(
        [str(fd), str(boundary), str(boundary_line), str(size), str(max_line), source], fd
    )
    assert child.stdout is not None
    ahead = ReadAhead(child.stdout, READ_AHEAD_BYTES)
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
        raise failure(source, ahead.problem, child.returncode, err)


def _start(args: list[str], fd: int) -> subprocess.Popen[bytes]:
    """The reading process (``children.py``'s ``read``), passed the open file ``fd``."""
    return start_process(["read", *args], pass_fds=(fd,))


def start_process(
    args: list[str], *, pass_fds: tuple[int, ...] = (), stdin: bool = False
) -> subprocess.Popen[bytes]:
    """A reading child process (``children.py``'s role ``args[0]``), its stdout a pipe
    (large, when the system allows), its stdin a pipe when ``stdin``."""
    child = subprocess.Popen(
        [sys.executable, "-m", "eventfold.application.children", *args],
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        pass_fds=pass_fds,
    )
    assert child.stdout is not None
    with contextlib.suppress(OSError):  # fewer, larger transfers between the halves
        fcntl.fcntl(child.stdout.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    return child


def failure(
    source: str, problem: str, returncode: int, err: bytes, what: str = "reader process"
) -> ReaderError:
    """The error of a run whose reading process did not end with its end of input."""
    reason = f"{_ending(returncode)}; {problem}" if returncode else problem
    last = err.decode(errors="replace").strip().splitlines()
    detail = f" ({last[-1]})" if last else ""
    return ReaderError(
        f"{source}: the {what} stopped before the end of the source: {reason}{detail}; "
        "what was committed stands, and ingest resumes there when run again"
    )


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


class ReadAhead:
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
