"""Compressed sources: recognised by their first bytes, read as a stream of their lines.

gzip, bzip2 and xz come from the standard library; zstd from ``compression.zstd``
(Python 3.14) or its backport ``backports.zstd`` (the same module, for 3.11 to
3.13). Each is driven through its incremental decompressor, so that:

- memory stays bounded whatever the ratio (at most ``OUT_BYTES`` come out of
  one step), and a file is read once, in order;
- concatenated members or frames are read one after the other (``cat a.gz b.gz``,
  ``pigz``, ``zstd`` with several frames), wherever they fall in the reads; zero
  padding after (or between) them is skipped;
- damage (a file cut short, a bad checksum, garbage after a member) ends the
  stream where the intact data ends: every whole line before it is delivered,
  and ``damage`` says where and why. A partial line before the damage is never
  delivered as a line. A checksum is checked where the data it covers ends (a
  gzip member, a zstd frame, an xz or bzip2 block): lines of a damaged member
  decoded in earlier steps (more than ``OUT_BYTES`` before its end) have been
  delivered before its damage is seen.

``LineAlignedReader`` delivers whole lines only (up to the last ``\\n`` seen so
far); what follows the last ``\\n`` is delivered at a clean end of stream, and
counted as lost at a damaged one.
"""

from __future__ import annotations

import bz2
import lzma
import os
import stat
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

GZIP, BZIP2, XZ, ZSTD = "gzip", "bzip2", "xz", "zstd"
FORMATS = (GZIP, BZIP2, XZ, ZSTD)
IN_BYTES = 1 << 16  # compressed bytes fed per step
OUT_BYTES = 1 << 20  # uncompressed bytes taken out per step, at most
MAGIC_BYTES = 8  # enough of a file's start to tell its compression

_MAGIC = (
    (b"\x1f\x8b", GZIP),
    (b"BZh", BZIP2),
    (b"\xfd7zXZ\x00", XZ),
    (b"\x28\xb5\x2f\xfd", ZSTD),
)

# What a file that is not JSON Lines looks like, by its first bytes.
_NOT_LINES = (
    (b"PK\x03\x04", "a ZIP archive"),
    (b"PK\x05\x06", "an empty ZIP archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\x04\x22\x4d\x18", "LZ4 data (a compression eventfold does not read)"),
    (b"\x1f\x9d", "compress (.Z) data (a compression eventfold does not read)"),
    (b"LZIP", "lzip data (a compression eventfold does not read)"),
    (b"\xff\x06\x00\x00sNaPpY", "Snappy data (a compression eventfold does not read)"),
    (b"\x89PNG", "a PNG image"),
    (b"%PDF", "a PDF document"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"PAR1", "a Parquet file"),
    (b"\x7fELF", "an executable"),
)
_MAGIC_BYTES = max(len(magic) for magic, _ in _MAGIC)
_TAR_MAGIC = (257, b"ustar")


def compression_of(head: bytes) -> str | None:
    """The compression of data beginning with ``head`` (gzip, bzip2, xz, zstd), or None."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    if len(head) >= 4 and 0x50 <= head[0] <= 0x5F and head[1:4] == b"\x2a\x4d\x18":
        return ZSTD  # a zstd skippable frame leads (the seekable format, for one)
    return None


def compression_of_file(path: str) -> str | None:
    """The compression of the regular file ``path``, by its first bytes (None when it has
    none, or is not a regular file: a stream is never read here). ``OSError`` when it
    cannot be read."""
    if not stat.S_ISREG(os.stat(path).st_mode):
        return None
    with open(path, "rb") as f:
        return compression_of(f.read(MAGIC_BYTES))


RATIO_ESTIMATE = 8  # uncompressed bytes per byte of a compressed file that does not say


def uncompressed_size(path: str) -> int:
    """About how many bytes the regular file ``path`` holds uncompressed: its size when
    it is not compressed; for gzip, the size its trailer records (its last member's,
    modulo 2**32, as the format keeps it); for the others, ``RATIO_ESTIMATE`` times its
    size. ``OSError`` when it cannot be read."""
    size = os.stat(path).st_size
    compression = compression_of_file(path)
    if compression is None:
        return size
    if compression == GZIP and size >= 18:
        with open(path, "rb") as f:
            f.seek(-4, os.SEEK_END)
            return max(int.from_bytes(f.read(4), "little"), size)
    return size * RATIO_ESTIMATE


def looks_like(head: bytes) -> str | None:
    """What data beginning with ``head`` is when it is plainly not JSON Lines (an
    archive, another compression, a known binary format), or None."""
    for magic, what in _NOT_LINES:
        if head.startswith(magic):
            return what
    at, magic = _TAR_MAGIC
    if head[at : at + len(magic)] == magic:
        return "a tar archive"
    return None


@dataclass(frozen=True)
class Damage:
    """Where a compressed stream stopped being readable, and why."""

    compression: str
    offset: int  # compressed bytes read before the damage was met (the damage is in the last step)
    position: int  # uncompressed bytes of whole lines delivered before it
    lost: int  # uncompressed bytes after the last whole line, decoded but not delivered
    reason: str

    def describe(self) -> str:
        return (
            f"damaged {self.compression} data near compressed byte {self.offset:,}: "
            f"{self.reason}; read up to byte {self.position:,} of the uncompressed "
            "lines"
            + (f" ({self.lost:,} bytes of a cut line after it dropped)" if self.lost else "")
        )


class _Decompressor(Protocol):
    eof: bool
    unused_data: bytes

    def decompress(self, data: bytes, max_length: int = ...) -> bytes: ...

    @property
    def needs_input(self) -> bool: ...


class _Gzip:
    """``zlib``'s gzip member decompressor behind the interface of bz2's and lzma's."""

    def __init__(self) -> None:
        self._z = zlib.decompressobj(wbits=31)
        self._tail = b""

    @property
    def eof(self) -> bool:
        return self._z.eof

    @property
    def unused_data(self) -> bytes:
        return self._z.unused_data

    @property
    def needs_input(self) -> bool:
        return not self._tail and not self._z.eof

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        out = self._z.decompress(self._tail + data, max(max_length, 0))
        self._tail = self._z.unconsumed_tail
        return out


def zstd_module() -> Any:
    """The zstd module: the standard library's (Python 3.14), else its backport. Imported
    when it is first needed (a zstd source, a compressed commit), not at start-up."""
    try:
        from compression import zstd  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        from backports import zstd  # type: ignore[no-redef,unused-ignore]
    return zstd


_NEW: dict[str, Callable[[], Any]] = {
    GZIP: _Gzip,
    BZIP2: bz2.BZ2Decompressor,
    XZ: lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ),
    ZSTD: lambda: zstd_module().ZstdDecompressor(),
}


def _errors(compression: str) -> tuple[type[BaseException], ...]:
    errors: tuple[type[BaseException], ...] = (zlib.error, OSError, EOFError, ValueError)
    if compression == XZ:
        errors += (lzma.LZMAError,)
    if compression == ZSTD:
        errors += (zstd_module().ZstdError,)
    return errors


class DecompressingReader:
    """The uncompressed bytes of ``raw`` (``compression`` data), a bounded step at a time.

    ``read`` returns b"" at the end, clean or damaged; ``damage`` then tells which.
    ``compressed`` counts the compressed bytes read so far.
    """

    def __init__(self, raw: BinaryIO, compression: str) -> None:
        self._raw = raw
        self.compression = compression
        self._errors = _errors(compression)
        self._dec: _Decompressor = _NEW[compression]()
        self.compressed = 0
        self.damage_reason: str | None = None
        self._done = False

    def read(self, size: int = OUT_BYTES) -> bytes:
        """Up to about ``size`` uncompressed bytes (b"" at the end, clean or damaged)."""
        size = OUT_BYTES if size < 0 else size
        while not self._done:
            try:
                out = self._step(size)
            except self._errors as e:
                self._fail(str(e) or type(e).__name__)
                return b""
            if out:
                return out
        return b""

    def _step(self, size: int) -> bytes:
        dec = self._dec
        if dec.eof:
            rest = self._next_member(dec.unused_data)
            if not rest:
                self._done = True
                return b""
            if compression_of(rest) != self.compression:
                msg = f"bytes that are not {self.compression} data follow the compressed data"
                raise ValueError(msg)
            self._dec = _NEW[self.compression]()
            return self._dec.decompress(rest, size)
        if dec.needs_input:
            chunk = self._read_raw()
            if not chunk:
                msg = "the file ends before its compressed data does (it was cut short)"
                raise EOFError(msg)
            return dec.decompress(chunk, size)
        return dec.decompress(b"", size)

    def _next_member(self, rest: bytes) -> bytes:
        """The start of what follows a member (``rest``: the bytes read past it), zero
        padding skipped: b"" at the end of the file, else enough bytes to recognise the
        next member by (fewer only when the file ends first), however the reads fell."""
        rest = rest.lstrip(b"\0")
        while len(rest) < _MAGIC_BYTES:
            more = self._read_raw()
            if not more:
                break
            rest = rest + more if rest else more.lstrip(b"\0")
        return rest

    def _read_raw(self) -> bytes:
        chunk = self._raw.read(IN_BYTES)
        self.compressed += len(chunk)
        return chunk

    def _fail(self, reason: str) -> None:
        self.damage_reason = reason
        self._done = True

    def close(self) -> None:
        self._raw.close()


class LineAlignedReader:
    """A ``DecompressingReader`` delivering whole lines only; the binary stream sources
    are read through (``read``, ``peek``, ``tell``). ``damage`` is set at a damaged end.
    """

    def __init__(self, raw: BinaryIO, compression: str) -> None:
        self._source = DecompressingReader(raw, compression)
        self.compression = compression
        self._held = b""  # decoded bytes after the last newline delivered
        self._ready = b""  # decoded whole lines not yet delivered
        self._delivered = 0
        self._ended = False
        self.damage: Damage | None = None

    def _fill(self) -> None:
        while not self._ready and not self._ended:
            data = self._source.read(OUT_BYTES)
            if not data:
                self._ended = True
                if self._source.damage_reason is None:
                    self._ready, self._held = self._held, b""
                else:
                    self.damage = Damage(
                        self.compression,
                        self._source.compressed,
                        self._delivered,
                        len(self._held),
                        self._source.damage_reason,
                    )
                    self._held = b""
                return
            cut = data.rfind(b"\n") + 1
            if len(self._held) + len(data) - cut > OUT_BYTES:  # a very long line: pass it on
                self._ready, self._held = self._held + data, b""
            elif cut:
                self._ready = self._held + data[:cut]
                self._held = data[cut:]
            else:
                self._held += data

    def read(self, size: int = -1) -> bytes:
        self._fill()
        if size < 0 or size >= len(self._ready):
            out, self._ready = self._ready, b""
        else:
            out, self._ready = self._ready[:size], self._ready[size:]
        self._delivered += len(out)
        return out

    def peek(self, size: int = 1) -> bytes:
        self._fill()
        return self._ready[: max(size, 1)] if size > 0 else self._ready

    def tell(self) -> int:
        """Uncompressed bytes delivered so far."""
        return self._delivered

    @property
    def compressed(self) -> int:
        """Compressed bytes read so far."""
        return self._source.compressed

    def close(self) -> None:
        self._source.close()

    def readable(self) -> bool:
        return True
