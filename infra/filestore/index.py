"""The persisted index of one log: it trails the log and is rebuilt from it.

Two structures, both covering notification ids ``1..covered``:

- ``index/offsets``: one little-endian u64 per group of ``GROUP`` notification
  ids, the packed location of the commit that holds the group's first id (a
  reader walks from there to the commit of any id of the group);
- ``index/run-NNNNNNNN.idx``: sorted runs (``runs.py``) of 32-byte entries
  ``key:16 (version + 2**63):u64be id:u64be`` (``key`` is BLAKE2b-128 of
  ``str(originator_id)``). Runs are merged like a binary counter, so there are
  at most log2(events / interval) + 1 of them.

``index/CHECKPOINT`` names what is covered and where the log stood, and the
store's durable mark: the furthest commit the store ever recorded as durable,
kept across index rebuilds, so that a log found shorter than it is damage,
never a torn tail. Events after the checkpoint live in a bounded in-memory
table until the next flush.
"""

from __future__ import annotations

import contextlib
import os
import struct
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from hashlib import blake2b
from typing import Any
from uuid import UUID

from eventfold.infra import fileio
from eventfold.infra.filestore import sortedrows
from eventfold.infra.filestore.checkpoint import read_checkpoint, write_checkpoint
from eventfold.infra.filestore.keyfilter import KeyFilter
from eventfold.infra.filestore.merging import Merges
from eventfold.infra.filestore.runs import (
    STORE_LAYOUT,
    VERSION_BIAS,
    Chunk,
    IndexDamagedError,
    Run,
    create_run,
)

OFFSET = struct.Struct("<Q")
GROUP = 64  # notification ids per entry of the offsets file
KNOWN_MAX = 1 << 18  # originators whose highest version the index remembers (~30 MB)
SPARSE_GAP = 64 * GROUP  # ids further apart than this are read from the offsets file separately
CHECKPOINT_FORMAT = 3  # older ones are read for their durable mark, then the index is rebuilt:
# 1: runs without block checksums; 2: an offsets entry per event (its record's location)


@dataclass(frozen=True)
class Mark:
    """A point of the log: events ``1..covered``, the last commit's location and the end."""

    covered: int
    last_commit: int | None
    end: int

    def to_json(self) -> dict[str, Any]:
        return {"covered": self.covered, "last_commit": self.last_commit, "end": self.end}


def originator_key(originator_id: UUID | str) -> bytes:
    """The 16-byte index key of an originator id (a UUID and its string agree)."""
    return blake2b(str(originator_id).encode("utf-8"), digest_size=16).digest()


def sorted_entries(keys: list[bytes], versions: array[int], first: int) -> bytes:
    """The entries (``runs.ENTRY``: key, biased version, id) of events with these keys and
    versions, their ids ``first`` on, sorted and laid end to end: with every word
    big-endian, their bytes sort as (key, version) do."""
    np = sortedrows.load()  # held: this may run as the interpreter shuts down
    count = len(keys)
    if count != len(versions):
        msg = f"{count} keys but {len(versions)} versions"
        raise ValueError(msg)
    if not count:
        return b""
    key_words = sortedrows.words_of(b"".join(keys), count, 2)
    biased = np.asarray(versions, np.int64).view(np.uint64) ^ np.uint64(VERSION_BIAS)
    nids = np.arange(first, first + count, dtype=np.uint64)
    return sortedrows.rows([key_words[:, 0], key_words[:, 1], biased, nids], sort=True)


class LogIndex:
    """The persisted index plus the in-memory table of what follows it."""

    def __init__(self, log_dir: str) -> None:
        self.dir = os.path.join(log_dir, "index")
        self.checkpoint_path = os.path.join(self.dir, "CHECKPOINT")
        self.offsets_path = os.path.join(self.dir, "offsets")
        self.runs: list[Run] = []
        self._offsets_fd: int | None = None
        self._offsets_writable = False
        self._merges = Merges(self.dir, STORE_LAYOUT, self._new_run)
        self._reset_state()

    def _reset_state(self) -> None:
        self.durable: Mark | None = None  # set from a checkpoint whose checksum holds
        self.covered = 0
        self.last_commit: int | None = None
        self.end: int | None = None
        self.tracking: dict[str, int] = {}
        self.next_run = 1
        self._forget_table()
        self.known_max: dict[bytes, int | None] = {}  # max_version's answers, kept current
        # Every key of the runs, while this process has seen them all (none at the start).
        self.key_filter: KeyFilter | None = KeyFilter()
        self._merges.abandon()

    @property
    def merging(self) -> bool:
        """A merge of runs is in flight (a flush adopts it once it is done)."""
        return self._merges.merging

    @property
    def offsets_fd(self) -> int | None:
        """The open offsets file (reading), when the index is loaded."""
        return self._offsets_fd

    @property
    def mem_size(self) -> int:
        return len(self.mem_offsets)

    def _forget_table(self) -> None:
        """Empty the in-memory table (what follows ``covered``)."""
        self.mem_offsets = array("Q")
        self.mem_keys: list[bytes] = []  # of each event in memory, by id - covered - 1
        self.mem_versions = array("q")
        self.mem_max: dict[bytes, int] = {}  # each key's highest version in memory
        self._fresh: list[bytes] = []  # keys in memory that the key filter may not have
        self._table: dict[bytes, dict[int, int]] = {}  # key -> version -> id, built on demand
        self._table_upto = 0  # events of memory in ``_table``

    def _versions_table(self) -> dict[bytes, dict[int, int]]:
        """The in-memory events as key -> version -> id, brought up to date (a lookup's:
        writing only appends to the columns)."""
        table, upto, keys = self._table, self._table_upto, self.mem_keys
        if upto < len(keys):
            first = self.covered + 1
            for i in range(upto, len(keys)):
                versions_of = table.get(keys[i])
                if versions_of is None:
                    versions_of = table[keys[i]] = {}
                versions_of[self.mem_versions[i]] = first + i
            self._table_upto = len(keys)
        return table

    # -- loading -----------------------------------------------------------

    def exists(self) -> bool:
        return os.path.exists(self.dir) and bool(os.listdir(self.dir))

    def load(self, *, writable: bool = True) -> str | None:
        """Load the checkpoint and its files; return why it is unusable, or None.

        ``durable`` is set whenever the checkpoint's checksum holds, even when
        its files are unusable: the mark outlives the index it came with.
        """
        self.close()
        self._reset_state()
        doc, problem = read_checkpoint(self.checkpoint_path)
        if doc is None:
            if problem is not None:
                return f"{self.checkpoint_path}: index {problem}"
            return "no index checkpoint" if self.exists() else None
        try:
            self.durable = _durable_mark(doc)
            if doc["format"] in (1, 2):
                return "index of an older format"
            if doc["format"] != CHECKPOINT_FORMAT:
                return f"{self.checkpoint_path}: unknown index format {doc['format']!r}"
            covered = int(doc["covered"])
            runs = [
                Run(os.path.join(self.dir, r["name"]), int(r["count"]), int(r["crc"]))
                for r in doc["runs"]
            ]
            self.key_filter = None  # the runs' keys are not known
            self.runs = runs
            if sum(r.count for r in runs) != covered:
                return f"{self.checkpoint_path}: index runs do not add up to the checkpoint"
            self._open_offsets(writable, covered)
            size = 0 if self._offsets_fd is None else os.fstat(self._offsets_fd).st_size
            if size < _groups(covered) * OFFSET.size:
                return f"{self.offsets_path}: shorter than the index checkpoint says"
        except (ValueError, KeyError, TypeError, OSError) as e:
            where = e.path if isinstance(e, IndexDamagedError) else self.checkpoint_path
            reason = e.reason if isinstance(e, IndexDamagedError) else f"unusable ({e})"
            return f"{where}: index {reason}"
        self.covered = covered
        self.last_commit = doc["last_commit"]
        self.end = doc["end"]
        self.tracking = {str(k): int(v) for k, v in doc["tracking"].items()}
        self.next_run = int(doc["next_run"])
        return None

    def _open_offsets(self, writable: bool, covered: int) -> None:
        """Open the offsets file; read-only where it cannot be written (a read-only store)."""
        if writable:
            try:
                self._offsets_fd = os.open(self.offsets_path, os.O_RDWR | os.O_CREAT, 0o644)
                self._offsets_writable = True
                return
            except OSError as e:
                if not fileio.is_read_only(e):
                    raise
        try:
            self._offsets_fd = os.open(self.offsets_path, os.O_RDONLY)
        except FileNotFoundError:
            if covered:
                raise
        self._offsets_writable = False

    def reset(self) -> None:
        """Forget the persisted index (in memory): everything is rescanned.

        The durable mark stays: a rebuild must reach it.
        """
        durable = self.durable
        self.close()
        self._reset_state()
        self.durable = durable

    def discard_files(self) -> None:
        """Remove the persisted index but its checkpoint (writer only).

        The checkpoint keeps the durable mark until the rebuild's first flush
        replaces it (carrying the mark on).
        """
        self.reset()
        self.remove_files()

    def remove_files(self) -> None:
        """Remove the persisted index files but the checkpoint, keeping what is in memory
        (writer only: a rebuilt index is written next)."""
        if os.path.isdir(self.dir):
            for name in os.listdir(self.dir):
                if name != "CHECKPOINT":
                    os.unlink(os.path.join(self.dir, name))
            fileio.fsync_dir(self.dir)

    def remove_strays(self) -> None:
        """Delete files a crash left behind that the checkpoint does not name (writer only)."""
        if not os.path.isdir(self.dir):
            return
        named = {r.name for r in self.runs} | {"CHECKPOINT", "offsets"}
        for name in os.listdir(self.dir):
            if name not in named:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(self.dir, name))

    def reload_if_newer(self) -> bool:
        """Reader side: adopt a checkpoint that a writer flushed since we looked.

        Returns False when the index had to be reset (the caller rescans).
        """
        doc, _ = read_checkpoint(self.checkpoint_path)
        try:
            newer = int(doc["covered"]) if doc is not None else 0
        except (ValueError, KeyError, TypeError):
            return True
        if newer <= self.covered or newer > self.covered + self.mem_size:
            return True
        lo = newer - self.covered
        kept_keys, kept_versions = self.mem_keys[lo:], list(self.mem_versions[lo:])
        kept_offsets = list(self.mem_offsets[lo:])
        if self.load() is not None or self.covered != newer:
            self.reset()
            return False
        if kept_keys:
            self.add_many(newer + 1, kept_keys, kept_versions, kept_offsets)
        return True

    # -- the in-memory table ----------------------------------------------

    def add(self, nid: int, key: bytes, version: int, location: int) -> None:
        self.add_many(nid, [key], [version], [location])

    def add_many(
        self,
        first: int,
        keys: list[bytes],
        versions: list[int],
        locations: list[int],
        tops: dict[bytes, int] | None = None,
    ) -> None:
        """Index events ``first, first + 1, ...`` (the next ids) in memory. ``tops``: each
        key's highest version among them, when the caller knows it (a writer checking
        that versions only go up does)."""
        assert first == self.covered + len(self.mem_offsets) + 1, first
        self.mem_offsets.extend(locations)
        self.mem_keys.extend(keys)
        self.mem_versions.extend(versions)
        if tops is None:
            tops = {}
            for key, version in zip(keys, versions, strict=True):
                if version > tops.get(key, version - 1):
                    tops[key] = version
        mem_max, known, fresh = self.mem_max, self.known_max, self._fresh
        filtered = self.key_filter is not None
        for key, version in tops.items():
            top = mem_max.get(key)
            if top is None:  # new to memory: new to the runs too, unless known there
                if filtered and known.get(key) is None:
                    fresh.append(key)
                mem_max[key] = version
            elif version > top:
                mem_max[key] = version
            if key in known:
                top = known[key]
                if top is None or version > top:
                    known[key] = version

    # -- lookups -----------------------------------------------------------

    def location_of(self, nid: int) -> int:
        return self.locations(nid, nid)[0]

    def locations_of(self, nids: Sequence[int]) -> list[int]:
        """``locations`` of the events ``nids`` (any order): one read per run of close ids."""
        ordered = sorted(set(nids))
        found: dict[int, int] = {}
        start = 0
        for i in range(1, len(ordered) + 1):  # a window ends where the next id is far off
            if i == len(ordered) or ordered[i] - ordered[i - 1] > SPARSE_GAP:
                first = ordered[start]
                window = self.locations(first, ordered[i - 1])
                found.update((n, window[n - first]) for n in ordered[start:i])
                start = i
        return [found[n] for n in nids]

    def locations(self, first: int, last: int) -> list[int]:
        """For each event ``first..last`` (all must exist), the location of a commit at or
        before the one that holds it: that commit itself if it is in memory, else the
        commit of the first id of its group (the reader walks on from there)."""
        result: list[int] = []
        if first <= self.covered:
            upto = min(last, self.covered)
            assert self._offsets_fd is not None
            lo, hi = (first - 1) // GROUP, (upto - 1) // GROUP
            size = (hi - lo + 1) * OFFSET.size
            raw = fileio.read_exact(self._offsets_fd, size, lo * OFFSET.size)
            if len(raw) != size:
                at = lo * OFFSET.size + len(raw)
                raise IndexDamagedError(self.offsets_path, at, "offsets file is too short")
            groups = array("Q", raw)
            result.extend(groups[(nid - 1) // GROUP - lo] for nid in range(first, upto + 1))
            first = upto + 1
        if first <= last:
            lo = first - self.covered - 1
            result.extend(self.mem_offsets[lo : last - self.covered])
        return result

    def find(self, key: bytes, version: int) -> int | None:
        mem = self._versions_table().get(key) if key in self.mem_max else None
        if mem is not None and version in mem:
            return mem[version]
        for run in self.runs:
            nid = run.find(key, version)
            if nid is not None:
                return nid
        return None

    def max_version(self, key: bytes) -> int | None:
        """The highest version indexed for ``key`` (persisted or in memory), or None.

        Remembered once looked up (up to ``KNOWN_MAX`` keys), and kept current by
        ``add_many``, through which every event indexed passes: the writer's, and
        other processes' commits as a reader catches up. Loading or resetting the
        index forgets it.
        """
        known = self.known_max
        if key in known:
            return known[key]
        runs = self.runs if self.key_filter is None or key in self.key_filter else ()
        found = [v for v in (run.last_version(key) for run in runs) if v is not None]
        if key in self.mem_max:
            found.append(self.mem_max[key])
        top = max(found, default=None)
        if len(known) >= KNOWN_MAX:
            known.clear()
        known[key] = top
        return top

    def versions(self, key: bytes, after: int | None = None) -> list[tuple[int, int]]:
        """(version, notification id) of ``key``'s events in order (above ``after``)."""
        found: list[tuple[int, int]] = []
        for run in self.runs:
            found.extend(run.versions(key, after))
        mem = self._versions_table().get(key, {}).items() if key in self.mem_max else ()
        found.extend(mem if after is None else ((v, n) for v, n in mem if v > after))
        found.sort()
        return found

    # -- flushing (writer only) ---------------------------------------------

    def flush(
        self, last_commit: int | None, end: int, tracking: dict[str, int], *, wait: bool = False
    ) -> None:
        """Persist the in-memory table: offsets, a new run, checkpoint.

        A merge the policy asks for runs in the background (``merging.py``); a
        finished one is adopted here, and named by this checkpoint in place of
        its inputs. ``wait`` (closing): finish the merge in flight, start none.
        """
        os.makedirs(self.dir, exist_ok=True)
        if not self._offsets_writable:
            if self._offsets_fd is not None:
                os.close(self._offsets_fd)
            self._offsets_fd = os.open(self.offsets_path, os.O_RDWR | os.O_CREAT, 0o644)
            self._offsets_writable = True
        new: Run | None = None
        if self.mem_offsets:
            fd = self._offsets_fd
            assert fd is not None
            start, stop = _groups(self.covered), _groups(self.covered + len(self.mem_offsets))
            firsts = range(start * GROUP + 1, stop * GROUP, GROUP)  # groups that begin here
            groups = array("Q", (self.mem_offsets[nid - self.covered - 1] for nid in firsts))
            try:
                fileio.write_all(fd, groups.tobytes(), start * OFFSET.size)
                fileio.fsync(fd)
            except OSError as e:
                raise fileio.FileWriteError(e, "writing", self.offsets_path) from e
            entries = sorted_entries(self.mem_keys, self.mem_versions, self.covered + 1)
            if self.key_filter is not None:
                self.key_filter.add_many(self._fresh)
            new = self._new_run([entries])
        obsolete = self._merges.after_flush(self.runs, new, wait=wait)
        fileio.fsync_dir(self.dir)
        covered = self.covered + len(self.mem_offsets)
        reached = Mark(covered, last_commit, end)
        durable = self.durable if self.durable and self.durable.covered > covered else reached
        doc = {
            "format": CHECKPOINT_FORMAT,
            "covered": covered,
            "last_commit": last_commit,
            "end": end,
            "durable": durable.to_json(),
            "tracking": tracking,
            "next_run": self.next_run,
            "runs": [{"name": r.name, "count": r.count, "crc": r.crc} for r in self.runs],
        }
        write_checkpoint(self.checkpoint_path, doc)
        self.durable = durable
        for run in obsolete:
            run.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(run.path)
        self.covered = covered
        self.last_commit, self.end, self.tracking = last_commit, end, dict(tracking)
        self._forget_table()

    def _new_run(self, chunks: Iterable[Chunk]) -> Run:
        self.next_run += 1
        return create_run(self.dir, self.next_run - 1, chunks)

    def close(self) -> None:
        self._merges.abandon()
        for run in self.runs:
            run.close()
        self.runs = []
        if self._offsets_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._offsets_fd)
            self._offsets_fd = None
            self._offsets_writable = False


def _groups(covered: int) -> int:
    """How many entries the offsets file has for events ``1..covered``."""
    return -(-covered // GROUP)


def group_first_ids(covered: int) -> range:
    """The first id of each group of events ``1..covered`` (one offsets entry each)."""
    return range(1, covered + 1, GROUP)


def _durable_mark(doc: dict[str, Any]) -> Mark | None:
    """The durable mark a checkpoint records (its own coverage, before the field existed)."""
    mark = doc.get("durable") or doc
    if mark.get("end") is None:
        return None
    last = mark.get("last_commit")
    return Mark(int(mark["covered"]), None if last is None else int(last), int(mark["end"]))
