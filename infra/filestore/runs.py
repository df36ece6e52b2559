"""Sorted runs: immutable files of fixed-width entries in compressed, checksummed blocks.

A run (docs/FORMAT.md, "Index")::

    run    := header block{ceil(count / block_entries)} footer
    header := "EFI3" count:u64 crc:u32 footer_crc:u32 data_end:u64
              key_bytes:u8 words:u8 deltas:u8 0:u8 block_entries:u32 header_crc:u32  (40 bytes)
    block  := zstd frame of the block's entries by column (``runcodec``)
    footer := (fence:(width - 8) length:u32 block_crc:u32){ceil(count / block_entries)}

An entry is ``key_bytes`` of opaque key then ``words`` big-endian u64 fields
(``width`` bytes); the store index's is ``key:16 (version + 2**63):u64be
id:u64be``. Byte order of the entries is their sort order. ``crc`` covers all
entries (uncompressed, as a checkpoint names them); ``block_crc`` one block's
compressed bytes, ``fence`` is the first ``width - 8`` bytes of that block. A
lookup bisects the fences (read once, with the footer) and reads one block,
whose checksum is verified before it is decompressed and any answer taken
from it: a damaged run raises ``IndexDamagedError`` naming the file and
offset, never a wrong answer. Runs of the older ``EFI2`` form (32-byte entries
stored as they are, 256 a block) are still read. Runs are written once,
merged a few of similar size at a time (``push_run``), and read with
``pread``: the store's index (``index.py``) and the dedup index (``dedup.py``)
are both made of them.
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from eventfold.infra import fileio
from eventfold.infra.filestore import sortedrows
from eventfold.infra.filestore.format import crc32
from eventfold.infra.filestore.runcodec import (
    BlockDecodeError,
    Columns,
    decompress,
    encode_block,
    rows_of,
)

ENTRY = struct.Struct(">16sQQ")
ENTRY_SIZE = ENTRY.size
VERSION_BIAS = 1 << 63
RUN_MAGIC = b"EFI3"
RUN_HEADER = struct.Struct("<4sQIIQBBBxI")  # magic, count, CRCs, data end, layout
HEADER_SIZE = RUN_HEADER.size + 4  # and the header's own CRC
OLD_MAGIC = b"EFI2"  # 32-byte entries as they are, 256 a block (read, never written)
OLD_HEADER = struct.Struct("<4sQII")
OLD_HEADER_SIZE = OLD_HEADER.size + 4
OLD_BLOCK_ENTRIES = 256
BLOCK_ENTRIES = 512  # entries per block of the store index: one pread and one zstd frame
CHUNK_BLOCKS = 16  # blocks read at a time when streaming a run
CACHED_BLOCKS = 64  # decoded blocks a run keeps (hot keys are looked up again and again)
# Keys whose last version the runs of a process keep, in all, in tables: a run makes one
# once it has been asked for as many keys as it has blocks (lookups spread over the whole
# run: many streams); a run whose keys do not fit keeps none and reads a block a lookup.
# As index.KNOWN_MAX: about 30 MB.
TABLE_KEYS = 1 << 18
_tables = [0]  # keys held by the tables of the runs open in this process
_tables_lock = threading.Lock()
MERGE_WIDTH = 4  # runs of similar size merged at once
# A run is made durable as it is written, every so many bytes: a long merge then never
# leaves hundreds of MB waiting to be written, for the log writer's next fsync to wait on.
SYNC_BYTES = 16 << 20
Chunk = list[bytes] | bytes  # sorted entries: a list of them, or laid end to end


@dataclass(frozen=True)
class Layout:
    """What an entry is made of, and how a run of them is cut into blocks."""

    key_bytes: int  # opaque key bytes first (0 or more)
    words: int  # then this many big-endian u64 fields
    deltas: int  # bit w: word w is stored as differences between neighbours
    block_entries: int = BLOCK_ENTRIES

    @property
    def width(self) -> int:
        return self.key_bytes + 8 * self.words


# key, version, id: ids as differences (they grow within a key); versions as they are,
# so that a lookup reads one without decoding the column
STORE_LAYOUT = Layout(16, 2, 0b10)
_FOOTER_TAIL = struct.Struct("<II")  # a block's compressed length and CRC, after its fence


class IndexDamagedError(ValueError):
    """A persisted index failed a check: its answers cannot be trusted (rebuild it)."""

    def __init__(self, path: str, offset: int, reason: str) -> None:
        self.path, self.offset, self.reason = path, offset, reason
        super().__init__(f"{path}: byte offset {offset}: {reason}")


def version_bytes(version: int) -> bytes:
    return struct.pack(">Q", version + VERSION_BIAS)


class Run:
    """One immutable sorted run file, read with pread and verified per block.

    Nothing is memory-mapped: random lookups over a mapping would leave the
    whole index resident. ``IndexDamagedError`` when the file is not the run the
    checkpoint names (size, header), when a block read fails its checksum or
    does not decode.
    """

    def __init__(self, path: str, count: int, crc: int) -> None:
        self.path = path
        self.name = os.path.basename(path)
        self.count = count
        self.crc = crc
        self._cache: dict[int, bytes] = {}  # EFI2: verified blocks
        self._columns_cache: dict[int, Columns] = {}  # EFI3: verified, decompressed blocks
        self._rows_cache: dict[int, bytes] = {}  # EFI3: blocks rebuilt as entries
        self._as_is = False  # blocks stored uncompressed (EFI2)
        self._last_versions: dict[bytes, int] | None = None  # EFI3: see ``last_version``
        self._lookups = 0  # ``last_version`` calls before the table: -1 once it is refused
        self._fd = os.open(path, os.O_RDONLY)
        try:
            self._load()
        except BaseException:
            os.close(self._fd)
            raise

    # -- opening -----------------------------------------------------------

    def _load(self) -> None:
        size = os.fstat(self._fd).st_size
        head = fileio.read_exact(self._fd, HEADER_SIZE, 0)
        if head[:4] == OLD_MAGIC:
            self._load_old(size, head[:OLD_HEADER_SIZE])
            return
        if len(head) < HEADER_SIZE:
            raise IndexDamagedError(self.path, 0, f"size {size} holds no run header")
        magic, count, crc, footer_crc, data_end, key_bytes, words, deltas, per_block = (
            RUN_HEADER.unpack_from(head)
        )
        (header_crc,) = struct.unpack_from("<I", head, RUN_HEADER.size)
        if crc32(head[: RUN_HEADER.size]) != header_crc or magic != RUN_MAGIC or not per_block:
            raise IndexDamagedError(self.path, 0, "bad run header (magic or checksum)")
        if (count, crc) != (self.count, self.crc):
            raise IndexDamagedError(self.path, 0, "run header does not match the checkpoint")
        self.layout = Layout(key_bytes, words, deltas, per_block)
        self.width = self.layout.width
        self.per_block = per_block
        record = self.width - 8 + _FOOTER_TAIL.size
        blocks = -(-count // per_block)
        if size != data_end + blocks * record or data_end < HEADER_SIZE:
            raise IndexDamagedError(self.path, 0, f"size {size} does not hold {count} entries")
        footer = fileio.read_exact(self._fd, blocks * record, data_end)
        if crc32(footer) != footer_crc:
            raise IndexDamagedError(self.path, data_end, "run footer checksum mismatch")
        fence = self.width - 8
        self._fences = [footer[i : i + fence] for i in range(0, len(footer), record)]
        tails = [_FOOTER_TAIL.unpack_from(footer, i + fence) for i in range(0, len(footer), record)]
        self._lengths = [length for length, _ in tails]
        self._crcs = [block_crc for _, block_crc in tails]
        self._offsets = [HEADER_SIZE]
        for length in self._lengths:
            self._offsets.append(self._offsets[-1] + length)
        if self._offsets[-1] != data_end:
            raise IndexDamagedError(self.path, data_end, "run footer does not add up")

    def _load_old(self, size: int, head: bytes) -> None:
        """An ``EFI2`` run: 32-byte entries as they are, in blocks of 256."""
        self.layout = Layout(16, 2, 0, OLD_BLOCK_ENTRIES)
        self.width, self.per_block = ENTRY_SIZE, OLD_BLOCK_ENTRIES
        self._as_is = True
        blocks = -(-self.count // OLD_BLOCK_ENTRIES)
        fence = struct.Struct("<24sI")
        data_end = OLD_HEADER_SIZE + self.count * ENTRY_SIZE
        if size != data_end + blocks * fence.size or len(head) < OLD_HEADER_SIZE:
            raise IndexDamagedError(self.path, 0, f"size {size} does not hold {self.count} entries")
        _, count, crc, footer_crc = OLD_HEADER.unpack_from(head)
        (header_crc,) = struct.unpack_from("<I", head, OLD_HEADER.size)
        if crc32(head[: OLD_HEADER.size]) != header_crc:
            raise IndexDamagedError(self.path, 0, "bad run header (magic or checksum)")
        if (count, crc) != (self.count, self.crc):
            raise IndexDamagedError(self.path, 0, "run header does not match the checkpoint")
        footer = fileio.read_exact(self._fd, blocks * fence.size, data_end)
        if crc32(footer) != footer_crc:
            raise IndexDamagedError(self.path, data_end, "run footer checksum mismatch")
        pairs = list(fence.iter_unpack(footer))
        self._fences = [f for f, _ in pairs]
        self._crcs = [c for _, c in pairs]
        self._offsets = [
            OLD_HEADER_SIZE + b * OLD_BLOCK_ENTRIES * ENTRY_SIZE for b in range(blocks)
        ]
        self._offsets.append(data_end)
        self._lengths = [b - a for a, b in zip(self._offsets, self._offsets[1:], strict=False)]

    # -- blocks --------------------------------------------------------------

    def _check(self, block: int, data: bytes, offset: int) -> None:
        if len(data) != self._lengths[block] or crc32(data) != self._crcs[block]:
            raise IndexDamagedError(self.path, offset, "index block checksum mismatch")

    def _decompress(self, block: int, data: bytes, offset: int) -> Columns:
        """The columns of block ``block`` from its stored bytes, checked (EFI3)."""
        self._check(block, data, offset)
        n = min(self.per_block, self.count - block * self.per_block)
        layout = self.layout
        try:
            raw = decompress(data, n, layout.key_bytes, layout.words)
        except BlockDecodeError as e:
            raise IndexDamagedError(self.path, offset, f"index block unreadable: {e}") from e
        return Columns(raw, n, layout.key_bytes, layout.words)

    def _read_columns(self, block: int) -> Columns:
        """One block by column, read and verified (not kept)."""
        offset = self._offsets[block]
        return self._decompress(block, os.pread(self._fd, self._lengths[block], offset), offset)

    def _columns(self, block: int) -> Columns:
        """One block by column, verified (and kept, for a while)."""
        columns = self._columns_cache.get(block)
        if columns is None:
            columns = self._read_columns(block)
            if len(self._columns_cache) >= CACHED_BLOCKS:
                self._columns_cache.clear()
            self._columns_cache[block] = columns
        return columns

    def _rows(self, columns: Columns) -> bytes:
        return bytes(rows_of(columns.raw, columns.n, columns.key_bytes, columns.words))

    def _block(self, block: int) -> bytes:
        """The entries of one block, verified (and kept, for a while)."""
        cache = self._cache if self._as_is else self._rows_cache
        raw = cache.get(block)
        if raw is None:
            if self._as_is:
                offset = self._offsets[block]
                raw = os.pread(self._fd, self._lengths[block], offset)
                self._check(block, raw, offset)
            else:
                raw = self._rows(self._columns(block))
            if len(cache) >= CACHED_BLOCKS:
                cache.clear()
            cache[block] = raw
        return raw

    # -- lookups ---------------------------------------------------------------

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

    def _key_range(self, columns: Columns, key: bytes) -> tuple[int, int] | None:
        """The first and last index of ``key``'s entries in a block, searched in C."""
        keys, size = columns.keys(), len(key)
        first = keys.find(key)
        while first > 0 and first % size:
            first = keys.find(key, first + 1)
        if first < 0:
            return None
        last = keys.rfind(key)
        while last % size:
            last = keys.rfind(key, 0, last + size - 1)
        return first // size, last // size

    def find(self, key: bytes, version: int) -> int | None:
        """The id of the entry ``(key, version)``, or None (store index runs)."""
        if self.count == 0:
            return None
        prefix = key + version_bytes(version)
        if not self._as_is:
            columns = self._columns(max(bisect_right(self._fences, prefix) - 1, 0))
            found = self._key_range(columns, key)
            if found is None:
                return None
            lo, hi = found[0], found[1] + 1
            biased = version + VERSION_BIAS
            while lo < hi:  # versions grow within a key
                mid = (lo + hi) // 2
                if columns.value(0, mid) < biased:
                    lo = mid + 1
                else:
                    hi = mid
            if lo <= found[1] and columns.value(0, lo) == biased:
                return columns.value(1, lo)
            return None
        raw, i = self._search(prefix, after=False)
        entry = raw[i * ENTRY_SIZE : (i + 1) * ENTRY_SIZE]
        if entry[:24] == prefix:
            return int(ENTRY.unpack(entry)[2])
        return None

    def find_key(self, key: bytes) -> bytes | None:
        """The first entry that starts with ``key``, or None."""
        return next(self.starting_with(key), None)

    def starting_with(self, prefix: bytes) -> Iterator[bytes]:
        """The entries that start with ``prefix``, in order.

        The first block that may hold one is searched for the prefix at an entry
        boundary, in C (in its key column, when the prefix is a whole key); the
        following entries are read while they match.
        """
        if self.count == 0:
            return
        if self._as_is or len(prefix) != (self.layout.key_bytes or 8):
            yield from self._rows_starting_with(prefix)
            return
        block = max(bisect_left(self._fences, prefix) - 1, 0)
        while True:
            columns = self._columns(block)
            found = self._key_range(columns, prefix)
            if found is not None:
                for i in range(found[0], found[1] + 1):
                    yield _entry(columns, i)
                if found[1] + 1 < columns.n:
                    return
            block += 1
            if block >= len(self._fences) or not self._fences[block].startswith(prefix):
                return

    def _rows_starting_with(self, prefix: bytes) -> Iterator[bytes]:
        width = self.width
        block = max(bisect_left(self._fences, prefix) - 1, 0)
        raw = self._block(block)
        at = raw.find(prefix)
        while at > 0 and at % width:
            at = raw.find(prefix, at + 1)
        if at < 0:  # none here: it may start the next block
            block, at = block + 1, 0
            if block >= len(self._fences) or not self._fences[block].startswith(prefix):
                return
            raw = self._block(block)
        while True:
            while at < len(raw):
                entry = raw[at : at + width]
                if not entry.startswith(prefix):
                    return
                yield entry
                at += width
            block, at = block + 1, 0
            if block >= len(self._fences) or not self._fences[block].startswith(prefix):
                return
            raw = self._block(block)

    def last_version(self, key: bytes) -> int | None:
        """The highest version recorded for ``key`` in this run, or None."""
        if self.count == 0:
            return None
        if not self._as_is:
            table = self._last_versions
            if table is None and self._lookups >= 0:
                self._lookups += 1
                if self._lookups >= len(self._lengths):
                    table = self._last_versions = self._table()
                    self._lookups = -1
            if table is not None:
                return table.get(key)
            probe = key + b"\xff" * 8
            columns = self._columns(max(bisect_right(self._fences, probe) - 1, 0))
            found = self._key_range(columns, key)
            return None if found is None else columns.value(0, found[1]) - VERSION_BIAS
        raw, i = self._search(key + b"\xff" * 8, after=True)
        if i == 0:  # only in block 0, when every entry is above the key
            return None
        entry_key, biased, _ = ENTRY.unpack(raw[(i - 1) * ENTRY_SIZE : i * ENTRY_SIZE])
        return biased - VERSION_BIAS if entry_key == key else None

    def _table(self) -> dict[bytes, int] | None:
        """Every key's last version, from each block read once (in order, so a key whose
        entries span blocks ends with its highest); None if the process's tables would
        hold more than ``TABLE_KEYS`` keys with it."""
        size = self.layout.key_bytes
        if not size:
            return None
        table: dict[bytes, int] = {}
        for block in range(len(self._lengths)):
            columns = self._read_columns(block)  # not kept: each block is read once here
            keys = columns.keys()
            last = {keys[at : at + size]: i for i, at in enumerate(range(0, len(keys), size))}
            value = columns.value
            table.update((key, value(0, i) - VERSION_BIAS) for key, i in last.items())
            if _tables[0] + len(table) > TABLE_KEYS:
                return None
        with _tables_lock:
            if _tables[0] + len(table) > TABLE_KEYS:
                return None
            _tables[0] += len(table)
        return table

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

    # -- streaming ---------------------------------------------------------------

    def chunks(self, blocks: int = CHUNK_BLOCKS) -> Iterator[list[bytes]]:
        """All entries in order, ``blocks`` blocks at a time, each block verified."""
        width = self.width
        for joined in self.row_chunks(blocks):
            yield [joined[i : i + width] for i in range(0, len(joined), width)]

    def row_chunks(self, blocks: int = CHUNK_BLOCKS) -> Iterator[bytes]:
        """``chunks``, each laid end to end."""
        for first in range(0, len(self._fences), blocks):
            last = min(first + blocks, len(self._fences))
            start = self._offsets[first]
            data = fileio.read_exact(self._fd, self._offsets[last] - start, start)
            rows: list[bytes] = []
            for b in range(first, last):
                at, offset = self._offsets[b] - start, self._offsets[b]
                raw = data[at : at + self._lengths[b]]
                if self._as_is:
                    self._check(b, raw, offset)
                    rows.append(raw)
                else:
                    rows.append(self._rows(self._decompress(b, raw, offset)))
            yield b"".join(rows)

    def entries(self) -> Iterator[bytes]:
        """All entries in order."""
        for chunk in self.chunks():
            yield from chunk

    def verify(self) -> IndexDamagedError | None:
        """Check every block, the whole run's CRC, the fences and the order: what is wrong."""
        crc, previous, fence = 0, b"", self.width - 8
        try:
            for i, entry in enumerate(self.entries()):
                crc = crc32(entry, crc)
                block, within = divmod(i, self.per_block)
                at = self._offsets[block]
                if entry <= previous:
                    return IndexDamagedError(self.path, at, "index run is not sorted")
                if within == 0 and entry[:fence] != self._fences[block]:
                    return IndexDamagedError(self.path, at, "index run fence is wrong")
                previous = entry
        except IndexDamagedError as e:
            return e
        if crc != self.crc:
            return IndexDamagedError(self.path, HEADER_SIZE, "index run checksum mismatch")
        return None

    def close(self) -> None:
        table, self._last_versions = self._last_versions, None
        if table is not None:
            with _tables_lock:
                _tables[0] -= len(table)
        with contextlib.suppress(OSError):
            os.close(self._fd)


def _entry(columns: Columns, i: int) -> bytes:
    """Entry ``i`` of a block, from its columns."""
    at, size = columns.words + i * columns.key_bytes, columns.key_bytes
    words = [columns.value(w, i).to_bytes(8) for w in range(columns.words)]
    return b"".join([columns.raw[at : at + size], *words])


def write_run(path: str, chunks: Iterable[Chunk], layout: Layout = STORE_LAYOUT) -> tuple[int, int]:
    """Write sorted entries as a run file (durably: an fsync every ``SYNC_BYTES`` and at
    the end); return (count, crc). A chunk is a list of entries or, as
    ``sortedrows.rows`` gives them, entries laid end to end."""
    tmp = f"{path}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except OSError as e:
        raise fileio.FileWriteError(e, "writing", path) from e
    try:
        writer = _BlockWriter(fd, layout)
        block = layout.block_entries * layout.width
        pending = b""  # entries of the block being filled
        synced = 0
        for chunk in chunks:
            pending += chunk if isinstance(chunk, bytes) else b"".join(chunk)
            whole = len(pending) - len(pending) % block
            writer.write(pending[:whole])
            pending = pending[whole:]
            if writer.offset - synced >= SYNC_BYTES:
                fileio.fsync(fd)
                synced = writer.offset
        writer.write(pending)
        footer = b"".join(writer.footer)
        fileio.write_all(fd, footer, writer.offset)
        head = RUN_HEADER.pack(
            RUN_MAGIC,
            writer.count,
            writer.crc,
            crc32(footer),
            writer.offset,
            layout.key_bytes,
            layout.words,
            layout.deltas,
            layout.block_entries,
        )
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
    return writer.count, writer.crc


class _BlockWriter:
    """Compresses whole blocks (the last one may be short) and keeps their footer records."""

    def __init__(self, fd: int, layout: Layout) -> None:
        self.fd, self.layout = fd, layout
        self.offset, self.count, self.crc = HEADER_SIZE, 0, 0
        self.footer: list[bytes] = []

    def write(self, rows: bytes) -> None:
        """Write entries laid end to end (whole blocks, but for the run's last)."""
        layout, per_block = self.layout, self.layout.block_entries
        fence = layout.width - 8
        span = per_block * CHUNK_BLOCKS * layout.width
        for start in range(0, len(rows), span):
            data = rows[start : start + span]
            self.crc = crc32(data, self.crc)
            frames: list[bytes] = []
            step = per_block * layout.width
            for at in range(0, len(data), step):
                block = data[at : at + step]
                n = len(block) // layout.width
                frame = encode_block(block, n, layout.key_bytes, layout.words, layout.deltas)
                frames.append(frame)
                self.footer.append(block[:fence] + _FOOTER_TAIL.pack(len(frame), crc32(frame)))
            out = b"".join(frames)
            fileio.write_all(self.fd, out, self.offset)
            self.offset += len(out)
            self.count += len(data) // layout.width


def create_run(
    directory: str, number: int, chunks: Iterable[Chunk], layout: Layout = STORE_LAYOUT
) -> Run:
    """Write ``run-NNNNNNNN.idx`` in ``directory`` from sorted chunks and open it."""
    path = os.path.join(directory, f"run-{number:08d}.idx")
    count, crc = write_run(path, chunks, layout)
    return Run(path, count, crc)


def merge_runs(runs: list[Run], blocks: int = CHUNK_BLOCKS) -> Iterator[bytes]:
    """The entries of ``runs`` (of one layout) in order, laid end to end, merged a chunk
    at a time.

    Each step takes, from every run's buffered chunk, what is at or below the
    smallest of the buffers' last entries (nothing unread can come before it)
    and sorts it: every entry is big-endian words, so the runs' pieces are
    columns to ``sortedrows.rows``, with no object an entry. Memory stays at a
    few chunks per run whatever the sizes of the runs.
    """
    np = sortedrows.load()
    words = runs[0].width // 8 if runs else 1
    streams = [run.row_chunks(blocks) for run in runs]

    def take(stream: Iterator[bytes]) -> Any:
        rows = next(stream, b"")
        return sortedrows.words_of(rows, len(rows) // (8 * words), words)

    buffers = [take(stream) for stream in streams]
    while True:
        live = [i for i, buffer in enumerate(buffers) if len(buffer)]
        if len(live) <= 1:
            break
        cut = min(tuple(buffers[i][-1].tolist()) for i in live)
        pieces = []
        for i in live:
            buffer = buffers[i]
            at_most = buffer[:, -1] <= np.uint64(cut[-1])  # buffer's rows <= cut, by words
            for w in range(words - 2, -1, -1):
                column, value = buffer[:, w], np.uint64(cut[w])
                at_most = (column < value) | ((column == value) & at_most)
            j = int(np.count_nonzero(at_most))  # a prefix: the buffer is sorted
            pieces.append(buffer[:j])
            buffers[i] = buffer[j:] if j < len(buffer) else take(streams[i])
        merged = np.concatenate(pieces)
        yield sortedrows.rows([merged[:, w] for w in range(words)], sort=True)
    for i, buffer in enumerate(buffers):
        if len(buffer):
            yield sortedrows.rows([buffer[:, w] for w in range(words)], sort=False)
            yield from streams[i]


def choose_merge(runs: list[Run]) -> int:
    """How many of the newest runs the merge policy merges now (0: none).

    The newest ``MERGE_WIDTH`` runs when they are within a factor of two of one
    another in size (a size class is full): each entry is rewritten about
    log_4(total / flush) times, half as often as merging pairs, with at most
    ``MERGE_WIDTH - 1`` runs of each size class, a few in all. Else the newest
    two when the older is less than half the size of the newer (the short last
    flush of an ingest joins the run after it), so short runs cannot pile up.
    """
    if len(runs) < 2:
        return 0
    sizes = [max(r.count, 1) for r in runs[-MERGE_WIDTH:]]
    if len(sizes) == MERGE_WIDTH and max(sizes) <= 2 * min(sizes):
        return MERGE_WIDTH
    if 2 * sizes[-2] < sizes[-1]:
        return 2
    return 0


def closing_merge(runs: Sequence[Run]) -> tuple[int, int]:
    """The merge to make when an index closes, as (end, width): ``runs[end - width:end]``
    (width 0: none). What ``choose_merge`` asks for; else a full size class just under
    the newest run (a merge that lagged behind the last, short flush)."""
    width = choose_merge(list(runs))
    if width or len(runs) <= MERGE_WIDTH:
        return len(runs), width
    under = choose_merge(list(runs[:-1]))
    return len(runs) - 1, under if under == MERGE_WIDTH else 0


def push_run(runs: list[Run], new: Run, make_run: Callable[[Iterable[Chunk]], Run]) -> list[Run]:
    """Append ``new`` and merge as ``choose_merge`` says, in this process, again while
    it asks for more; return the obsolete runs.

    The caller deletes the obsolete runs once a checkpoint no longer names
    them. (The indexes' writers merge in a worker process: ``merging.py``.)
    """
    runs.append(new)
    obsolete: list[Run] = []
    while width := choose_merge(runs):
        tail = runs[-width:]
        del runs[-width:]
        runs.append(make_run(merge_runs(tail)))
        obsolete += tail
    return obsolete
