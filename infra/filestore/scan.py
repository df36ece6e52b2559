"""The one scanner of a log's commits, used by recovery, ``check`` and the tests.

It reads commits in order from a location and applies the rules of
docs/FORMAT.md ("Recovery rules") in one place:

- A commit cut short at the end of the **last** segment (a short header or
  body, or a tail of zero bytes) is a **torn tail**, an interrupted write, but
  only past the store's durable mark (the last commit it ever recorded as
  durable). Anything missing before that mark is damage.
- Anything else that fails a check is damage: ``StoreCorruptedError`` naming
  the file and byte offset. A missing segment is damage too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

from eventfold.infra import fileio
from eventfold.infra.errors import StoreCorruptedError
from eventfold.infra.filestore.format import (
    MAX_HEADER_SIZE,
    FormatError,
    Header,
    RecordedEvent,
    decode_body,
    decode_header,
    new_names,
    pack_location,
    unpack_location,
)
from eventfold.infra.filestore.names import SegmentNames, cached

SEGMENT_SUFFIX = ".seg"
ZERO_CHUNK = 256 * 1024


def segment_name(number: int) -> str:
    return f"{number:08d}{SEGMENT_SUFFIX}"


def segment_numbers(log_dir: str) -> list[int]:
    """The numbers of the segment files in a log directory, in order (none if it is missing)."""
    try:
        names = os.listdir(log_dir)
    except FileNotFoundError:
        return []
    return sorted(
        int(name.removesuffix(SEGMENT_SUFFIX))
        for name in names
        if name.endswith(SEGMENT_SUFFIX) and name.removesuffix(SEGMENT_SUFFIX).isdigit()
    )


@dataclass(frozen=True)
class TornTail:
    """Bytes after the last complete commit: an interrupted write."""

    path: str
    offset: int
    length: int


@dataclass(frozen=True)
class ScannedCommit:
    """One complete, verified commit and where it is."""

    segment: int
    offset: int
    header: Header
    tracking: tuple[str, int] | None
    events: list[tuple[int, RecordedEvent]]  # (offset in the uncompressed body, event)

    @property
    def end(self) -> int:
        """The packed location just after this commit."""
        return pack_location(self.segment, self.offset + self.header.frame_len)

    @property
    def location(self) -> int:
        """The packed location of this commit: every one of its events is found from it."""
        return pack_location(self.segment, self.offset)


class CommitScanner:
    """Commits of the log in ``log_dir`` from ``location`` (whose first id is ``next_id``, or
    whatever it is if None: a segment read alone).

    Iterate it; afterwards ``torn_tail`` is the torn tail found (or None) and
    ``end`` the location after the last complete commit. ``durable_end``: the
    location up to which commits are known durable; a torn tail before it is
    damage. ``last_segment``: the highest segment the log must reach (None:
    whatever the directory holds when the scan starts). ``names``: the originator
    dictionaries a log keeps (``EFC3``), used and read further by the scan (a scan
    that starts inside a segment reads its dictionary up to there once).
    """

    def __init__(
        self,
        log_dir: str,
        location: int,
        next_id: int | None,
        *,
        durable_end: int = 0,
        last_segment: int | None = None,
        names: dict[int, SegmentNames] | None = None,
    ) -> None:
        self.log_dir = log_dir
        self.end = location
        self.next_id = next_id
        self.durable_end = durable_end
        self.last_segment = last_segment
        self.torn_tail: TornTail | None = None
        self.names: SegmentNames | None = None  # the dictionary of the segment being read
        self.cache = names

    def path(self, segment: int) -> str:
        return os.path.join(self.log_dir, segment_name(segment))

    def __iter__(self) -> Iterator[ScannedCommit]:
        seg, off = unpack_location(self.end)
        last = self.last_segment
        if last is None:
            last = max(segment_numbers(self.log_dir), default=seg)
        self.torn_tail = None
        while True:
            # Look for a later segment *before* reading this one: a writer only
            # starts a segment after the previous one is complete.
            has_next = seg < last or os.path.exists(self.path(seg + 1))
            try:
                fd = os.open(self.path(seg), os.O_RDONLY)
            except FileNotFoundError:
                if has_next or pack_location(seg, 0) < self.durable_end:
                    raise StoreCorruptedError(self.path(seg), 0, "segment is missing") from None
                return
            try:
                size = os.fstat(fd).st_size
                while off < size:
                    commit = self._commit(fd, seg, off, size, has_next)
                    if commit is None:
                        return
                    yield commit
                    self.next_id = commit.header.first_id + commit.header.n_events
                    off += commit.header.frame_len
                    self.end = pack_location(seg, off)
            finally:
                os.close(fd)
            if not has_next:
                if pack_location(seg, off) < self.durable_end:
                    self._damage(seg, off, "the log ends before its last durable commit")
                return
            seg, off = seg + 1, 0
            self.end = pack_location(seg, 0)

    def _commit(
        self, fd: int, seg: int, off: int, size: int, has_next: bool
    ) -> ScannedCommit | None:
        raw = fileio.read_exact(fd, MAX_HEADER_SIZE, off)
        try:
            header = decode_header(raw)
        except FormatError as e:
            if e.incomplete or _is_zero(fd, off, size):
                self._torn(seg, off, size, has_next)
                return None
            raise StoreCorruptedError(self.path(seg), off, e.reason) from None
        if off + header.frame_len > size:
            self._torn(seg, off, size, has_next)
            return None
        if self.next_id is not None and header.first_id != self.next_id:
            msg = f"commit starts at id {header.first_id}, expected {self.next_id}"
            raise StoreCorruptedError(self.path(seg), off, msg)
        body = fileio.read_exact(fd, header.body_len, off + header.size)
        names = self.names
        if names is None or names.segment != seg:
            names = SegmentNames(seg) if self.cache is None else cached(self.cache, seg)
            self.names = names
        if header.version >= 3 and names.upto < off:  # a scan that starts inside a segment
            names.extend(fd, self.path(seg), off)
        try:
            tracking, events = decode_body(header, body, lambda: names.names)
            if names.upto == off and header.version >= 3:
                names.take(*new_names(body), off + header.frame_len)
            elif names.upto == off:
                names.upto = off + header.frame_len  # other commits add no names
        except FormatError as e:
            at = off + header.size + e.offset
            raise StoreCorruptedError(self.path(seg), at, e.reason) from None
        return ScannedCommit(seg, off, header, tracking, events)

    def _torn(self, seg: int, off: int, size: int, has_next: bool) -> None:
        if has_next:
            self._damage(seg, off, "incomplete commit before the end of the log")
        if pack_location(seg, off) < self.durable_end:
            self._damage(seg, off, "incomplete commit before the last durable commit")
        self.torn_tail = TornTail(self.path(seg), off, size - off)

    def _damage(self, seg: int, off: int, reason: str) -> None:
        seg_durable, off_durable = unpack_location(self.durable_end)
        if pack_location(seg, off) < self.durable_end:
            reason += (
                f" (the store recorded commits up to {segment_name(seg_durable)} byte "
                f"{off_durable:,} as durable: committed data is missing)"
            )
        raise StoreCorruptedError(self.path(seg), off, reason)


def _is_zero(fd: int, off: int, size: int) -> bool:
    while off < size:
        chunk = os.pread(fd, min(ZERO_CHUNK, size - off), off)
        if not chunk or chunk.count(0) != len(chunk):
            return False
        off += len(chunk)
    return True
