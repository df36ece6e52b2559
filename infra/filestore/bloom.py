"""The dedup index's Bloom filter, and its extension by a worker process.

``Bloom`` answers "never seen" for almost every new key without touching the
disk. Keys are added, and looked up a batch at a time, by ``numpy``: their probes
computed as columns, the bits set or read in one call each (the same bits as the
rule gives a key at a time, tested). An index's writer has its worker process
(``merging.py``) add a new run's keys to the filter it looks keys up in, a file
both map (``extend_shared``), while it goes on writing: bits only ever go from 0
to 1, so a lookup meanwhile reads a filter that holds every key it held before.
"""

from __future__ import annotations

import contextlib
import itertools
import mmap
import os
import zlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from eventfold.infra import fileio
from eventfold.infra.filestore.runs import Run

if TYPE_CHECKING:
    import numpy
    from numpy.typing import NDArray

M32 = 0xFFFFFFFF
CHUNK = 1 << 16  # keys whose probes are computed together (a few MB of columns)


class Bloom:
    """A Bloom filter over uniform keys, by their first 6 bytes: 4 probes ``a + i * b``
    (``a`` their first 4 bytes and ``b`` the next 2, little-endian, ``b`` doubled to 32
    bits), each scaled to ``nbits`` (a multiple of 8)."""

    def __init__(self, nbits: int, bits: bytearray | mmap.mmap | None = None) -> None:
        assert nbits % 8 == 0 and 0 < nbits <= 1 << 32, "whole bytes, 32-bit probes"
        self.nbits = nbits
        self.bits = bits if bits is not None else bytearray(nbits // 8)

    def add_many(self, keys: Iterable[bytes]) -> None:
        """Set the bits of each of ``keys`` (taken ``CHUNK`` at a time, so that a run's
        entries, however many, are added in bounded memory)."""
        import numpy as np

        view = np.frombuffer(self.bits, np.uint8)
        it = iter(keys)
        while chunk := list(itertools.islice(it, CHUNK)):
            for at in self._probes(chunk):
                np.bitwise_or.at(view, at >> 3, np.left_shift(1, at & 7).astype(np.uint8))

    def maybe_many(self, keys: Sequence[bytes]) -> list[bool]:
        """``key in self`` for each of ``keys``, in one pass."""
        if not keys:
            return []
        import numpy as np

        view = np.frombuffer(self.bits, np.uint8)
        found = np.ones(len(keys), bool)
        for at in self._probes(keys):
            found &= (view[at >> 3] >> (at & 7).astype(np.uint8)) & 1 == 1
        return found.tolist()

    def _probes(self, keys: Sequence[bytes]) -> list[NDArray[numpy.uint64]]:
        """Each probe's bit of every key, as a column (a key's first 6 bytes only)."""
        import numpy as np

        widths = set(map(len, keys))
        width = widths.pop()
        if widths or width < 6:  # keys of several lengths (or too short: refused below)
            joined, width = b"".join(key[:6] for key in keys), 6
        else:
            joined = b"".join(keys)
        raw = np.frombuffer(joined, np.uint8).reshape(len(keys), width)
        a = np.ascontiguousarray(raw[:, :4]).view("<u4").ravel().astype(np.uint64)
        b = np.ascontiguousarray(raw[:, 4:6]).view("<u2").ravel().astype(np.uint64)
        b *= np.uint64(0x10001)
        nbits, low, shift = np.uint64(self.nbits), np.uint64(M32), np.uint64(32)
        return [((a + np.uint64(i) * b) & low) * nbits >> shift for i in range(4)]


def share(path: str, bits: bytearray | mmap.mmap) -> mmap.mmap:
    """A new file ``path`` holding ``bits``, mapped shared (``extend_shared`` maps it too).

    The bits are written to the file before it is mapped, so that a full disk is an
    ``OSError`` here (the file removed), never a fault when the mapping is written."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        fileio.write_all(fd, bits, 0)
        return mmap.mmap(fd, len(bits), mmap.MAP_SHARED)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    finally:
        os.close(fd)


def extend_shared(path: str, nbits: int, runs: list[Run], output: str | None) -> int | None:
    """Add every entry of ``runs`` (by its first 6 bytes) to the filter of ``nbits`` bits
    in the shared file ``path`` (``share``); with ``output``, then write the filter
    there durably and return its CRC-32."""
    with open(path, "r+b") as f:
        shared = mmap.mmap(f.fileno(), 0, mmap.MAP_SHARED)
    try:
        if len(shared) * 8 != nbits:
            msg = f"{path}: {len(shared) * 8} bits, not {nbits}"
            raise ValueError(msg)
        bloom = Bloom(nbits, shared)
        for run in runs:
            for chunk in run.chunks():
                bloom.add_many(chunk)
        if output is None:
            return None
        fileio.atomic_write(output, shared)
        return zlib.crc32(shared)
    finally:
        with contextlib.suppress(BufferError):  # a view kept by an error's frames: GC's
            shared.close()
