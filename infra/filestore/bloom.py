"""The dedup index's Bloom filter, and its extension by a worker process.

``Bloom`` answers "never seen" for almost every new key without touching the
disk. Adding keys costs a few microseconds each in Python, so an index's
writer has its worker process (``merging.py``) add a new run's keys to a copy
of the filter's file (``extend_file``) while it goes on writing.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable

from eventfold.infra import fileio
from eventfold.infra.filestore.runs import Run

PROBES = struct.Struct("<IH")  # a key's first 6 bytes: a u32 and a u16 (the probes' step)
M32 = 0xFFFFFFFF


class Bloom:
    """A Bloom filter over uniform keys, by their first 6 bytes: 4 probes ``a + i * b``
    (``a`` their first 4 bytes, ``b`` the next 2 twice, as 32 bits), each scaled to
    ``nbits`` (a multiple of 8)."""

    def __init__(self, nbits: int, bits: bytearray | None = None) -> None:
        assert nbits % 8 == 0 and 0 < nbits <= 1 << 32, "whole bytes, 32-bit probes"
        self.nbits = nbits
        self.bits = bits if bits is not None else bytearray(nbits // 8)

    def add_many(self, keys: Iterable[bytes]) -> None:
        bits, nbits, probes = self.bits, self.nbits, PROBES.unpack_from
        for key in keys:  # unrolled: this runs for every id at every flush
            a, b = probes(key)
            b *= 0x10001
            p = a * nbits >> 32
            bits[p >> 3] |= 1 << (p & 7)
            p = ((a + b) & M32) * nbits >> 32
            bits[p >> 3] |= 1 << (p & 7)
            p = ((a + 2 * b) & M32) * nbits >> 32
            bits[p >> 3] |= 1 << (p & 7)
            p = ((a + 3 * b) & M32) * nbits >> 32
            bits[p >> 3] |= 1 << (p & 7)

    def __contains__(self, key: bytes) -> bool:
        bits, nbits = self.bits, self.nbits
        a, b = PROBES.unpack_from(key)
        # Most absent keys stop at the first probe.
        p = a * nbits >> 32
        if not bits[p >> 3] >> (p & 7) & 1:
            return False
        b *= 0x10001
        p = ((a + b) & M32) * nbits >> 32
        if not bits[p >> 3] >> (p & 7) & 1:
            return False
        p = ((a + 2 * b) & M32) * nbits >> 32
        if not bits[p >> 3] >> (p & 7) & 1:
            return False
        p = ((a + 3 * b) & M32) * nbits >> 32
        return bool(bits[p >> 3] >> (p & 7) & 1)


def extend_file(source: str | None, nbits: int, runs: list[Run], output: str) -> int:
    """Write ``output``: the filter of ``nbits`` bits in file ``source`` (None: empty)
    plus every entry of ``runs`` (by its first 6 bytes), durably; return its CRC-32."""
    bits = bytearray(nbits // 8)
    if source is not None:
        with open(source, "rb") as f:
            bits = bytearray(f.read())
        if len(bits) * 8 != nbits:
            msg = f"{source}: {len(bits) * 8} bits, not {nbits}"
            raise ValueError(msg)
    bloom = Bloom(nbits, bits)
    for run in runs:
        for chunk in run.chunks():
            bloom.add_many(chunk)
    fileio.atomic_write(output, bloom.bits)
    return zlib.crc32(bloom.bits)


def read_file(path: str, nbits: int, crc: int) -> Bloom | None:
    """The filter in ``path`` if it has ``nbits`` bits and checksum ``crc``, else None."""
    try:
        with open(path, "rb") as f:
            bits = bytearray(f.read())
    except OSError:
        return None
    if len(bits) * 8 != nbits or zlib.crc32(bits) != crc:
        return None
    return Bloom(nbits, bits)
