"""The blocks of a compressed run (``EFI3``): a column transform, then zstd.

A block holds ``n`` fixed-width sorted entries, each made of an opaque key of
``key_bytes`` (0 or 16) followed by ``words`` big-endian u64 fields. Before
compression the entries are laid out by column (docs/FORMAT.md, "Index")::

    block := flag:u8{words} keys:(key_bytes * n) word_column{words}
    word_column := plane{8}      -- byte j of every value, then byte j + 1, ...

A word column whose flag is 1 holds its first value then the differences
between neighbours (signed, u64 then i64 big-endian), else the values as they
are; the run's layout says which columns are worth the differences (``deltas``,
bit ``w`` for word ``w``): sorted keys, versions and ids in key order are, random
digests are not. Sorted keys repeat (the same originator's versions) and neighbouring
values differ by little (versions, ids, sorted dedup keys), so the high byte
planes are runs of one byte that zstd stores in almost nothing. Every step is
a C-level slice, ``struct`` call or ``itertools.accumulate``: no Python loop
runs per entry, so encoding stays cheap on the write path. A lookup does not
rebuild the entries: ``Columns`` searches the key column and reads one value
from its planes (a column of differences is decoded whole, once).
"""

from __future__ import annotations

import struct
import threading
from itertools import accumulate
from operator import sub
from typing import Any

from eventfold.infra.compression import zstd_module

LEVEL = 1  # zstd level: the transform does the work; higher levels gain little here


class BlockDecodeError(ValueError):
    """A block's bytes (checksum intact) do not decode: the run was written wrong."""


def encode_block(rows: bytes, n: int, key_bytes: int, words: int, deltas: int) -> bytes:
    """The compressed form of ``n`` entries (``rows``, concatenated)."""
    width = key_bytes + 8 * words
    parts: list[bytes | bytearray] = []
    flags = bytearray(words)
    if key_bytes:
        keys = bytearray(n * key_bytes)
        for j in range(key_bytes):
            keys[j::key_bytes] = rows[j::width]
        parts.append(keys)
    for w in range(words):
        at = key_bytes + 8 * w
        column = bytearray(n * 8)
        for j in range(8):
            column[j::8] = rows[at + j :: width]
        packed: bytes | bytearray = column
        if deltas >> w & 1:
            values = struct.unpack(f">{n}Q", column)
            try:
                packed = column[:8] + struct.pack(f">{n - 1}q", *map(sub, values[1:], values))
                flags[w] = 1
            except struct.error:  # neighbours too far apart for an i64: the values as they are
                pass
        parts.append(b"".join(packed[j::8] for j in range(8)))
    compressor = _compressor()
    try:
        return bytes(compressor.compress(bytes(flags) + b"".join(parts), _FRAME))
    except BaseException:
        _local.compressor = None  # it may have been left inside a frame
        raise


def decode_block(data: bytes, n: int, key_bytes: int, words: int) -> bytearray:
    """The ``n`` entries (concatenated) of a block written by ``encode_block``.

    ``BlockDecodeError`` when the bytes are not such a block.
    """
    return rows_of(decompress(data, n, key_bytes, words), n, key_bytes, words)


def rows_of(raw: bytes, n: int, key_bytes: int, words: int) -> bytearray:
    """The ``n`` entries (concatenated) of a decompressed block."""
    width = key_bytes + 8 * words
    rows = bytearray(n * width)
    at = words
    if key_bytes:
        for j in range(key_bytes):
            rows[j::width] = raw[at + j : at + n * key_bytes : key_bytes]
        at += n * key_bytes
    for w in range(words):
        field = key_bytes + 8 * w
        if not raw[w]:  # the planes go straight to their places
            for j in range(8):
                rows[field + j :: width] = raw[at + j * n : at + (j + 1) * n]
            at += 8 * n
            continue
        column = bytearray(8 * n)
        for j in range(8):
            column[j::8] = raw[at + j * n : at + (j + 1) * n]
        at += 8 * n
        (first,) = struct.unpack_from(">Q", column)
        differences = struct.unpack_from(f">{n - 1}q", column, 8)
        try:
            column = bytearray(struct.pack(f">{n}Q", *accumulate(differences, initial=first)))
        except struct.error as e:
            raise BlockDecodeError("block values out of range") from e
        for j in range(8):
            rows[field + j :: width] = column[j::8]
    return rows


_ZSTD = zstd_module()  # imported now: a run may be written as an interpreter shuts down
_FRAME = _ZSTD.ZstdCompressor.FLUSH_FRAME  # each call a whole frame, as ``compress`` makes
_local = threading.local()


def _compressor() -> Any:
    """This thread's compressor at ``LEVEL``, made once (making one costs as much as
    compressing a block)."""
    found = getattr(_local, "compressor", None)
    if found is None:
        found = _local.compressor = _ZSTD.ZstdCompressor(level=LEVEL)
    return found


class Columns:
    """A decompressed block read by column, without rebuilding its entries: what a
    lookup needs (a key column to search, then one or two values)."""

    def __init__(self, raw: bytes, n: int, key_bytes: int, words: int) -> None:
        self.raw, self.n, self.key_bytes, self.words = raw, n, key_bytes, words
        self._decoded: dict[int, tuple[int, ...]] = {}

    def keys(self) -> bytes:
        """The keys, contiguous: the opaque keys, or (without them) word 0's values
        as big-endian bytes."""
        n, at = self.n, self.words
        if self.key_bytes:
            return self.raw[at : at + n * self.key_bytes]
        return self.word_bytes(0)

    def word_bytes(self, w: int) -> bytes:
        """Word ``w`` of every entry, as contiguous big-endian bytes."""
        n, at = self.n, self.words + self.n * self.key_bytes + 8 * self.n * w
        column = bytearray(8 * n)
        for j in range(8):
            column[j::8] = self.raw[at + j * n : at + (j + 1) * n]
        if self.raw[w]:
            column = bytearray(struct.pack(f">{n}Q", *self._values(w, column)))
        return bytes(column)

    def value(self, w: int, i: int) -> int:
        """Word ``w`` of entry ``i``."""
        if self.raw[w]:
            values = self._decoded.get(w)
            if values is None:
                values = self._decoded[w] = self._values(w, None)
            return values[i]
        n, at = self.n, self.words + self.n * self.key_bytes + 8 * self.n * w
        return int.from_bytes(self.raw[at + i : at + 8 * n : n])  # byte i of each plane

    def _values(self, w: int, column: bytearray | None) -> tuple[int, ...]:
        n = self.n
        if column is None:
            at = self.words + n * self.key_bytes + 8 * n * w
            column = bytearray(8 * n)
            for j in range(8):
                column[j::8] = self.raw[at + j * n : at + (j + 1) * n]
        (first,) = struct.unpack_from(">Q", column)
        return tuple(accumulate(struct.unpack_from(f">{n - 1}q", column, 8), initial=first))


def decompress(data: bytes, n: int, key_bytes: int, words: int) -> bytes:
    """A block's column bytes, checked for size (``BlockDecodeError`` otherwise)."""
    zstd = _ZSTD
    size = words + n * (key_bytes + 8 * words)
    try:
        decompressor = zstd.ZstdDecompressor()  # one frame, no more: a block is one
        raw: bytes = decompressor.decompress(data, size + 1)
        whole = decompressor.eof and not decompressor.unused_data
    except zstd.ZstdError as e:
        raise BlockDecodeError(f"block does not decompress ({e})") from e
    if len(raw) != size or not whole:
        raise BlockDecodeError(f"block is not one frame of {size} bytes")
    if raw[:words].strip(b"\x00\x01"):
        raise BlockDecodeError("block flags are not 0 or 1")
    return raw
