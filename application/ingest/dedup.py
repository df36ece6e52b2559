"""The dedup index: source event id -> its first recording (notification id, content digest).

It is derived from the event store (every ``Category.Recorded`` event names
its source id) and trails it: ``CHECKPOINT`` says up to which notification id
the persisted part covers, and ``catch_up`` adds what the store holds beyond.
A missing or damaged index is rebuilt from the store, never trusted: the
checkpoint and the filter are checksummed, each block of a run is verified
before it answers (``IndexDamagedError`` otherwise).

Each id keeps the 8-byte digest of its first recording's content
(``recorded.content_digest``), so that a repeated id with the same content is
decided without reading the store.

Memory is bounded by design (see docs/INGEST.md): keys are BLAKE2b-128 of the
id; the newest ids live in a dict capped at ``flush_every``; older ones in
sorted runs on disk (32 bytes an id, the store index's run format) read with
one ``pread`` per run and lookup; one Bloom filter over all persisted keys
(12 to 24 bits an id, 4 probes) answers "never seen" for almost every new id
without touching the disk.
"""

from __future__ import annotations

import contextlib
import os
import struct
import time
import zlib
from collections.abc import Iterable
from hashlib import blake2b

from eventfold.infra import fileio
from eventfold.infra.errors import StoreBusyError
from eventfold.infra.filestore.checkpoint import read_checkpoint, write_checkpoint
from eventfold.infra.filestore.runs import IndexDamagedError, Run, create_run, push_run

FORMAT = 2  # entries key:16 digest:8 id:u64be (1: without the digest; rebuilt)
ENTRY = struct.Struct(">16s8sQ")
MIN_BLOOM_BITS = 1 << 23
MAX_RESERVED = 1 << 26  # ids a filter is sized for ahead of time (64 MiB of bits at most)
BITS_PER_KEY_MIN = 10  # below this the filter is rebuilt larger: 10 to 20 bits an id
PROBES = struct.Struct("<4I")  # a key's four probes: its 32-bit little-endian words


_ID_HASH = blake2b(digest_size=16, person=b"eventfold-id")


def id_key(event_id: str) -> bytes:
    """The 16-byte key of a source event id: its personalised BLAKE2b-128."""
    h = _ID_HASH.copy()  # cheaper than setting the parameters up again
    h.update(event_id.encode("utf-8"))
    return h.digest()


class IndexBusyError(StoreBusyError):
    """Another process holds the dedup index (an ingest is running)."""


class Bloom:
    """A Bloom filter over 16-byte uniform keys: 4 probes, each 32 bits of the key."""

    def __init__(self, nbits: int, bits: bytearray | None = None) -> None:
        assert nbits & (nbits - 1) == 0 and nbits <= 1 << 32, "a power of two, 32-bit probes"
        self.nbits = nbits
        self.mask = nbits - 1
        self.bits = bits if bits is not None else bytearray(nbits // 8)

    def add_many(self, keys: Iterable[bytes]) -> None:
        bits, mask, probes = self.bits, self.mask, PROBES.unpack
        for key in keys:  # unrolled: this runs for every id at every flush
            a, b, c, d = probes(key)
            a &= mask
            b &= mask
            c &= mask
            d &= mask
            bits[a >> 3] |= 1 << (a & 7)
            bits[b >> 3] |= 1 << (b & 7)
            bits[c >> 3] |= 1 << (c & 7)
            bits[d >> 3] |= 1 << (d & 7)

    def __contains__(self, key: bytes) -> bool:
        bits, mask = self.bits, self.mask
        a, b, c, d = PROBES.unpack(key)
        # Most absent keys stop at the first probe.
        a &= mask
        if not bits[a >> 3] >> (a & 7) & 1:
            return False
        b &= mask
        if not bits[b >> 3] >> (b & 7) & 1:
            return False
        c &= mask
        if not bits[c >> 3] >> (c & 7) & 1:
            return False
        d &= mask
        return bool(bits[d >> 3] >> (d & 7) & 1)


class DedupIndex:
    """Exact membership of source ids, with bounded memory."""

    def __init__(self, directory: str, flush_every: int = 1 << 17) -> None:
        self.dir = directory
        self.flush_every = flush_every
        self.checkpoint_path = os.path.join(directory, "CHECKPOINT")
        self.bloom_name = ""
        self.runs: list[Run] = []
        self.covered = 0  # notification ids 1..covered are in the index
        self.count = 0  # ids persisted in runs
        self.next_run = 1
        self.bloom = Bloom(MIN_BLOOM_BITS)
        self.mem: dict[bytes, bytes] = {}  # key -> its entry (the run format), to be flushed
        # Partitioned ingest: source identity -> byte position up to which the ids
        # first seen in other partitions' categories are marked here (see ingest).
        self.marks: dict[str, int] = {}
        self.problem: str | None = None
        self._lock_fd: int | None = None

    # -- opening -----------------------------------------------------------

    def open(self, store_max_id: int, lock_timeout: float = 5.0) -> None:
        """Take the index's lock, then load it; start empty if missing or unusable.

        One process at a time uses an index (so that two ingest runs cannot
        both take an id for new): ``IndexBusyError`` after ``lock_timeout``.
        ``problem`` says why an existing index was discarded (the caller warns).
        An index that covers more than the store holds belongs to another store.
        """
        os.makedirs(self.dir, exist_ok=True)
        lock_path = os.path.join(self.dir, "LOCK")
        deadline = time.monotonic() + lock_timeout
        while (fd := fileio.try_flock(lock_path)) is None:
            if time.monotonic() >= deadline:
                msg = (
                    f"{self.dir}: another process is ingesting into this store"
                    f"{fileio.flock_holder(lock_path)}; one ingest runs at a time"
                )
                raise IndexBusyError(msg)
            time.sleep(0.05)
        self._lock_fd = fd
        self.problem = self._load()
        if self.problem is None and self.covered > store_max_id:
            self.problem = (
                f"covers notification {self.covered} but the store ends at {store_max_id}"
            )
        if self.problem is not None:
            self._discard()
        self._remove_strays()

    def _load(self) -> str | None:
        doc, problem = read_checkpoint(self.checkpoint_path)
        if doc is None:
            return problem
        try:
            if doc["format"] == 1:
                return "of an older format"
            if doc["format"] != FORMAT:
                return f"unknown format {doc['format']!r}"
            self.runs = [
                Run(os.path.join(self.dir, r["name"]), int(r["count"]), int(r["crc"]))
                for r in doc["runs"]
            ]  # each checks its header and footer against the checkpoint
            self.bloom_name = str(doc["bloom"]["name"])
            with open(os.path.join(self.dir, self.bloom_name), "rb") as f:
                bits = bytearray(f.read())
            nbits = int(doc["bloom"]["bits"])
            if len(bits) * 8 != nbits or zlib.crc32(bits) != int(doc["bloom"]["crc"]):
                return "bloom filter does not match the checkpoint"
            self.bloom = Bloom(nbits, bits)
            self.covered, self.count = int(doc["covered"]), int(doc["count"])
            self.next_run = int(doc["next_run"])
            self.marks = {str(k): int(v) for k, v in doc.get("marks", {}).items()}
            if sum(r.count for r in self.runs) != self.count:
                return "runs do not add up to the checkpoint"
        except (ValueError, KeyError, TypeError, OSError) as e:
            return f"checkpoint unusable ({e})"
        return None

    def discard(self, problem: str) -> None:
        """Forget the index (files too) because it failed a check; ``problem`` says why."""
        self.problem = problem
        self._discard()

    def _discard(self) -> None:
        self._close_runs()
        for name in os.listdir(self.dir):
            if name != "LOCK":
                os.unlink(os.path.join(self.dir, name))
        self.covered = self.count = 0
        self.marks = {}
        self.next_run = 1
        self.bloom = Bloom(MIN_BLOOM_BITS)
        self.bloom_name = ""
        self.mem = {}

    def _remove_strays(self) -> None:
        """Delete run files a crash left behind that no checkpoint names."""
        named = {r.name for r in self.runs} | {"CHECKPOINT", "LOCK", self.bloom_name}
        for name in os.listdir(self.dir):
            if name not in named:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(self.dir, name))

    # -- lookups and additions --------------------------------------------

    def find(self, key: bytes) -> tuple[int, bytes] | None:
        """The first recording of the id with this key (``id_key``): (notification id,
        content digest), or None."""
        return self.find_many([key]).get(0)

    def find_many(self, keys: list[bytes]) -> dict[int, tuple[int, bytes]]:
        """``find`` of each key: {index in ``keys``: (id, digest)} for the keys found.

        ``IndexDamagedError`` when a run fails its checksum (rebuild the index).
        """
        mem, bloom, unpack = self.mem, self.bloom, ENTRY.unpack
        found: dict[int, tuple[int, bytes]] = {}
        if mem:
            for i, key in enumerate(keys):
                entry = mem.get(key)
                if entry is not None:
                    _, digest, nid = unpack(entry)
                    found[i] = (nid, digest)
        if self.runs:
            for i, key in enumerate(keys):
                if i not in found and key in bloom:
                    for run in self.runs:
                        entry = run.find_key(key)
                        if entry is not None:
                            _, digest, nid = unpack(entry)
                            found[i] = (nid, digest)
                            break
        return found

    def add(self, key: bytes, nid: int, digest: bytes) -> None:
        """Index the id with this key as recorded at ``nid`` (above ``covered``)."""
        if key not in self.mem:
            self.mem[key] = ENTRY.pack(key, digest, nid)

    def add_new(self, keys: list[bytes], nids: list[int], digests: list[bytes]) -> None:
        """``add`` of keys that ``find_many`` did not find (so none is indexed yet)."""
        pack = ENTRY.pack
        rows = zip(keys, digests, nids, strict=True)
        self.mem.update((key, pack(key, digest, nid)) for key, digest, nid in rows)

    def advance(self, covered: int) -> None:
        """Everything up to notification ``covered`` has been added; flush when full."""
        self.covered = covered
        if len(self.mem) >= self.flush_every:
            self.flush()

    # -- persisting ----------------------------------------------------------

    def flush(self) -> None:
        """Write the in-memory ids as a run, merge, persist the filter and checkpoint."""
        obsolete: list[Run] = []
        if self.mem:
            entries = sorted(self.mem.values())
            total = self.count + len(entries)
            if total * BITS_PER_KEY_MIN > self.bloom.nbits:
                self._grow_bloom(total)
            self.bloom.add_many(self.mem)
            obsolete = push_run(self.runs, self._new_run([entries]), self._new_run)
            self.count = total
        old_bloom = self.bloom_name
        self.bloom_name = f"bloom-{self.next_run:08d}"
        self.next_run += 1
        fileio.atomic_write(os.path.join(self.dir, self.bloom_name), self.bloom.bits)
        doc = {
            "format": FORMAT,
            "covered": self.covered,
            "marks": self.marks,
            "count": self.count,
            "next_run": self.next_run,
            "bloom": {
                "name": self.bloom_name,
                "bits": self.bloom.nbits,
                "crc": zlib.crc32(self.bloom.bits),
            },
            "runs": [{"name": r.name, "count": r.count, "crc": r.crc} for r in self.runs],
        }
        write_checkpoint(self.checkpoint_path, doc)
        for run in obsolete:
            run.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(run.path)
        if old_bloom:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.dir, old_bloom))
        self.mem = {}

    def reserve(self, expected: int) -> None:
        """Size the filter for ``expected`` more ids now, not by rebuilds along the way.

        At most ``MAX_RESERVED`` ids are reserved ahead; beyond that it grows as ids come.
        """
        total = self.count + len(self.mem) + min(expected, MAX_RESERVED)
        if total * BITS_PER_KEY_MIN > self.bloom.nbits:
            self._grow_bloom(total)

    def _grow_bloom(self, total: int) -> None:
        nbits = self.bloom.nbits
        while total * BITS_PER_KEY_MIN > nbits:
            nbits *= 2
        bloom = Bloom(nbits)
        for run in self.runs:
            bloom.add_many(entry[:16] for entry in run.entries())
        self.bloom = bloom

    def _new_run(self, chunks: Iterable[list[bytes]]) -> Run:
        self.next_run += 1
        return create_run(self.dir, self.next_run - 1, chunks)

    def _close_runs(self) -> None:
        for run in self.runs:
            run.close()
        self.runs = []

    def close(self) -> None:
        """Release the runs and the lock (without flushing)."""
        self._close_runs()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def verify_dedup(directory: str) -> tuple[str, list[tuple[str, int, str]]]:
    """Check a dedup index read-only: ``(status, problems)``, each problem ``(file, offset,
    reason)``. Status ``ok``, ``absent`` (none yet, an older format, or a first flush a
    crash interrupted: the next ingest rebuilds it) or ``damaged``.

    Verifies the checkpoint's checksum, every run (blocks, order, checksum), the
    filter's checksum, and that the filter holds every id of the runs.
    """
    checkpoint = os.path.join(directory, "CHECKPOINT")
    doc, problem = read_checkpoint(checkpoint)
    if doc is None:
        if problem is None:
            return "absent", []
        return "damaged", [(checkpoint, 0, problem)]
    if doc.get("format") == 1:
        return "absent", []
    problems: list[tuple[str, int, str]] = []
    try:
        runs_named = [
            (os.path.join(directory, r["name"]), int(r["count"]), int(r["crc"]))
            for r in doc["runs"]
        ]
        bloom_path = os.path.join(directory, str(doc["bloom"]["name"]))
        nbits, bloom_crc = int(doc["bloom"]["bits"]), int(doc["bloom"]["crc"])
    except (KeyError, TypeError, ValueError) as e:
        return "damaged", [(checkpoint, 0, f"checkpoint unusable ({e})")]
    try:
        with open(bloom_path, "rb") as f:
            bits = bytearray(f.read())
    except OSError as e:
        return "damaged", [(bloom_path, 0, f"unreadable ({e.strerror or e})")]
    bloom = None
    if len(bits) * 8 != nbits or zlib.crc32(bits) != bloom_crc:
        problems.append((bloom_path, 0, "bloom filter checksum mismatch"))
    else:
        bloom = Bloom(nbits, bits)
    for path, count, crc in runs_named:
        try:
            run = Run(path, count, crc)
        except OSError as e:
            problems.append((path, 0, f"unreadable ({e.strerror or e})"))
            continue
        except IndexDamagedError as e:
            problems.append((e.path, e.offset, e.reason))
            continue
        try:
            damage = run.verify()
            if damage is not None:
                problems.append((damage.path, damage.offset, damage.reason))
            elif bloom is not None:
                entries = enumerate(run.entries())
                missing = next((i for i, e in entries if e[:16] not in bloom), None)
                if missing is not None:
                    problems.append(
                        (bloom_path, 0, f"bloom filter misses entry {missing} of {run.name}")
                    )
        finally:
            run.close()
    return ("damaged" if problems else "ok"), problems
