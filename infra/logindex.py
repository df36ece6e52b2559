"""The persisted index of one log: it trails the log and is rebuilt from it.

Two structures, both covering notification ids ``1..covered``:

- ``index/offsets``: one little-endian u64 per notification id, the packed
  position of that event's record in the log;
- ``index/run-NNNNNNNN.idx``: sorted runs of 32-byte entries
  ``key:16 (version + 2**63):u64be id:u64be`` (``key`` is BLAKE2b-128 of
  ``str(originator_id)``), so byte order is (key, version) order; a lookup
  bisects in-memory fence keys, then reads one block. Runs are merged like a
  binary counter, so there are at most log2(events / interval) + 1 of them.

``index/CHECKPOINT`` names what is covered and where the log stood. Events
after the checkpoint live in a bounded in-memory table until the next flush.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator
from hashlib import blake2b
from uuid import UUID

from eventfold.infra import fileio
from eventfold.infra.logformat import crc32

ENTRY = struct.Struct(">16sQQ")
ENTRY_SIZE = ENTRY.size
VERSION_BIAS = 1 << 63
RUN_MAGIC = b"EFIX"
RUN_HEADER = struct.Struct("<4sQI")  # magic, entry count, CRC-32 of the entries
OFFSET = struct.Struct("<Q")
CHECKPOINT_FORMAT = 1
ENTRY_READ_CHUNK = 1 << 18  # bytes read at a time when streaming a run
BLOCK_ENTRIES = 256  # entries per fence block: one 8 KiB read per lookup and run


def originator_key(originator_id: UUID | str) -> bytes:
    """The 16-byte index key of an originator id (a UUID and its string agree)."""
    return blake2b(str(originator_id).encode("utf-8"), digest_size=16).digest()


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


class LogIndex:
    """The persisted index plus the in-memory table of what follows it."""

    def __init__(self, log_dir: str) -> None:
        self.dir = os.path.join(log_dir, "index")
        self.checkpoint_path = os.path.join(self.dir, "CHECKPOINT")
        self.offsets_path = os.path.join(self.dir, "offsets")
        self.runs: list[Run] = []
        self._offsets_fd: int | None = None
        self._reset_state()

    def _reset_state(self) -> None:
        self.covered = 0
        self.last_commit: int | None = None
        self.end: int | None = None
        self.tracking: dict[str, int] = {}
        self.next_run = 1
        self.mem_offsets = array("Q")
        self.mem_keys: dict[bytes, dict[int, int]] = {}
        self.mem_max: dict[bytes, int] = {}

    @property
    def mem_size(self) -> int:
        return len(self.mem_offsets)

    # -- loading -----------------------------------------------------------

    def exists(self) -> bool:
        return os.path.exists(self.dir) and bool(os.listdir(self.dir))

    def load(self) -> str | None:
        """Load the checkpoint and its files; return why it is unusable, or None."""
        self.close()
        self._reset_state()
        try:
            with open(self.checkpoint_path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return "no index checkpoint" if self.exists() else None
        try:
            doc_bytes, _, crc_hex = raw.rstrip(b"\n").rpartition(b"\n")
            if int(crc_hex, 16) != crc32(doc_bytes):
                return "index checkpoint checksum mismatch"
            doc = json.loads(doc_bytes)
            if doc["format"] != CHECKPOINT_FORMAT:
                return f"unknown index checkpoint format {doc['format']!r}"
            covered = int(doc["covered"])
            runs = [
                Run(os.path.join(self.dir, r["name"]), int(r["count"]), int(r["crc"]))
                for r in doc["runs"]
            ]
            self.runs = runs
            if sum(r.count for r in runs) != covered:
                return "index runs do not add up to the checkpoint"
            self._offsets_fd = os.open(self.offsets_path, os.O_RDWR | os.O_CREAT)
            if os.fstat(self._offsets_fd).st_size < covered * OFFSET.size:
                return "index offsets file is shorter than the checkpoint"
        except (ValueError, KeyError, TypeError, OSError) as e:
            return f"index checkpoint unusable ({e})"
        self.covered = covered
        self.last_commit = doc["last_commit"]
        self.end = doc["end"]
        self.tracking = {str(k): int(v) for k, v in doc["tracking"].items()}
        self.next_run = int(doc["next_run"])
        return None

    def reset(self) -> None:
        """Forget the persisted index (in memory): everything is rescanned."""
        self.close()
        self._reset_state()

    def discard_files(self) -> None:
        """Remove the persisted index so that a rebuild starts clean (writer only)."""
        self.reset()
        if os.path.isdir(self.dir):
            for name in os.listdir(self.dir):
                os.unlink(os.path.join(self.dir, name))
            fileio.fsync_dir(self.dir)

    def reload_if_newer(self) -> bool:
        """Reader side: adopt a checkpoint that a writer flushed since we looked.

        Returns False when the index had to be reset (the caller rescans).
        """
        try:
            with open(self.checkpoint_path, "rb") as f:
                doc_bytes, _, _ = f.read().rstrip(b"\n").rpartition(b"\n")
            newer = int(json.loads(doc_bytes)["covered"])
        except (OSError, ValueError, KeyError):
            return True
        if newer <= self.covered or newer > self.covered + self.mem_size:
            return True
        kept = sorted(
            (nid, key, version)
            for key, versions in self.mem_keys.items()
            for version, nid in versions.items()
            if nid > newer
        )
        kept_offsets = self.mem_offsets[newer - self.covered :]
        if self.load() is not None or self.covered != newer:
            self.reset()
            return False
        for i, (nid, key, version) in enumerate(kept):
            self.add(nid, key, version, kept_offsets[i])
        return True

    # -- the in-memory table ----------------------------------------------

    def add(self, nid: int, key: bytes, version: int, position: int) -> None:
        self.add_many(nid, [key], [version], [position])

    def add_many(
        self, first: int, keys: list[bytes], versions: list[int], positions: list[int]
    ) -> None:
        """Index events ``first, first + 1, ...`` (the next ids) in memory."""
        assert first == self.covered + len(self.mem_offsets) + 1, first
        self.mem_offsets.extend(positions)
        mem_keys, mem_max = self.mem_keys, self.mem_max
        nid = first
        for key, version in zip(keys, versions, strict=True):
            versions_of = mem_keys.get(key)
            if versions_of is None:
                versions_of = mem_keys[key] = {}
            versions_of[version] = nid
            if version > mem_max.get(key, version - 1):
                mem_max[key] = version
            nid += 1

    # -- lookups -----------------------------------------------------------

    def position_of(self, nid: int) -> int:
        return self.positions(nid, nid)[0]

    def positions(self, first: int, last: int) -> list[int]:
        """Positions of the events ``first..last`` (all must exist)."""
        result: list[int] = []
        if first <= self.covered:
            upto = min(last, self.covered)
            assert self._offsets_fd is not None
            raw = fileio.read_exact(
                self._offsets_fd, (upto - first + 1) * OFFSET.size, (first - 1) * 8
            )
            result.extend(array("Q", raw))
            first = upto + 1
        if first <= last:
            lo = first - self.covered - 1
            result.extend(self.mem_offsets[lo : last - self.covered])
        return result

    def find(self, key: bytes, version: int) -> int | None:
        mem = self.mem_keys.get(key)
        if mem is not None and version in mem:
            return mem[version]
        for run in self.runs:
            nid = run.find(key, version)
            if nid is not None:
                return nid
        return None

    def max_version(self, key: bytes) -> int | None:
        """The highest version indexed for ``key`` (persisted or in memory), or None."""
        found = [v for v in (run.last_version(key) for run in self.runs) if v is not None]
        if key in self.mem_max:
            found.append(self.mem_max[key])
        return max(found, default=None)

    def versions(self, key: bytes) -> list[tuple[int, int]]:
        found: list[tuple[int, int]] = []
        for run in self.runs:
            found.extend(run.versions(key))
        found.extend(self.mem_keys.get(key, {}).items())
        found.sort()
        return found

    # -- flushing (writer only) ---------------------------------------------

    def flush(self, last_commit: int | None, end: int, tracking: dict[str, int]) -> None:
        """Persist the in-memory table: offsets, a new run, merges, checkpoint."""
        os.makedirs(self.dir, exist_ok=True)
        if self._offsets_fd is None:
            self._offsets_fd = os.open(self.offsets_path, os.O_RDWR | os.O_CREAT, 0o644)
        obsolete: list[Run] = []
        if self.mem_offsets:
            fileio.write_all(
                self._offsets_fd, self.mem_offsets.tobytes(), self.covered * 8
            )
            fileio.fsync(self._offsets_fd)
            entries = sorted(
                ENTRY.pack(key, version + VERSION_BIAS, nid)
                for key, versions in self.mem_keys.items()
                for version, nid in versions.items()
            )
            obsolete = push_run(self.runs, self._new_run([entries]), self._new_run)
        fileio.fsync_dir(self.dir)
        covered = self.covered + len(self.mem_offsets)
        doc = {
            "format": CHECKPOINT_FORMAT,
            "covered": covered,
            "last_commit": last_commit,
            "end": end,
            "tracking": tracking,
            "next_run": self.next_run,
            "runs": [{"name": r.name, "count": r.count, "crc": r.crc} for r in self.runs],
        }
        doc_bytes = json.dumps(doc, sort_keys=True).encode("utf-8")
        fileio.atomic_write(
            self.checkpoint_path, doc_bytes + b"\n" + b"%08x\n" % crc32(doc_bytes)
        )
        for run in obsolete:
            run.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(run.path)
        self.covered = covered
        self.last_commit, self.end, self.tracking = last_commit, end, dict(tracking)
        self.mem_offsets = array("Q")
        self.mem_keys = {}
        self.mem_max = {}

    def _new_run(self, chunks: Iterable[list[bytes]]) -> Run:
        self.next_run += 1
        return create_run(self.dir, self.next_run - 1, chunks)

    def close(self) -> None:
        for run in self.runs:
            run.close()
        self.runs = []
        if self._offsets_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._offsets_fd)
            self._offsets_fd = None
