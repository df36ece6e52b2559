"""The reading half of ingest: source lines become parsed, encoded batches.

``read_batches`` applies the source rules (blank lines, the pending tail,
``parse_event``) and encodes each valid event's stored state, which does not
depend on versions, so it can run in a second process while the first one
decides duplicates and commits (``piped_batches``). Either way the writer
sees the same ``ParsedBatch`` objects, in source order.
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, BinaryIO

from eventfold.application.codec import RecordedCodec
from eventfold.domain.model import Category
from eventfold.infra.dedup import id_key
from eventfold.infra.source import (
    SourceEvent,
    is_blank,
    is_whole_object,
    parse_event,
    read_lines,
)

FRAME = struct.Struct("<Q")


@dataclass
class ParsedBatch:
    """Consecutive source lines: valid events (columns), invalid lines, where it ends.

    ``read`` counts the non-blank lines consumed; ``position`` and ``line`` are
    the byte offset and line number just after the batch. ``pending`` is set
    on the last batch when an unterminated last line was left for later.
    """

    timestamp: datetime
    position: int = 0
    line: int = 0
    read: int = 0
    events: list[SourceEvent] = field(default_factory=list)
    numbers: list[int] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    keys: list[bytes] = field(default_factory=list)
    states: list[bytes] = field(default_factory=list)
    invalid: list[tuple[int, int, str, str]] = field(default_factory=list)
    pending: tuple[int, int, int] | None = None

    def __getstate__(self) -> dict[str, Any]:
        """Events travel between processes as columns of strings (cheap to pickle)."""
        state = dict(vars(self))
        events = state.pop("events")
        state["columns"] = (
            [e.event_id for e in events], [e.category for e in events],
            [str(e.value) for e in events], [e.occurred_iso for e in events],
        )  # fmt: skip
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        ids, categories, values, isos = state.pop("columns")
        vars(self).update(state)
        self.events = [
            SourceEvent(i, c, Decimal(v), None if w is None else datetime.fromisoformat(w), w)
            for i, c, v, w in zip(ids, categories, values, isos, strict=True)
        ]


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
    for ln in read_lines(stream, position, line):
        if is_blank(ln.raw):
            if not ln.terminated:
                break  # an unterminated blank tail: wait for more
            batch.position, batch.line = ln.end, ln.number
            continue
        parsed = parse_event(ln.raw)
        if not ln.terminated and growing and not is_whole_object(parsed):
            batch.pending = (ln.number, ln.offset, len(ln.raw))
            break
        batch.read += 1
        if isinstance(parsed, str):
            raw = ln.raw.decode("utf-8", errors="backslashreplace")
            batch.invalid.append((ln.number, ln.offset, parsed, raw))
        else:
            batch.events.append(parsed)
            batch.numbers.append(ln.number)
            batch.offsets.append(ln.offset)
            batch.keys.append(id_key(parsed.event_id))
            batch.states.append(codec.state(parsed, ln.number, ln.offset))
        batch.position, batch.line = ln.end, ln.number
        if batch.read >= size:
            yield batch
            batch = _new_batch(codec, source, batch.position, batch.line)
    yield batch


def _new_batch(codec: RecordedCodec, source: str, position: int, line: int) -> ParsedBatch:
    timestamp = Category.Recorded.create_timestamp()
    codec.prepare(timestamp, source)
    return ParsedBatch(timestamp, position, line)


# -- a reader process ----------------------------------------------------------


def piped_batches(
    fd: int, position: int, line: int, size: int, source: str
) -> Iterator[ParsedBatch]:
    """``read_batches`` of an open file, run in a child process (plain JSON state only).

    The child reads the same open file (``fd``), so a rename cannot swap it.
    """
    child = subprocess.Popen(
        [sys.executable, "-m", "eventfold.application.batches", str(fd), str(position),
         str(line), str(size), source],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        pass_fds=(fd,),
    )  # fmt: skip
    assert child.stdout is not None
    try:
        while header := child.stdout.read(FRAME.size):
            (length,) = FRAME.unpack(header)
            batch: ParsedBatch = pickle.loads(child.stdout.read(length))
            yield batch
    finally:
        child.kill()
        _, err = child.communicate()
    if child.returncode not in (0, -9):
        msg = f"{source}: the reader process failed: {err.decode(errors='replace').strip()}"
        raise OSError(msg)


def _serve(argv: list[str]) -> None:
    fd, position, line, size, source = argv
    out = sys.stdout.buffer
    with open(int(fd), "rb") as stream:
        stream.seek(int(position))
        codec = RecordedCodec.plain()
        for batch in read_batches(stream, int(position), int(line), int(size), codec, source,
                                  growing=True):
            data = pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)
            out.write(FRAME.pack(len(data)) + data)
            out.flush()


if __name__ == "__main__":
    # Pickles must name the real module, not __main__.
    from eventfold.application import batches

    try:
        batches._serve(sys.argv[1:])
    except BrokenPipeError:  # the writer stopped reading: it is done or gone
        os._exit(0)
