"""Sorted runs: immutable files of 32-byte entries, verified a block at a time.

A run (docs/FORMAT.md, "Index")::

    run    := header entry{count} footer
    header := "EFI2" count:u64 crc:u32 footer_crc:u32 header_crc:u32   (24 bytes)
    entry  := key:16 (version + 2**63):u64be id:u64be                  (32 bytes)
    footer := (fence:24 block_crc:u32){ceil(count / 256)}

Byte order of the entries is (key, version) order. ``crc`` covers all
entries, ``block_crc`` one block of 256 entries, ``fence`` is the first 24
bytes of that block. A lookup bisects the fences (read once, with the footer)
and reads one block, whose checksum is verified before any answer is taken
from it: a damaged run raises ``IndexDamagedError`` naming the file and offset,
never a wrong answer. Runs are written once, merged like a binary counter,
and read with ``pread``: the store's index (``index.py``) and the dedup
index (``dedup.py``) are both made of them.
"""

from __future__ import annotations

import contextlib
import os
import struct
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator

from eventfold.infra import fileio
from eventfold.infra.filestore.format import crc32

ENTRY = struct.Struct(">16sQQ")
ENTRY_SIZE = ENTRY.size
VERSION_BIAS = 1 << 63
RUN_MAGIC = b"EFI2"
RUN_HEADER = struct.Struct("<4sQII")  # magic, entry count, CRC of the entries, CRC of the footer
HEADER_SIZE = RUN_HEADER.size + 4  # and the header's own CRC
FENCE = struct.Struct("<24sI")  # a block's first 24 bytes, and its CRC
BLOCK_ENTRIES = 256  # entries per block: one 8 KiB read per lookup and run
BLOCK_BYTES = BLOCK_ENTRIES * ENTRY_SIZE
CHUNK_BLOCKS = 32  # blocks read at a time when streaming a run
CACHED_BLOCKS = 64  # verified blocks a run keeps (hot keys are looked up again and again)


class IndexDamagedError(ValueError):
    """A persisted index failed a check: its answers cannot be trusted (rebuild it)."""

    def __init__(self, path: str, offset: int, reason: str) -> None:
        self.path, self.offset, self.reason = path, offset, reason
        super().__init__(f"{path}: byte offset {offset}: {reason}")


def version_bytes(version: int) -> bytes:
    return struct.pack(">Q", version + VERSION_BIAS)


def blocks_of(count: int) -> int:
    return -(-count // BLOCK_ENTRIES)


class Run:
    """One immutable sorted run file, read with pread and verified per block.

    Nothing is memory-mapped: random lookups over a mapping would leave the
    whole index resident. ``IndexDamagedError`` when the file is not the run the
    checkpoint names (size, header) or when a block read fails its checksum.
    """

    def __init__(self, path: str, count: int, crc: int) -> None:
        self.path = path
        self.name = os.path.basename(path)
        self.count = count
        self.crc = crc
        self._cache: dict[int, bytes] = {}
        self._verified: set[int] = set()
        self._fd = os.open(path, os.O_RDONLY)
        try:
            self._fences, self._crcs = self._load_footer()
        except BaseException:
            os.close(self._fd)
            raise

    def _load_footer(self) -> tuple[list[bytes], list[int]]:
        blocks = blocks_of(self.count)
        size = os.fstat(self._fd).st_size
        expected = HEADER_SIZE + self.count * ENTRY_SIZE + blocks * FENCE.size
        if size != expected:
            raise IndexDamagedError(self.path, 0, f"size {size} does not hold {self.count} entries")
        header = fileio.read_exact(self._fd, HEADER_SIZE, 0)
        magic, count, crc, footer_crc = RUN_HEADER.unpack_from(header)
        (header_crc,) = struct.unpack_from("<I", header, RUN_HEADER.size)
        if crc32(header[: RUN_HEADER.size]) != header_crc or magic != RUN_MAGIC:
            raise IndexDamagedError(self.path, 0, "bad run header (magic or checksum)")
        if (count, crc) != (self.count, self.crc):
            raise IndexDamagedError(self.path, 0, "run header does not match the checkpoint")
        at = HEADER_SIZE + self.count * ENTRY_SIZE
        footer = fileio.read_exact(self._fd, blocks * FENCE.size, at)
        if crc32(footer) != footer_crc:
            raise IndexDamagedError(self.path, at, "run footer checksum mismatch")
        pairs = list(FENCE.iter_unpack(footer))
        return [fence for fence, _ in pairs], [block_crc for _, block_crc in pairs]

    def _block(self, block: int) -> bytes:
        """The entries of one block, verified (and kept, for a while).

        A run never changes: a block is checksummed the first time it is read, and
        read again without it (the page cache holds it).
        """
        raw = self._cache.get(block)
        if raw is None:
            first = block * BLOCK_ENTRIES
            offset = HEADER_SIZE + first * ENTRY_SIZE
            size = min(BLOCK_ENTRIES, self.count - first) * ENTRY_SIZE
            raw = os.pread(self._fd, size, offset)
            if block not in self._verified:
                if len(raw) != size or crc32(raw) != self._crcs[block]:
                    raise IndexDamagedError(self.path, offset, "index block checksum mismatch")
                self._verified.add(block)
            if len(self._cache) >= CACHED_BLOCKS:
                self._cache.clear()
            self._cache[block] = raw
        return raw

    def _search(self, probe: bytes, *, after: bool) -> tuple[bytes, int]:
        """The block that may hold ``probe``, and the index in it of the first entry
        whose 24-byte head is above ``probe`` (``after``) or not below it."""
        block = max(bisect_right(self._fences, probe) - 1, 0)
        raw = self._block(block)
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
        """The id of the entry ``(key, version)``, or None."""
        if self.count == 0:
            return None
        prefix = key + version_bytes(version)
        raw, i = self._search(prefix, after=False)
        entry = raw[i * ENTRY_SIZE : (i + 1) * ENTRY_SIZE]
        if entry[:24] == prefix:
            return int(ENTRY.unpack(entry)[2])
        return None

    def find_key(self, key: bytes) -> bytes | None:
        """The first entry of ``key`` whatever its middle field (32 bytes), or None.

        For unique keys (the dedup index): the block is searched for the key's
        bytes at an entry boundary, in C.
        """
        if self.count == 0:
            return None
        block = max(bisect_right(self._fences, key) - 1, 0)
        raw = self._block(block)
        at = raw.find(key)
        while at > 0 and at % ENTRY_SIZE:
            at = raw.find(key, at + 1)
        if at >= 0:
            return raw[at : at + ENTRY_SIZE]
        if block + 1 < len(self._fences) and self._fences[block + 1][:16] == key:
            return self._block(block + 1)[:ENTRY_SIZE]  # it starts the next block
        return None

    def last_version(self, key: bytes) -> int | None:
        """The highest version recorded for ``key`` in this run, or None."""
        if self.count == 0:
            return None
        raw, i = self._search(key + b"\xff" * 8, after=True)
        if i == 0:  # only in block 0, when every entry is above the key
            return None
        entry_key, biased, _ = ENTRY.unpack(raw[(i - 1) * ENTRY_SIZE : i * ENTRY_SIZE])
        return biased - VERSION_BIAS if entry_key == key else None

    def versions(self, key: bytes, after: int | None = None) -> Iterator[tuple[int, int]]:
        """(version, id) of ``key``'s entries in order, those above ``after`` only if given."""
        if self.count == 0:
            return
        probe = key if after is None else key + version_bytes(after + 1)
        block = max(bisect_left(self._fences, probe) - 1, 0)
        for b in range(block, len(self._fences)):
            raw = self._block(b)
            for start in range(0, len(raw), ENTRY_SIZE):
                entry = raw[start : start + ENTRY_SIZE]
                if entry < probe:
                    continue
                entry_key, biased, nid = ENTRY.unpack(entry)
                if entry_key != key:
                    return
                yield biased - VERSION_BIAS, nid

    def chunks(self, blocks: int = CHUNK_BLOCKS) -> Iterator[list[bytes]]:
        """All entries in order, ``blocks`` blocks at a time, each block verified."""
        for block in range(0, len(self._fences), blocks):
            first = block * BLOCK_ENTRIES
            n = min(blocks * BLOCK_ENTRIES, self.count - first)
            offset = HEADER_SIZE + first * ENTRY_SIZE
            raw = fileio.read_exact(self._fd, n * ENTRY_SIZE, offset)
            for b in range(block, min(block + blocks, len(self._crcs))):
                at = (b - block) * BLOCK_BYTES
                if crc32(raw[at : at + BLOCK_BYTES]) != self._crcs[b]:
                    raise IndexDamagedError(self.path, offset + at, "index block checksum mismatch")
            yield [raw[i : i + ENTRY_SIZE] for i in range(0, len(raw), ENTRY_SIZE)]

    def entries(self) -> Iterator[bytes]:
        """All entries in order."""
        for chunk in self.chunks():
            yield from chunk

    def verify(self) -> IndexDamagedError | None:
        """Check every block, the whole run's CRC, the fences and the order: what is wrong."""
        crc, previous = 0, b""
        try:
            for i, entry in enumerate(self.entries()):
                crc = crc32(entry, crc)
                at = HEADER_SIZE + i * ENTRY_SIZE
                if entry <= previous:
                    return IndexDamagedError(self.path, at, "index run is not sorted")
                if i % BLOCK_ENTRIES == 0 and entry[:24] != self._fences[i // BLOCK_ENTRIES]:
                    return IndexDamagedError(self.path, at, "index run fence is wrong")
                previous = entry
        except IndexDamagedError as e:
            return e
        if crc != self.crc:
            return IndexDamagedError(self.path, HEADER_SIZE, "index run checksum mismatch")
        return None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)


def write_run(path: str, chunks: Iterable[list[bytes]]) -> tuple[int, int]:
    """Write sorted entries, given as lists, as a run file (durably); return (count, crc)."""
    tmp = f"{path}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except OSError as e:
        raise fileio.FileWriteError(e, "writing", path) from e
    try:
        offset = HEADER_SIZE
        count, crc = 0, 0
        footer: list[bytes] = []
        pending: list[bytes] = []  # entries of the block being filled
        for entries in chunks:
            pending.extend(entries)
            whole = len(pending) - len(pending) % BLOCK_ENTRIES
            offset, crc = _write_blocks(fd, pending[:whole], offset, crc, footer)
            del pending[:whole]
            count += len(entries)
        offset, crc = _write_blocks(fd, pending, offset, crc, footer)
        footer_bytes = b"".join(footer)
        fileio.write_all(fd, footer_bytes, offset)
        head = RUN_HEADER.pack(RUN_MAGIC, count, crc, crc32(footer_bytes))
        fileio.write_all(fd, head + struct.pack("<I", crc32(head)), 0)
        fileio.fsync(fd)
    except BaseException as e:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise fileio.FileWriteError(e, "writing", path) from e
        raise
    os.close(fd)
    try:
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise fileio.FileWriteError(e, "writing", path) from e
    return count, crc


def _write_blocks(
    fd: int, entries: list[bytes], offset: int, crc: int, footer: list[bytes]
) -> tuple[int, int]:
    """Write whole blocks (the last one may be short); add their fences to ``footer``."""
    for start in range(0, len(entries), BLOCK_ENTRIES * CHUNK_BLOCKS):
        group = entries[start : start + BLOCK_ENTRIES * CHUNK_BLOCKS]
        data = b"".join(group)
        fileio.write_all(fd, data, offset)
        offset += len(data)
        crc = crc32(data, crc)
        for b in range(0, len(group), BLOCK_ENTRIES):
            block = data[b * ENTRY_SIZE : (b + BLOCK_ENTRIES) * ENTRY_SIZE]
            footer.append(FENCE.pack(block[:24], crc32(block)))
    return offset, crc


def create_run(directory: str, number: int, chunks: Iterable[list[bytes]]) -> Run:
    """Write ``run-NNNNNNNN.idx`` in ``directory`` from sorted chunks and open it."""
    path = os.path.join(directory, f"run-{number:08d}.idx")
    count, crc = write_run(path, chunks)
    return Run(path, count, crc)


def merge_entries(a: Run, b: Run, blocks: int = CHUNK_BLOCKS) -> Iterator[list[bytes]]:
    """The entries of two runs in order, as lists, merged a chunk at a time.

    Each step merges the two buffered chunks (``sorted`` of two sorted runs is
    a linear merge in C) and emits what is at or below the smaller of the two
    chunks' last entries: nothing unread can come before it. Memory stays at a
    few chunks whatever the sizes of the runs.
    """
    chunks_a, chunks_b = a.chunks(blocks), b.chunks(blocks)
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
