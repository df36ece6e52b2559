"""Check a store read-only (every checksum, and the index against the log); repair a torn tail.

``check_store`` never changes anything unless ``repair`` is true, and repair
only ever truncates a torn tail (keeping a copy) or rebuilds the index: damage
to committed data is reported, never "repaired" away.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from hashlib import blake2b

from eventfold.infra import fileio
from eventfold.infra.errors import StoreCorruptedError
from eventfold.infra.log import SEGMENT_SUFFIX, Log, LogConfig
from eventfold.infra.logformat import (
    HEADER_SIZE,
    FormatError,
    decode_body,
    decode_header,
    pack_position,
)
from eventfold.infra.logindex import OFFSET, LogIndex, originator_key
from eventfold.infra.runs import ENTRY, VERSION_BIAS

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
class StoreReport:
    path: str
    logs: list[LogReport]

    @property
    def sound(self) -> bool:
        return all(log.sound for log in self.logs)


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


def check_store(store: str, *, repair: bool = False) -> StoreReport:
    """Check every log of a store; with ``repair``, drop torn tails and rebuild indexes."""
    if not os.path.isdir(store):
        msg = f"{store}: no such store directory"
        raise FileNotFoundError(msg)
    reports = []
    for path in find_logs(store):
        report = check_log(path)
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
        log._become_writer()  # refuses while another process is writing
        log._flush_index()
        report.repairs += log.recovery_notes
    finally:
        log.close()
    after = check_log(path)
    report.torn_tail, report.index = after.torn_tail, after.index
    report.problems = after.problems


def check_log(path: str) -> LogReport:
    report = LogReport(os.path.basename(path), path)
    segments = sorted(
        int(n.removesuffix(SEGMENT_SUFFIX))
        for n in os.listdir(path)
        if n.endswith(SEGMENT_SUFFIX) and n.removesuffix(SEGMENT_SUFFIX).isdigit()
    )
    report.segments = len(segments)
    index = LogIndex(path)
    reason = index.load()
    if reason is None and not os.path.exists(index.checkpoint_path):
        report.index = "absent"
    elif reason is not None:
        report.index = f"damaged: {reason}"
    digest = 0
    offsets_fd = index._offsets_fd
    next_id = 1
    for number in segments:
        seg_path = os.path.join(path, f"{number:08d}{SEGMENT_SUFFIX}")
        with open(seg_path, "rb") as f:
            data = f.read()
        off = 0
        while off < len(data):
            try:
                header = decode_header(data[off : off + HEADER_SIZE])
            except FormatError as e:
                if len(data) - off < HEADER_SIZE or not any(data[off:]):
                    report.torn_tail = Tail(seg_path, off, len(data) - off)
                    break
                report.problems.append(Problem(seg_path, off, e.reason))
                return report
            if off + header.frame_len > len(data):
                report.torn_tail = Tail(seg_path, off, len(data) - off)
                break
            if header.first_id != next_id:
                reason = f"commit starts at id {header.first_id}, expected {next_id}"
                report.problems.append(Problem(seg_path, off, reason))
                return report
            body = data[off + HEADER_SIZE : off + header.frame_len]
            try:
                _, events = decode_body(header, body)
            except FormatError as e:
                report.problems.append(Problem(seg_path, off + HEADER_SIZE + e.offset, e.reason))
                return report
            for body_offset, event in events:
                if event.id <= index.covered:
                    position = pack_position(number, off + HEADER_SIZE + body_offset)
                    entry = ENTRY.pack(
                        originator_key(event.originator_id),
                        event.originator_version + VERSION_BIAS,
                        event.id,
                    )
                    digest = (digest + _entry_hash(entry)) & MASK64
                    if report.index == "ok" and offsets_fd is not None:
                        raw = fileio.read_exact(offsets_fd, 8, (event.id - 1) * 8)
                        if OFFSET.unpack(raw)[0] != position:
                            report.index = f"damaged: offset of event {event.id} is wrong"
            next_id += header.n_events
            report.commits += 1
            report.events += header.n_events
            off += header.frame_len
        if report.torn_tail is not None and number != segments[-1]:
            tail = report.torn_tail
            report.problems.append(
                Problem(tail.file, tail.offset, "incomplete commit before the end of the log")
            )
            report.torn_tail = None
            return report
    if report.index == "ok":
        report.index = _check_runs(index, digest, next_id - 1)
    index.close()
    return report


def _entry_hash(entry: bytes) -> int:
    return int.from_bytes(blake2b(entry, digest_size=8).digest(), "little")


def _check_runs(index: LogIndex, log_digest: int, last_id: int) -> str:
    """Compare the runs with the log as multisets (order-free sum of entry hashes)."""
    if index.covered > last_id:
        return "damaged: index covers events the log does not have"
    digest = 0
    for run in index.runs:
        problem = run.verify()
        if problem:
            return f"damaged: {problem}"
        for entry in run.entries():
            digest = (digest + _entry_hash(entry)) & MASK64
    if digest != log_digest:
        return "damaged: index runs do not match the log"
    return "ok"
