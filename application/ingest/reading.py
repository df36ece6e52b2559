"""The reading half of ingest: source lines become parsed, encoded batches.

``read_batches`` applies the source rules (blank lines, the pending tail,
``parse_event``) and encodes each valid event's stored state, which does not
depend on versions, so it can run in a second process while the first one
decides duplicates and commits (``reader_process.piped_batches``). Either way
the writer sees the same ``ParsedBatch`` objects, in source order.
"""

from __future__ import annotations

import marshal
import os
import sys
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import BinaryIO

from eventfold.application.ingest.dedup import id_key
from eventfold.application.ingest.rules import SourceEvent, is_blank, is_whole_object, parse_event
from eventfold.application.recorded import RecordedCodec
from eventfold.domain.model import Category
from eventfold.infra.errors import EventfoldError
from eventfold.infra.lines import MAX_LINE_BYTES, Block, OverlongLine, line_blocks, skip_bom


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
    digest: str = ""  # of the source's bytes before ``position``, when the reader hashed them
    texts: list[str] | None = None  # the values as ``str`` wrote them, when sent as bytes

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
                self.digest,
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
            digest,
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
            digest,
            values,
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
    quarantined by its offset, length and first bytes. A byte order mark at byte 0
    of the source is skipped (``skip_bom``).
    """
    position = skip_bom(stream, position)
    batch = _new_batch(codec, source, position, line)
    number, end, encode = line - continued, position, codec.encoded
    for lines, terminated in _blocks(stream, max_line, source, position):
        if isinstance(lines, OverlongLine):
            number += 1
            offset, end = end, end + lines.length + terminated
            if not _overlong(
                batch, lines, number, offset, end, terminated or not growing, max_line
            ):
                break
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


def _overlong(
    batch: ParsedBatch,
    line: OverlongLine,
    number: int,
    offset: int,
    end: int,
    whole: bool,
    max_line: int,
) -> bool:
    """Add a line over the limit to the batch (invalid); False when it is a pending tail."""
    if not whole:
        batch.pending = (number, offset, line.length)
        return False
    batch.read += 1
    text = line.head.decode("utf-8", errors="backslashreplace") + "…"
    batch.invalid.append((number, offset, line.reason(max_line), text))
    batch.position, batch.line = end, number
    return True


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
