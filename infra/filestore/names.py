"""A segment's originator dictionary: the originator ids its ``EFC3`` and ``EFC4`` commits
name.

An ``EFC3`` or ``EFC4`` commit writes in full only the originator ids that no earlier
commit of its segment wrote (docs/FORMAT.md); its events name originators by number in
the dictionary of the segment: the new ids of its ``EFC3`` and ``EFC4`` commits, in
order.
So a commit is read with the dictionary up to it, built here from the bodies
before it (each checksummed; only their names sections are parsed, nothing is
decompressed) and kept as the segment is read further.
"""

from __future__ import annotations

from eventfold.infra import fileio
from eventfold.infra.errors import StoreCorruptedError
from eventfold.infra.filestore.format import (
    MAX_HEADER_SIZE,
    FormatError,
    Name,
    crc32,
    decode_header,
    new_names,
)

MAX_NAMES = 1 << 18  # names a segment's dictionary holds at most (a writer starts a new segment)


class SegmentNames:
    """The dictionary of segment ``segment`` up to byte ``upto`` (the end of a commit)."""

    __slots__ = ("_lookup", "names", "segment", "upto")

    def __init__(self, segment: int) -> None:
        self.segment = segment
        self.names: list[Name] = []
        self.upto = 0
        self._lookup: dict[Name, int] | None = None

    def take(self, known: int, new: list[Name], end: int) -> None:
        """Add the names of the ``EFC3`` commit that ends at byte ``end`` (``known``: the
        dictionary's size before it, by the commit). FormatError (offset 0) if that is not
        its size."""
        if known != len(self.names):
            msg = (
                f"the commit's originators follow {known:,} earlier names, "
                f"but the segment's commits before it hold {len(self.names):,}"
            )
            raise FormatError(msg, 0)
        if self._lookup is not None:
            lookup = self._lookup
            for n, name in enumerate(new, known):
                lookup[name] = n
        self.names += new
        self.upto = end

    def lookup(self) -> dict[Name, int]:
        """The names to their numbers (built once: a writer's)."""
        if self._lookup is None:
            self._lookup = {name: n for n, name in enumerate(self.names)}
        return self._lookup

    def extend(self, fd: int, path: str, offset: int) -> None:
        """Read the commits from ``upto`` to byte ``offset`` of the segment (open as ``fd``,
        at ``path``): their checksums verified, their names taken.
        ``StoreCorruptedError`` names the file and offset of a commit that does not add up."""
        off = self.upto
        while off < offset:
            raw = fileio.read_exact(fd, MAX_HEADER_SIZE, off)
            at = off
            try:
                header = decode_header(raw)
                at = off + header.size
                body = fileio.read_exact(fd, header.body_len, at)
                if len(body) != header.body_len:
                    raise FormatError("commit cut short", 0)
                if crc32(body) != header.body_crc:
                    raise FormatError("commit checksum mismatch", 0)
                if header.version >= 3:
                    self.take(*new_names(body), off + header.frame_len)
                self.upto = off + header.frame_len  # other commits add no names
            except FormatError as e:
                at += e.offset
                reason = f"{e.reason} (reading the segment's originator dictionary)"
                raise StoreCorruptedError(path, at, reason) from None
            off = self.upto
        if off != offset:
            msg = f"no commit starts at byte {offset:,} (reading the originator dictionary)"
            raise StoreCorruptedError(path, offset, msg)


def cached(cache: dict[int, SegmentNames], segment: int, keep: int = 2) -> SegmentNames:
    """The dictionary of ``segment`` kept in ``cache`` (a new, empty one if none is), with at
    most ``keep`` segments' kept: the lowest is let go first (a writer is at the highest)."""
    names = cache.get(segment)
    if names is None:
        while len(cache) >= keep:
            del cache[min(cache)]
        names = cache[segment] = SegmentNames(segment)
    return names
