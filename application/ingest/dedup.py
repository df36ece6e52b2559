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
sorted runs on disk (``runs.py``, compressed blocks) read with one ``pread``
per run and lookup; one Bloom filter over all persisted keys (16 to 32 bits an
id, 4 probes) answers "never seen" for almost every new id without touching
the disk.

A run entry is ``short:8 check:u64be id:u64be``: ``short`` is the key's first
6 bytes and two zero bytes, ``check`` the content digest XOR the key's last 8
bytes (the key's last 8 bytes alone for an id first seen in another
partition, ``id`` 0). Two ids may share ``short``; an entry answers for a key
only when it is proven to be that key's (``find_many``): its check gives back
the digest the caller has (a duplicate: short and check would both have to
agree by chance, 112 bits), or the store's recording at ``id`` is of that very
key (a conflict), or, for another partition's id, its check is the key's last 8
bytes. Otherwise the entry is another id's and the key is not found.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import struct
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from hashlib import blake2b
from typing import Any, NamedTuple

from eventfold.infra import fileio
from eventfold.infra.errors import StoreBusyError
from eventfold.infra.filestore import merging, sortedrows
from eventfold.infra.filestore.bloom import Bloom, share
from eventfold.infra.filestore.checkpoint import read_checkpoint, write_checkpoint
from eventfold.infra.filestore.merging import Merges
from eventfold.infra.filestore.runs import Chunk, IndexDamagedError, Layout, Run, create_run

FORMAT = 4  # the filter's file may lack the ids of runs it names (3: it never does)
READ_FORMATS = (3, FORMAT)  # entries short:8 check:u64be id:u64be (1, 2: rebuilt)
ENTRY = struct.Struct(">8sQQ")
LAYOUT = Layout(0, 3, 0, 256)  # as they are, so that a lookup decodes no whole column
MIN_BLOOM_BITS = 1 << 23
MAX_RESERVED = 1 << 26  # ids a filter is sized for ahead of time
BITS_PER_KEY_MIN = 16  # below this the filter is rebuilt larger: 16 to 32 bits an id
LACKING_SHARE = 4  # the filter's file is written when 1/4 of the ids would lack from it
SHORT = 6  # key bytes a run entry keeps
PAD = bytes(2)  # after them, so that a short key is one 8-byte word
SHORT_WORD = (1 << 64) - (1 << 8 * len(PAD))  # a key's first word, as a run entry keeps it
ELSEWHERE = 0  # the id of an entry first seen in another partition (deciding.OTHER_PARTITION)
NO_DIGEST = bytes(8)


_ID_HASH = blake2b(digest_size=16, person=b"eventfold-id")


def id_key(event_id: str) -> bytes:
    """The 16-byte key of a source event id: its personalised BLAKE2b-128."""
    h = _ID_HASH.copy()  # cheaper than setting the parameters up again
    h.update(event_id.encode("utf-8"))
    return h.digest()


RecordedKey = Callable[[int], bytes | None]  # the key of the id recorded at a notification


class IndexBusyError(StoreBusyError):
    """Another process holds the dedup index (an ingest is running)."""


def sorted_entries(keys: list[bytes], nids: list[int], digests: list[bytes]) -> bytes:
    """The run entries of the ids with these keys (``id_key``), first recorded at ``nids``
    with content ``digests``, sorted and laid end to end (``runs.write_run``). Each is
    ``short:8 check:u64be id:u64be``: ``short`` the key's first ``SHORT`` bytes then
    ``PAD``, ``check`` the digest (``NO_DIGEST`` for an id of another partition) XOR the
    key's last 8 bytes. Made a column at a time (``sortedrows``)."""
    np = sortedrows.load()
    count = len(keys)
    joined, checks = b"".join(keys), b"".join(digests)
    if len(joined) != 16 * count or len(checks) != 8 * count or len(nids) != count:
        msg = "keys of 16 bytes and digests of 8 are packed, one of each an id"
        raise ValueError(msg)
    if not count:
        return b""
    key_words = sortedrows.words_of(joined, count, 2)
    ids = np.array(nids, np.uint64)
    digest_words = sortedrows.words_of(checks, count, 1)[:, 0]
    digest_words[ids == ELSEWHERE] = 0  # NO_DIGEST
    short = key_words[:, 0] & np.uint64(SHORT_WORD)
    return sortedrows.rows([short, digest_words ^ key_words[:, 1], ids], sort=True)


class Filed(NamedTuple):
    """A file of the dedup index's filter: its name, its size in bits, its CRC-32."""

    name: str
    bits: int
    crc: int


class Held:
    """Ids held in memory until a flush persists them: each key's notification id and
    digest, as columns in the order added (a key at most once), found by key."""

    def __init__(self) -> None:
        self.at: dict[bytes, int] = {}  # key -> its place in the columns
        self.nids: list[int] = []
        self.digests: list[bytes] = []

    def __len__(self) -> int:
        return len(self.nids)

    def keys(self) -> list[bytes]:
        """The keys, in the order added."""
        return list(self.at)

    def get(self, key: bytes) -> tuple[int, bytes] | None:
        """(notification id, digest) of ``key``, or None."""
        i = self.at.get(key)
        return None if i is None else (self.nids[i], self.digests[i])

    def found(self, keys: list[bytes]) -> dict[int, tuple[int, bytes]]:
        """{index in ``keys``: (notification id, digest)} of the keys held here (most are
        not: one pass in C tells)."""
        at = self.at
        hits = at.keys() & keys if at else ()
        if not hits:
            return {}
        return {i: (self.nids[at[k]], self.digests[at[k]]) for i, k in enumerate(keys) if k in hits}

    def add_many(self, keys: list[bytes], nids: list[int], digests: list[bytes]) -> None:
        """Hold keys not held yet (the caller makes sure), one each."""
        if not len(keys) == len(nids) == len(digests):
            msg = "a notification id and a digest for each key"
            raise ValueError(msg)
        start = len(self.nids)
        self.at.update(zip(keys, range(start, start + len(keys)), strict=True))
        self.nids += nids
        self.digests += digests


class DedupIndex:
    """Exact membership of source ids, with bounded memory."""

    def __init__(self, directory: str, flush_every: int = 1 << 17) -> None:
        self.dir = directory
        self.flush_every = flush_every
        self.checkpoint_path = os.path.join(directory, "CHECKPOINT")
        self.filed = Filed("", 0, 0)  # the filter's file the checkpoint names
        self.runs: list[Run] = []
        self.lacking: list[Run] = []  # runs whose ids the filter's file may lack
        self.covered = 0  # notification ids 1..covered are in the index
        self.count = 0  # ids persisted in runs
        self.next_run = 1
        self.bloom = Bloom(MIN_BLOOM_BITS)
        self.mem = Held()  # ids to be flushed
        # A flush whose filter the worker is extending: its ids, still answered from here;
        # the job, and the marks and coverage its checkpoint is to record.
        self.flushing = Held()
        self._flushing: tuple[merging.Pending, dict[str, int], int] | None = None
        self._stale = False  # the filter was rebuilt since its file was written
        self._shared: tuple[str, object] | None = None  # the file ``bloom`` is mapped from
        # Partitioned ingest: source identity -> byte position up to which the ids
        # first seen in other partitions' categories are marked here (see ingest).
        self.marks: dict[str, int] = {}
        self.problem: str | None = None
        self._lock_fd: int | None = None
        self._merges = Merges(directory, LAYOUT, self._new_run)

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
            if doc["format"] in (1, 2):
                return "of an older format"
            if doc["format"] not in READ_FORMATS:
                return f"unknown format {doc['format']!r}"
            self.runs = [
                Run(os.path.join(self.dir, r["name"]), int(r["count"]), int(r["crc"]))
                for r in doc["runs"]
            ]  # each checks its header and footer against the checkpoint
            filed = doc["bloom"]
            self.filed = Filed(str(filed["name"]), int(filed["bits"]), int(filed["crc"]))
            with open(os.path.join(self.dir, self.filed.name), "rb") as f:
                bits = bytearray(f.read())
            if len(bits) * 8 != self.filed.bits or zlib.crc32(bits) != self.filed.crc:
                return "bloom filter does not match the checkpoint"
            self.bloom = Bloom(self.filed.bits, bits)
            self.covered, self.count = int(doc["covered"]), int(doc["count"])
            self.next_run = int(doc["next_run"])
            self.marks = {str(k): int(v) for k, v in doc.get("marks", {}).items()}
            if sum(r.count for r in self.runs) != self.count:
                return "runs do not add up to the checkpoint"
            lacks = _lacks(filed, {r.name for r in self.runs})
            self.lacking = [r for r in self.runs if r.name in lacks]
            for run in self.lacking:  # ids a crash kept from the filter's file
                self.bloom.add_many(run.entries())
        except (ValueError, KeyError, TypeError, OSError) as e:
            return f"checkpoint unusable ({e})"
        return None

    def discard(self, problem: str) -> None:
        """Forget the index (files too) because it failed a check; ``problem`` says why."""
        self.problem = problem
        self._discard()

    def _discard(self) -> None:
        self._merges.abandon()
        self._close_runs()
        for name in os.listdir(self.dir):
            if name != "LOCK":
                os.unlink(os.path.join(self.dir, name))
        self.covered = self.count = 0
        self.marks = {}
        self.next_run = 1
        self.bloom = Bloom(MIN_BLOOM_BITS)
        self.filed = Filed("", 0, 0)
        self.lacking = []
        self._shared = None  # its file is gone with the rest
        self.mem = Held()

    def _remove_strays(self) -> None:
        """Delete run files a crash left behind that no checkpoint names."""
        named = {r.name for r in self.runs} | {"CHECKPOINT", "LOCK", self.filed.name}
        for name in os.listdir(self.dir):
            if name not in named:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(self.dir, name))

    # -- lookups and additions --------------------------------------------

    def find(
        self, key: bytes, digest: bytes | None = None, recorded_key: RecordedKey | None = None
    ) -> tuple[int, bytes] | None:
        """The first recording of the id with this key (``id_key``): (notification id,
        content digest), or None (see ``find_many``)."""
        digests = None if digest is None else [digest]
        return self.find_many([key], digests, recorded_key).get(0)

    def find_many(
        self,
        keys: list[bytes],
        digests: list[bytes] | None = None,
        recorded_key: RecordedKey | None = None,
    ) -> dict[int, tuple[int, bytes]]:
        """``find`` of each key: {index in ``keys``: (id, digest)} for the keys found.

        A persisted entry whose short key matches answers only when it is proven to
        be the key's: its digest is the one in ``digests`` (a duplicate), or the key
        of the id recorded at its notification (``recorded_key``, None when that is
        not a recording) is this key. Without ``recorded_key`` such an entry is taken
        on its short key alone. An id of another partition answers with the digest
        ``NO_DIGEST``. ``IndexDamagedError`` when a run fails its checksum (rebuild
        the index).
        """
        mem, bloom, flushing = self.mem, self.bloom, self.flushing
        found: dict[int, tuple[int, bytes]] = {}
        for held in (mem, flushing):
            found.update(held.found(keys))
        if self.runs:
            if found:
                rest: Sequence[int] = [i for i in range(len(keys)) if i not in found]
                maybe = bloom.maybe_many([keys[i] for i in rest])
            else:  # the common case: the batch's keys as they are
                rest, maybe = range(len(keys)), bloom.maybe_many(keys)
            for i in itertools.compress(rest, maybe):
                wanted = None if digests is None else digests[i]
                hit = self._find_persisted(keys[i], wanted, recorded_key)
                if hit is not None:
                    found[i] = hit
        return found

    def _find_persisted(
        self, key: bytes, wanted: bytes | None, recorded_key: RecordedKey | None
    ) -> tuple[int, bytes] | None:
        """The runs' entry of ``key``, proven (``find_many``), or None."""
        unproven: list[tuple[int, bytes]] = []
        tail = int.from_bytes(key[8:])
        short = key[:SHORT] + PAD
        for run in self.runs:
            for entry in run.starting_with(short):
                _, check, nid = ENTRY.unpack(entry)
                digest = (check ^ tail).to_bytes(8)
                if nid == ELSEWHERE:
                    if digest == NO_DIGEST:
                        return nid, digest
                elif digest == wanted:
                    return nid, digest
                else:
                    unproven.append((nid, digest))
        for nid, digest in unproven:  # a conflict, or another id's short key: ask the store
            if recorded_key is None or recorded_key(nid) == key:
                return nid, digest
        return None

    def add(self, key: bytes, nid: int, digest: bytes) -> None:
        """Index the id with this key as recorded at ``nid`` (above ``covered``)."""
        if self.mem.get(key) is None and self.flushing.get(key) is None:
            self.mem.add_many([key], [nid], [digest])

    def add_new(self, keys: list[bytes], nids: list[int], digests: list[bytes]) -> None:
        """``add`` of keys that ``find_many`` did not find (so none is indexed yet)."""
        self.mem.add_many(keys, nids, digests)

    def advance(self, covered: int) -> None:
        """Everything up to notification ``covered`` has been added; flush when full."""
        self.covered = covered
        if len(self.mem) >= self.flush_every:
            self.flush()

    # -- persisting ----------------------------------------------------------

    def flush(self, *, wait: bool = False) -> None:
        """Write the in-memory ids as a run, and a checkpoint that names it.

        The work that grows with the index is done by the worker process
        (``merging.py``): merging runs, and adding a full flush's keys to the
        filter, which it maps from the same file as this process
        (``bloom.extend_shared``). Until it is done those ids stay in memory
        (``flushing``) and the checkpoint names the index as it was; the next
        flush adopts it (the checkpoint then names the new run). The filter's
        own file is written only when the ids it would lack reach a quarter of
        all (``_filter_due``): the checkpoint names the runs it lacks, and
        opening the index adds them to it. ``wait`` (closing): finish all of it
        here, now, the filter's file included.
        """
        self._adopt_flush()
        new: Run | None = None
        if self.mem:
            entries = sorted_entries(self.mem.keys(), self.mem.nids, self.mem.digests)
            added = len(entries) // ENTRY.size
            total = self.count + added
            new = self._new_run([entries])
            fits = total * BITS_PER_KEY_MIN <= self.bloom.nbits
            shared = None
            if not wait and fits and added >= merging.BACKGROUND_MIN:
                shared = self._share()
            if shared is not None:
                output = ""
                if self._filter_due(added, total):
                    output = os.path.join(self.dir, f"bloom-{secrets.token_hex(8)}")
                job = {"kind": "bloom", "shared": shared, "nbits": self.bloom.nbits}
                pending = merging.worker("bloom").send(job, [new], output)
                if pending.failed is None:
                    self._flushing = (pending, dict(self.marks), self.covered)
                    self.flushing, self.mem = self.mem, Held()
                    return
            if not fits:
                self._grow_bloom(total)
            self.bloom.add_many(self.mem.keys())
            self.count = total
        changed = new is not None or bool(self.lacking) or self._stale or not self.filed.name
        due = (wait and changed) or (new is not None and self._filter_due(new.count, self.count))
        filed = self._write_filter() if due else None
        self._persist(new, filed, self.covered, self.marks, wait=wait)
        self.mem = Held()

    def _filter_due(self, adding: int, total: int) -> bool:
        """Whether the filter's file is to be written now, with a new run of ``adding`` ids
        lacking from it and ``total`` ids in all: when there is none yet, when the
        filter was rebuilt since, or when a quarter of the ids would lack from it (so
        the file is written a number of times that grows with the log of the ids, not
        with them, and opening after a crash adds about a quarter back: more when a
        merge has just taken in a run it lacks)."""
        if not self.filed.name or self._stale:
            return True
        lacking = sum(r.count for r in self.lacking) + adding
        return LACKING_SHARE * lacking >= total

    def _write_filter(self) -> Filed:
        """Write the filter in memory to a file of its own."""
        name = f"bloom-{self.next_run:08d}"
        self.next_run += 1
        fileio.atomic_write(os.path.join(self.dir, name), self.bloom.bits)
        return Filed(name, self.bloom.nbits, zlib.crc32(self.bloom.bits))

    def _share(self) -> str | None:
        """The file the filter in memory is mapped from, shared with the worker (made now,
        with the filter's bits, if it is not); None if it cannot be made here (a full
        disk, a file system without shared mappings): this process adds the ids."""
        if self._shared is None or self._shared[1] is not self.bloom.bits:
            self._unshare()
            path = os.path.join(self.dir, f"shared-{secrets.token_hex(8)}.bloom")
            try:
                mapped = share(path, self.bloom.bits)
            except OSError:
                return None
            self.bloom = Bloom(self.bloom.nbits, mapped)
            self._shared = (path, mapped)
        return self._shared[0]

    def _unshare(self) -> None:
        """Remove the shared file (a mapping of it stays usable until it is dropped)."""
        if self._shared is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._shared[0])
            self._shared = None

    def _adopt_flush(self) -> None:
        """Finish the flush whose ids the worker adds to the filter (waiting for it): a
        checkpoint names its run (and the filter's file it wrote, if it wrote one); the
        ids are added here if the worker failed."""
        if self._flushing is None:
            return
        pending, marks, covered = self._flushing
        pending.worker.collect(pending, block=True)
        self._flushing = None
        filed = None  # the filter's file the worker wrote
        if pending.answer is None:
            if pending.output:
                with contextlib.suppress(OSError):
                    os.unlink(pending.output)
            self.bloom.add_many(self.flushing.keys())
        elif pending.output:
            name, crc = os.path.basename(pending.output), int(pending.answer["crc"])
            filed = Filed(name, int(pending.job["nbits"]), crc)
        run = pending.inputs[0]
        self.count += run.count
        self._persist(run, filed, covered, marks)
        self.flushing = Held()

    def _persist(
        self,
        new: Run | None,
        filed: Filed | None,
        covered: int,
        marks: dict[str, int],
        *,
        wait: bool = False,
    ) -> None:
        """Add ``new`` to the runs (merges: ``merging.Merges``), then write the checkpoint
        (naming ``filed``, a new file of the filter holding every run's ids; else the
        filter's file as it was, and the runs it lacks); delete what it replaced."""
        before = list(self.runs)
        obsolete = self._merges.after_flush(self.runs, new, wait=wait)
        old_file = self.filed.name
        if filed is not None:
            self.filed = filed
            self.lacking = []
            self._stale = False
        else:
            lacking = self.lacking + ([new] if new is not None else [])
            lost = any(_holds(lacking, r) for r in obsolete)  # a merge took ids lacking
            made = [r for r in self.runs if not _holds(before, r)]  # new, and merged runs
            self.lacking = [r for r in lacking if not _holds(obsolete, r)]
            self.lacking += [r for r in made if lost and not _holds(self.lacking, r)]
        doc = {
            "format": FORMAT,
            "covered": covered,
            "marks": marks,
            "count": self.count,
            "next_run": self.next_run,
            "bloom": {
                "name": self.filed.name,
                "bits": self.filed.bits,
                "crc": self.filed.crc,
                "lacks": [r.name for r in self.lacking],
            },
            "runs": [{"name": r.name, "count": r.count, "crc": r.crc} for r in self.runs],
        }
        write_checkpoint(self.checkpoint_path, doc)
        for run in obsolete:
            run.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(run.path)
        if old_file and old_file != self.filed.name:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.dir, old_file))

    def reserve(self, expected: int) -> None:
        """Size the filter for ``expected`` more ids now, not by rebuilds along the way.

        At most ``MAX_RESERVED`` ids are reserved ahead; beyond that it grows as ids come.
        """
        self._adopt_flush()
        total = self.count + len(self.mem) + len(self.flushing) + min(expected, MAX_RESERVED)
        if total * BITS_PER_KEY_MIN > self.bloom.nbits:
            self._grow_bloom(total, ahead=True)

    def _grow_bloom(self, total: int, *, ahead: bool = False) -> None:
        """A larger filter, for ``total`` ids: just enough when they are known ahead (a
        reservation), else at least twice as large (rebuilding it reads every run)."""
        nbits = total * BITS_PER_KEY_MIN if ahead else max(2 * self.bloom.nbits, total * 20)
        bloom = Bloom(-(-nbits // 64) * 64)
        for run in self.runs:
            bloom.add_many(run.entries())
        self._unshare()
        self.bloom = bloom
        self._stale = True

    def _new_run(self, chunks: Iterable[Chunk]) -> Run:
        self.next_run += 1
        return create_run(self.dir, self.next_run - 1, chunks, LAYOUT)

    def _close_runs(self) -> None:
        self._merges.abandon()
        if self._flushing is not None:  # its run and filter are strays: the store has its ids
            self._flushing[0].inputs[0].close()
            self._flushing = None
            self.flushing = Held()
        for run in self.runs:
            run.close()
        self.runs = []

    def close(self) -> None:
        """Release the runs and the lock (without flushing)."""
        self._close_runs()
        self._unshare()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _holds(runs: list[Run], run: Run) -> bool:
    """Whether ``run`` is one of ``runs`` (the very object)."""
    return any(r is run for r in runs)


def _lacks(filed: Mapping[str, Any], runs: set[str]) -> set[str]:
    """The names of the runs a checkpoint's filter file (``filed``: its ``bloom``) lacks;
    ``ValueError`` for a name that is not one of its ``runs``."""
    lacks = {str(name) for name in filed.get("lacks", [])}
    unknown = lacks - runs
    if unknown:
        msg = f"the filter lacks runs it does not name: {', '.join(sorted(unknown))}"
        raise ValueError(msg)
    return lacks


def verify_dedup(directory: str) -> tuple[str, list[tuple[str, int, str]]]:
    """Check a dedup index read-only: ``(status, problems)``, each problem ``(file, offset,
    reason)``. Status ``ok``, ``absent`` (none yet, an older format, or a first flush a
    crash interrupted: the next ingest rebuilds it) or ``damaged``.

    Verifies the checkpoint's checksum, every run (blocks, order, checksum), the
    filter's checksum, and that the filter holds every id of the runs but those
    it is named as lacking (``lacks``: an ingest adds them when it opens the index).
    """
    checkpoint = os.path.join(directory, "CHECKPOINT")
    doc, problem = read_checkpoint(checkpoint)
    if doc is None:
        if problem is None:
            return "absent", []
        return "damaged", [(checkpoint, 0, problem)]
    if doc.get("format") in (1, 2):
        return "absent", []
    problems: list[tuple[str, int, str]] = []
    try:
        runs_named = [
            (os.path.join(directory, r["name"]), int(r["count"]), int(r["crc"]))
            for r in doc["runs"]
        ]
        bloom_path = os.path.join(directory, str(doc["bloom"]["name"]))
        nbits, bloom_crc = int(doc["bloom"]["bits"]), int(doc["bloom"]["crc"])
        lacks = _lacks(doc["bloom"], {os.path.basename(path) for path, _, _ in runs_named})
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
            elif bloom is not None and run.name not in lacks:
                missing = _first_missing(bloom, run)
                if missing is not None:
                    problems.append(
                        (bloom_path, 0, f"bloom filter misses entry {missing} of {run.name}")
                    )
        finally:
            run.close()
    return ("damaged" if problems else "ok"), problems


def _first_missing(bloom: Bloom, run: Run) -> int | None:
    """The place in ``run`` of its first entry that ``bloom`` does not hold, or None."""
    done = 0
    for chunk in run.chunks():
        held = bloom.maybe_many(chunk)
        if not all(held):
            return done + held.index(False)
        done += len(chunk)
    return None
