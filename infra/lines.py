"""Physical lines of a JSON Lines source, read a block at a time in bounded memory.

A line is the bytes up to ``\\n`` (a trailing ``\\r`` stays: JSON reads it as
whitespace). A line longer than ``max_line`` bytes is never held whole: it is
read past and reported as an ``OverlongLine`` with its length and first bytes,
so memory stays within a few blocks whatever the input (a 200 MB line, a
stream with no newline at all). A UTF-8 byte order mark at the very start of
a source is not part of its first line (``skip_bom``); offsets stay the
file's byte offsets.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO, NamedTuple

READ_CHUNK = 1 << 20
MAX_LINE_BYTES = 4 << 20  # the default --max-line-bytes
HEAD_BYTES = 1024  # what is kept of an overlong line, to show and quarantine
BOM = b"\xef\xbb\xbf"  # UTF-8's byte order mark, U+FEFF


class OverlongLine(NamedTuple):
    """A line of more than the limit: its length (without ``\\n``) and first bytes."""

    length: int
    head: bytes

    def reason(self, limit: int) -> str:
        return f"line of {self.length:,} bytes is longer than the limit ({limit:,} bytes)"


Block = tuple[list[bytes] | OverlongLine, bool]


class Line(NamedTuple):
    """A physical line: 1-based number, byte offset, bytes without the line ending.

    A line over the limit has ``overlong`` set (its length; ``raw`` is its head).
    """

    number: int
    offset: int
    raw: bytes
    terminated: bool
    overlong: int | None = None

    @property
    def end(self) -> int:
        """Offset just after this line (and its ``\\n`` when terminated)."""
        length = len(self.raw) if self.overlong is None else self.overlong
        return self.offset + length + (1 if self.terminated else 0)


def skip_bom(stream: BinaryIO, position: int) -> int:
    """Where the lines of a source read from ``position`` begin: past a UTF-8 byte order
    mark when ``position`` is the very start of the source and it begins with one.

    ``stream`` is at ``position``; it is left where the lines begin. It must be able
    to peek (a buffered reader: files, standard input, FIFOs) or seek (``BytesIO``).
    """
    if position != 0:
        return position
    peek = getattr(stream, "peek", None)
    if peek is not None:
        head = peek(len(BOM))[: len(BOM)]
    else:
        head = stream.read(len(BOM))
        stream.seek(-len(head), 1)
    if head != BOM:
        return position
    stream.read(len(BOM))
    return position + len(BOM)


def line_blocks(stream: BinaryIO, max_line: int = MAX_LINE_BYTES) -> Iterator[Block]:
    """The lines of ``stream`` (without ``\\n``), a block per read, and whether they end in one.

    A block is a list of terminated lines, or one ``OverlongLine``. The last block
    is ``([tail], False)`` (or an unterminated ``OverlongLine``) when the stream
    ends without ``\\n``. Lines come in order; each byte is read once.
    """
    parts: list[bytes] = []  # the unterminated line so far, in pieces (no quadratic joins)
    held = 0
    skipped: OverlongLine | None = None  # an overlong line being read past
    while chunk := stream.read(READ_CHUNK):
        if skipped is not None:
            end = chunk.find(b"\n")
            if end < 0:
                skipped = skipped._replace(length=skipped.length + len(chunk))
                continue
            yield skipped._replace(length=skipped.length + end), True
            skipped, chunk = None, chunk[end + 1 :]
        lines = chunk.split(b"\n")
        tail = lines.pop()
        if parts and lines:
            lines[0] = b"".join([*parts, lines[0]])
            parts, held = [], 0
        if lines:
            if max(map(len, lines)) > max_line:
                yield from _split_overlong(lines, max_line)
            else:
                yield lines, True
        if held + len(tail) > max_line:
            head = b"".join([*parts, tail[:HEAD_BYTES]])[:HEAD_BYTES]
            skipped = OverlongLine(held + len(tail), head)
            parts, held = [], 0
        elif tail:
            parts.append(tail)
            held += len(tail)
    if skipped is not None:
        yield skipped, False
    elif parts:
        yield [b"".join(parts)], False


def _split_overlong(lines: list[bytes], max_line: int) -> Iterator[Block]:
    """A block with lines over the limit, as blocks of ordinary lines and ``OverlongLine``s."""
    start = 0
    for i, raw in enumerate(lines):
        if len(raw) > max_line:
            if i > start:
                yield lines[start:i], True
            yield OverlongLine(len(raw), raw[:HEAD_BYTES]), True
            start = i + 1
    if start < len(lines):
        yield lines[start:], True


def read_lines(
    stream: BinaryIO, offset: int = 0, number: int = 0, max_line: int = MAX_LINE_BYTES
) -> Iterator[Line]:
    """The lines of ``stream`` read from ``offset`` (after line ``number``).

    The last line is yielded with ``terminated=False`` when the stream ends without
    ``\\n``; a line over ``max_line`` with ``overlong`` set.
    """
    for lines, terminated in line_blocks(stream, max_line):
        if isinstance(lines, OverlongLine):
            number += 1
            yield Line(number, offset, lines.head, terminated, lines.length)
            offset += lines.length + terminated
            continue
        for raw in lines:
            number += 1
            yield Line(number, offset, raw, terminated)
            offset += len(raw) + terminated
