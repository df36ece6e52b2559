"""Sorted runs: immutable files of 32-byte entries, looked up by fence keys.

A run is ``"EFIX" count:u64 crc:u32`` then ``count`` sorted entries
``key:16 (version + 2**63):u64be id:u64be``, so byte order is (key, version)
order. Runs are written once, merged like a binary counter, and read with
``pread``: the store's index (``logindex.py``) and the dedup index
(``dedup.py``) are both made of them.
"""

from __future__ import annotations

import contextlib
import os
import struct
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator

from eventfold.infra import fileio
from eventfold.infra.logformat import crc32

ENTRY = struct.Struct(">16sQQ")
ENTRY_SIZE = ENTRY.size
VERSION_BIAS = 1 << 63
RUN_MAGIC = b"EFIX"
RUN_HEADER = struct.Struct("<4sQI")  # magic, entry count, CRC-32 of the entries
ENTRY_READ_CHUNK = 1 << 18  # bytes read at a time when streaming a run
BLOCK_ENTRIES = 256  # entries per fence block: one 8 KiB read per lookup and run


def version_bytes(version: int) -> bytes:
    return struct.pack(">Q", version + VERSION_BIAS)


class Run:
    """One immutable sorted run file, read with pread.

    Lookups bisect an in-memory list of fence keys (the first 24 bytes of
    every block of ``BLOCK_ENTRIES`` entries, about 0.1 byte per event, read
    lazily on the first lookup), then read one block. Nothing is memory-mapped:
    random lookups over a mapping would leave the whole index resident.
    """

    def __init__(self, path: str, count: int, crc: int) -> None:
        self.path = path
        self.name = os.path.basename(path)
        self.count = count
        self.crc = crc
        self._fences: list[bytes] | None = None
        self._fd = os.open(path, os.O_RDONLY)
        try:
            size = os.fstat(self._fd).st_size
            if size != RUN_HEADER.size + count * ENTRY_SIZE:
                msg = f"{path}: size {size} does not hold {count} entries"
                raise ValueError(msg)
            header = fileio.read_exact(self._fd, RUN_HEADER.size, 0)
        except BaseException:
            os.close(self._fd)
            raise
        if RUN_HEADER.unpack(header) != (RUN_MAGIC, count, crc):
            self.close()
            msg = f"{path}: header does not match the checkpoint"
            raise ValueError(msg)

    def _read(self, first: int, n: int) -> bytes:
        """Entries ``first .. first + n - 1``, as one bytes object."""
        offset = RUN_HEADER.size + first * ENTRY_SIZE
        return fileio.read_exact(self._fd, n * ENTRY_SIZE, offset)

    def _fence_keys(self) -> list[bytes]:
        if self._fences is None:
            self._fences = [
                self._read(first, 1)[:24] for first in range(0, self.count, BLOCK_ENTRIES)
            ]
        return self._fences

    def _block_from(self, prefix: bytes) -> int:
        """The first block that can hold an entry starting with ``prefix``."""
        return max(bisect_left(self._fence_keys(), prefix) - 1, 0)

    def _scan_from(self, prefix: bytes) -> Iterator[bytes]:
        """Entries in order from the block that may hold ``prefix`` onward."""
        block = self._block_from(prefix)
        for first in range(block * BLOCK_ENTRIES, self.count, BLOCK_ENTRIES):
            raw = self._read(first, min(BLOCK_ENTRIES, self.count - first))
            for start in range(0, len(raw), ENTRY_SIZE):
                yield raw[start : start + ENTRY_SIZE]

    def _search(self, probe: bytes, *, after: bool) -> tuple[bytes, int]:
        """The block that may hold ``probe``, and the index in it of the first entry
        whose 24-byte head is above ``probe`` (``after``) or not below it."""
        block = max(bisect_right(self._fence_keys(), probe) - 1, 0)
        first = block * BLOCK_ENTRIES
        raw = self._read(first, min(BLOCK_ENTRIES, self.count - first))
        lo, hi = 0, len(raw) // ENTRY_SIZE
        while lo < hi:
            mid = (lo + hi) // 2
            head = raw[mid * ENTRY_SIZE : mid * ENTRY_SIZE + 24]
            if head < probe or (after and head == probe):
                lo = mid + 1
            else:
                hi = mid
        return raw, lo

    def find(self, key: bytes, version: int) -> int | None:
        if self.count == 0:
            return None
        prefix = key + version_bytes(version)
        raw, i = self._search(prefix, after=False)
        entry = raw[i * ENTRY_SIZE : (i + 1) * ENTRY_SIZE]
        if entry[:24] == prefix:
            return int(ENTRY.unpack(entry)[2])
        return None

    def last_version(self, key: bytes) -> int | None:
        """The highest version recorded for ``key`` in this run, or None."""
        if self.count == 0:
            return None
        raw, i = self._search(key + b"\xff" * 8, after=True)
        if i == 0:
            return None
        entry_key, biased, _ = ENTRY.unpack(raw[(i - 1) * ENTRY_SIZE : i * ENTRY_SIZE])
        return biased - VERSION_BIAS if entry_key == key else None

    def versions(self, key: bytes) -> Iterator[tuple[int, int]]:
        if self.count == 0:
            return
        for entry in self._scan_from(key):
            entry_key, biased, nid = ENTRY.unpack(entry)
            if entry_key < key:
                continue
            if entry_key != key:
                break
            yield biased - VERSION_BIAS, nid

    def chunks(self, per_chunk: int = ENTRY_READ_CHUNK // ENTRY_SIZE) -> Iterator[list[bytes]]:
        """All entries in order, ``per_chunk`` at a time (bounded memory whatever the size)."""
        for first in range(0, self.count, per_chunk):
            raw = self._read(first, min(per_chunk, self.count - first))
            yield [raw[i : i + ENTRY_SIZE] for i in range(0, len(raw), ENTRY_SIZE)]

    def entries(self) -> Iterator[bytes]:
        """All entries in order."""
        for chunk in self.chunks():
            yield from chunk

    def verify(self) -> str | None:
        """Check the CRC and sort order; return what is wrong, or None."""
        crc, previous, ordered = 0, b"", True
        for entry in self.entries():
            crc = crc32(entry, crc)
            ordered = ordered and entry > previous
            previous = entry
        if crc != self.crc:
            return f"{self.path}: index run checksum mismatch"
        if not ordered:
            return f"{self.path}: index run is not sorted"
        return None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)


def write_run(path: str, chunks: Iterable[list[bytes]]) -> tuple[int, int]:
    """Write sorted entries, given as lists, as a run file (durably); return (count, crc)."""
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        offset = RUN_HEADER.size
        count, crc = 0, 0
        for entries in chunks:
            for start in range(0, len(entries), 8192):
                data = b"".join(entries[start : start + 8192])
                fileio.write_all(fd, data, offset)
                crc = crc32(data, crc)
                offset += len(data)
            count += len(entries)
        fileio.write_all(fd, RUN_HEADER.pack(RUN_MAGIC, count, crc), 0)
        fileio.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return count, crc


def create_run(directory: str, number: int, chunks: Iterable[list[bytes]]) -> Run:
    """Write ``run-NNNNNNNN.idx`` in ``directory`` from sorted chunks and open it."""
    path = os.path.join(directory, f"run-{number:08d}.idx")
    count, crc = write_run(path, chunks)
    return Run(path, count, crc)


def merge_entries(a: Run, b: Run, chunk: int = 1 << 15) -> Iterator[list[bytes]]:
    """The entries of two runs in order, as lists, merged a chunk at a time.

    Each step merges the two buffered chunks (``sorted`` of two sorted runs is
    a linear merge in C) and emits what is at or below the smaller of the two
    chunks' last entries: nothing unread can come before it. Memory stays at a
    few chunks whatever the sizes of the runs.
    """
    chunks_a, chunks_b = a.chunks(chunk), b.chunks(chunk)
    buf_a, buf_b = next(chunks_a, []), next(chunks_b, [])
    while buf_a and buf_b:
        combined = sorted(buf_a + buf_b)
        if buf_a[-1] <= buf_b[-1]:
            cut = bisect_right(combined, buf_a[-1])
            buf_a, buf_b = next(chunks_a, []), combined[cut:]
        else:
            cut = bisect_right(combined, buf_b[-1])
            buf_a, buf_b = combined[cut:], next(chunks_b, [])
        yield combined[:cut]
    for rest in (buf_a, buf_b):
        if rest:
            yield rest
    yield from chunks_a
    yield from chunks_b


def push_run(
    runs: list[Run], new: Run, make_run: Callable[[Iterable[list[bytes]]], Run]
) -> list[Run]:
    """Append ``new`` and merge runs like a binary counter; return the obsolete runs.

    Two neighbours are merged while the older is not larger than the newer, so
    ``runs`` stays ordered by decreasing size with at most log2(total) + 1 runs.
    The caller deletes the obsolete runs once a checkpoint no longer names them.
    """
    runs.append(new)
    obsolete: list[Run] = []
    while len(runs) >= 2 and runs[-2].count <= runs[-1].count:
        newer, older = runs.pop(), runs.pop()
        runs.append(make_run(merge_entries(older, newer)))
        obsolete += [older, newer]
    return obsolete
