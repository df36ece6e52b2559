"""Index entries made and sorted a column at a time, with ``numpy``.

An index run's entries are fixed-width rows of big-endian u64 words (an opaque
16-byte key is two such words), sorted as their bytes are. Packing and sorting a
flush's entries (or merging runs) one Python object each cost a step per entry;
here the words are columns, ordered by their first word and, only where that
order is wrong, by all of them (first word first: the bytes' order, as every
word is unsigned and big-endian), and the rows come out as one buffer, ready for
``runs.write_run``. ``numpy`` is imported by ``load``: when a process becomes a
log's writer, or merges runs (not by readers, which never flush).
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy
    from numpy.typing import NDArray

    Words = NDArray[numpy.uint64]


_loaded: list[ModuleType] = []


def load() -> ModuleType:
    """``numpy``, imported on the first call. A writer calls this when it takes a log's
    lock: its last flush may run as the interpreter shuts down, when no ``import``
    statement works any more, so the functions here use the module held by this."""
    if not _loaded:
        import numpy

        _loaded.append(numpy)
    return _loaded[0]


def words_of(joined: bytes, count: int, width: int) -> Words:
    """``count`` rows of ``width`` big-endian u64 words, laid end to end in ``joined``, as a
    ``(count, width)`` array of their values."""
    np = load()
    if len(joined) != 8 * width * count:
        msg = f"{len(joined)} bytes are not {count} rows of {width} words"
        raise ValueError(msg)
    words: Words = np.frombuffer(joined, ">u8").reshape(count, width).astype(np.uint64)
    return words


def rows(columns: Sequence[Words], *, sort: bool) -> bytes:
    """The rows whose words are ``columns`` (one value per row each), as big-endian bytes
    laid end to end; ``sort``: in the order of their bytes (ties keep their order)."""
    np = load()
    count = len(columns[0])
    if sort and count > 1:
        # Most rows differ in their first word already (and where they tie, the rows
        # often come in order): order by it, then by all the words only if that fails.
        order = np.argsort(columns[0], kind="stable")
        picked = [column[order] for column in columns]
        if not _in_order(picked):
            order = np.lexsort(list(reversed(columns)))
            picked = [column[order] for column in columns]
        columns = picked
    out = np.empty((count, len(columns)), ">u8")
    for w, column in enumerate(columns):
        out[:, w] = column
    laid: bytes = out.tobytes()
    return laid


def _in_order(columns: Sequence[Words]) -> bool:
    """Whether the rows with these words are in the order of their bytes."""
    np = load()
    tied = np.ones(len(columns[0]) - 1, bool)  # neighbours equal in the words so far
    for column in columns:
        before, after = column[:-1], column[1:]
        if np.any(tied & (before > after)):
            return False
        tied &= before == after
        if not tied.any():
            return True
    return True
