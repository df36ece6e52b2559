"""Check a store read-only (every checksum, and the index against the log); repair a torn tail.

``check_store`` never changes anything unless ``repair`` is true, and repair
only ever truncates a torn tail (keeping a copy) or rebuilds the index: damage
to committed data is reported, never "repaired" away. The log is read by the
one commit scanner (``scan.py``) that recovery uses, so both apply the
same rules; what a crash can leave behind (a torn tail past the durable mark,
an index whose first checkpoint was never written, stray files of an
interrupted flush) is never reported as damage.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from hashlib import blake2b

from eventfold.infra import fileio
from eventfold.infra.errors import StoreCorruptedError, UsageError
from eventfold.infra.filestore.format import pack_location
from eventfold.infra.filestore.index import GROUP, OFFSET, LogIndex, originator_key
from eventfold.infra.filestore.log import Log, LogConfig
from eventfold.infra.filestore.runs import ENTRY, VERSION_BIAS
from eventfold.infra.filestore.scan import SEGMENT_SUFFIX, CommitScanner, segment_numbers

MASK64 = (1 << 64) - 1


@dataclass
class Problem:
    file: str
    offset: int
    reason: str


@dataclass
class Tail:
    """Bytes after the last complete commit of the log: an interrupted write."""

    file: str
    offset: int
    length: int


@dataclass
class LogReport:
    name: str
    path: str
    segments: int = 0
    commits: int = 0
    events: int = 0
    torn_tail: Tail | None = None
    index: str = "ok"
    problems: list[Problem] = field(default_factory=list)
    repairs: list[str] = field(default_factory=list)

    @property
    def sound(self) -> bool:
        return not self.problems and self.index in ("ok", "absent")


@dataclass
class DerivedReport:
    """A structure derived from the log (a dedup index, a projection snapshot), checked."""

    kind: str
    path: str
    status: str  # ok, absent, damaged, repaired
    problems: list[Problem] = field(default_factory=list)

    @property
    def sound(self) -> bool:
        return self.status != "damaged"


@dataclass
class StoreReport:
    path: str
    logs: list[LogReport]
    derived: list[DerivedReport] = field(default_factory=list)

    @property
    def sound(self) -> bool:
        return all(log.sound for log in self.logs) and all(d.sound for d in self.derived)


def find_logs(store: str) -> list[str]:
    """The log directories in a store (those holding a lock file or segments)."""
    found = []
    for name in sorted(os.listdir(store)):
        path = os.path.join(store, name)
        if os.path.isdir(path) and (
            os.path.exists(os.path.join(path, "LOCK"))
            or any(n.endswith(SEGMENT_SUFFIX) for n in os.listdir(path))
        ):
            found.append(path)
    return found


def check_store(
    store: str, *, repair: bool = False, progress: Callable[[int, int], None] | None = None
) -> StoreReport:
    """Check every log of a store; with ``repair``, drop torn tails and rebuild indexes.

    ``progress(done, total)``: bytes of the logs' segments read, of their size, per commit.
    """
    if not os.path.isdir(store):
        msg = f"{store}: no such store directory"
        raise UsageError(msg)
    logs = find_logs(store)
    if not logs:
        msg = f"{store}: not a file store (no log in it); nothing to check"
        raise UsageError(msg)
    reports = []
    total = sum(
        os.path.getsize(os.path.join(path, name))
        for path in logs
        for name in os.listdir(path)
        if name.endswith(SEGMENT_SUFFIX)
    )
    done = 0

    def scanned(length: int) -> None:
        nonlocal done
        done = min(done + length, total)
        if progress is not None:
            progress(done, total)

    for path in logs:
        report = check_log(path, scanned)
        if repair and not report.problems and (report.torn_tail or not report.sound):
            _repair(path, report)
        reports.append(report)
    return StoreReport(store, reports)


def _repair(path: str, report: LogReport) -> None:
    rebuild = report.index not in ("ok", "absent")
    try:
        log = Log(path, LogConfig(lock_timeout=0), rebuild_index=rebuild)
    except StoreCorruptedError as e:
        report.problems.append(Problem(e.path, e.offset, e.reason))
        return
    try:
        log.recover()  # refuses while another process is writing
        report.repairs += log.recovery_notes
    finally:
        log.close()
    after = check_log(path)
    report.torn_tail, report.index = after.torn_tail, after.index
    report.problems = after.problems


def check_log(path: str, scanned: Callable[[int], None] | None = None) -> LogReport:
    """Read every commit of the log in ``path`` and compare the index with it; change nothing.
    ``scanned`` is told the length of each commit read."""
    report = LogReport(os.path.basename(path), path)
    report.segments = len(segment_numbers(path))
    index = LogIndex(path)
    reason = index.load(writable=False)
    if reason is None and not os.path.exists(index.checkpoint_path):
        report.index = "absent"
    elif reason in ("no index checkpoint", "index of an older format"):
        report.index = "absent"  # a first flush a crash interrupted, or an older format:
        # the next writer rebuilds it
    elif reason is not None:
        report.index = f"damaged: {reason}"
    durable = index.durable
    scanner = CommitScanner(path, pack_location(1, 0), 1, durable_end=durable.end if durable else 0)
    digest = 0
    try:
        for commit in scanner:
            for _, event in commit.events:
                if event.id > index.covered:
                    continue
                entry = ENTRY.pack(
                    originator_key(event.originator_id),
                    event.originator_version + VERSION_BIAS,
                    event.id,
                )
                digest = (digest + _entry_hash(entry)) & MASK64
                if report.index == "ok" and (event.id - 1) % GROUP == 0:
                    report.index = _check_offset(index, event.id, commit.location)
            report.commits += 1
            report.events += commit.header.n_events
            if scanned is not None:
                scanned(commit.header.frame_len)
    except StoreCorruptedError as e:
        report.problems.append(Problem(e.path, e.offset, e.reason))
        index.close()
        return report
    if scanner.torn_tail is not None:
        tail = scanner.torn_tail
        report.torn_tail = Tail(tail.path, tail.offset, tail.length)
    if report.index == "ok":
        report.index = _check_runs(index, digest, (scanner.next_id or 1) - 1)
    index.close()
    return report


def _check_offset(index: LogIndex, nid: int, location: int) -> str:
    """Check the offsets entry of the group that ``nid`` begins: its commit's location."""
    assert index.offsets_fd is not None
    at = (nid - 1) // GROUP * OFFSET.size
    raw = fileio.read_exact(index.offsets_fd, OFFSET.size, at)
    if len(raw) != OFFSET.size or OFFSET.unpack(raw)[0] != location:
        return f"damaged: {index.offsets_path}: byte offset {at}: offset of event {nid} is wrong"
    return "ok"


def _entry_hash(entry: bytes) -> int:
    return int.from_bytes(blake2b(entry, digest_size=8).digest(), "little")


def _check_runs(index: LogIndex, log_digest: int, last_id: int) -> str:
    """Verify each run (blocks, order, fences) and compare the runs with the log as multisets."""
    if index.covered > last_id:
        return "damaged: index covers events the log does not have"
    digest = 0
    for run in index.runs:
        problem = run.verify()
        if problem is not None:
            return f"damaged: {problem}"
        for entry in run.entries():
            digest = (digest + _entry_hash(entry)) & MASK64
    if digest != log_digest:
        return "damaged: index runs do not match the log"
    return "ok"
