"""Compressed test sources: each format's compressor, and a cheap highly compressible gzip."""

from __future__ import annotations

import bz2
import gzip
import lzma
import struct
import zlib
from collections.abc import Callable
from typing import Any

from eventfold.infra.compression import BZIP2, GZIP, XZ, ZSTD

__all__ = ["COMPRESS", "event_lines", "repeated_gzip", "skippable_frame", "zstd"]

try:
    from compression import zstd  # type: ignore[import-not-found,unused-ignore]
except ImportError:
    from backports import zstd  # type: ignore[no-redef,unused-ignore]


def _zstd(data: bytes) -> bytes:
    """A zstd frame with its content checksum (as the ``zstd`` tool writes by default)."""
    options: Any = {zstd.CompressionParameter.checksum_flag: 1}
    return bytes(zstd.compress(data, options=options))


COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    GZIP: gzip.compress,
    BZIP2: lambda data: bz2.compress(data, 1),  # 100 kB blocks: a cut file still has whole ones
    XZ: lzma.compress,
    ZSTD: _zstd,
}


def event_lines(count: int, start: int = 0) -> bytes:
    """``count`` valid, distinct JSON Lines events."""
    return b"".join(
        b'{"id": "e%d", "category": "c%d", "value": %d.%02d}\n' % (i, i % 7, i * 31, i % 100)
        for i in range(start, start + count)
    )


def repeated_gzip(block: bytes, times: int) -> bytes:
    """One gzip member holding ``block`` ``times`` over, built without compressing it all.

    After a full flush the compressor starts afresh, so every block compresses to the
    same bytes: compress it once, repeat those, and write the trailer (CRC-32 and
    length) of the whole. A member of 200 MB costs a fraction of a second to make.
    """
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    once = deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(times):
        crc = zlib.crc32(block, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    trailer = struct.pack("<II", crc, (len(block) * times) & 0xFFFFFFFF)
    return header + once * times + deflate.flush() + trailer


def skippable_frame(payload: bytes) -> bytes:
    """A zstd skippable frame (magic 0x184D2A50 to 0x184D2A5F) holding ``payload``."""
    return struct.pack("<II", 0x184D2A50, len(payload)) + payload
