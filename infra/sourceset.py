"""Which files a list of sources names, and in what order.

A source is a file, a directory, a glob pattern (``*``, ``?``, ``[...]``,
``**`` across directories), or ``-`` for standard input; ``--sources-from
LIST`` adds one source a line (or NUL-separated, as ``find -print0`` writes
them). The result is a list of paths, each real file once (its first place
wins), in this order:

- the sources in the order given; a directory's files and a pattern's matches
  in name order, where runs of digits compare as numbers (``part2`` before
  ``part10``), by their path below the directory;
- with ``order="mtime"``, every file by its modification time, oldest first
  (ties in the order above); standard input comes after the files.

In a directory (recursively with ``recursive``), and among a pattern's
matches inside directories it names, a file counts when its name ends in
``.jsonl``, ``.ndjson`` or ``.json``, optionally followed by a rotation
suffix (``.1``, ``-20261130``) and a compression suffix (``.gz``, ``.bz2``,
``.xz``, ``.zst``, ``.zstd``): ``NAMES`` below. Hidden files (``.name``) are
skipped; a directory reached again through a link (a loop) is not read again.
A file named directly, or matched by a pattern, counts whatever its name;
what it holds decides (``infra/sourcefile.py``).
"""

from __future__ import annotations

import glob
import os
import re
import stat
import sys
from collections.abc import Iterable, Iterator, Sequence

from eventfold.infra.sourcefile import SourceError

STDIN = "-"
ORDERS = ("name", "mtime")
NAMES = re.compile(
    r"\.(jsonl|ndjson|json)(\.[0-9]+|-[0-9][0-9A-Za-z_:+-]*)?(\.(gz|bz2|xz|zst|zstd))?$",
    re.IGNORECASE,
)
_DIGITS = re.compile(r"([0-9]+)")
_MAGIC = re.compile(r"[*?[]")
NAMES_TEXT = (
    "*.jsonl, *.ndjson, *.json, with a rotation suffix (.1, -20261130) and .gz, .bz2, .xz, "
    ".zst, .zstd"
)


def counts_as_source(name: str) -> bool:
    """Whether a file called ``name`` in a directory is read as a source."""
    return not name.startswith(".") and NAMES.search(name) is not None


def name_key(path: str) -> list[str | int]:
    """Name order: text, with runs of digits compared as numbers."""
    parts: list[str | int] = []
    for i, part in enumerate(_DIGITS.split(path)):
        parts.append(int(part) if i % 2 else part)
    return parts


def _name_order(path: str) -> tuple[list[str | int], str]:
    """``name_key``, ties (``part01``, ``part1``) broken by the text: an order that does
    not depend on the order a directory lists its entries in."""
    return name_key(path), path


def read_source_list(path: str) -> list[str]:
    """The sources listed in the file ``path`` (``-``: standard input): one a line, or
    NUL-separated; blank lines are skipped. ``SourceError`` when it cannot be read."""
    try:
        if path == STDIN:
            data = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as f:
                data = f.read()
    except OSError as e:
        msg = f"{path}: cannot read the list of sources ({e.strerror or e})"
        raise SourceError(msg) from None
    separator = b"\0" if b"\0" in data else b"\n"
    entries = []
    for number, raw in enumerate(data.split(separator), 1):
        entry = raw.rstrip(b"\r") if separator == b"\n" else raw
        if not entry.strip():
            continue
        try:
            entries.append(os.fsdecode(entry))
        except UnicodeDecodeError:  # pragma: no cover - fsdecode uses surrogateescape
            msg = f"{path}: line {number}: not a path"
            raise SourceError(msg) from None
    return entries


def expand_sources(
    sources: Sequence[str],
    *,
    recursive: bool = False,
    order: str = "name",
    sources_from: str | None = None,
) -> list[str]:
    """The files ``sources`` (and the list in ``sources_from``) name, each once, in order.

    ``SourceError`` names the first source that names nothing: a missing path, a
    pattern that matches no file, a directory with no source file in it; or says
    that the whole list names no file.
    """
    if order not in ORDERS:
        msg = f"unknown order {order!r} (choose from {', '.join(ORDERS)})"
        raise SourceError(msg)
    given = list(sources)
    if sources_from is not None:
        if sources_from == STDIN and STDIN in given:
            msg = "standard input cannot be both a source and the list of sources"
            raise SourceError(msg)
        given += read_source_list(sources_from)
        if sources_from == STDIN and STDIN in given:  # the list read from it names it
            msg = "standard input cannot be both a source and the list of sources"
            raise SourceError(msg)
    files: list[str] = []
    seen: set[str] = set()
    stdin = False
    for source in given:
        if source == STDIN:
            if stdin:
                msg = "standard input (-) is named twice: it can be read only once"
                raise SourceError(msg)
            stdin = True
            files.append(STDIN)
            continue
        for path in _files_of(source, recursive):
            real = os.path.realpath(path)
            if real not in seen:
                seen.add(real)
                files.append(path)
    if not files:
        where = "standard input" if sources_from == STDIN else sources_from
        msg = f"{where or 'the command line'}: the list of sources names no source"
        raise SourceError(msg)
    if order == "mtime":
        files = _by_mtime(files)
    return files


def _files_of(source: str, recursive: bool) -> list[str]:
    try:
        mode = os.stat(source).st_mode
    except FileNotFoundError:
        if _MAGIC.search(source):
            return _matches(source, recursive)
        msg = f"{source}: no such file or directory"
        raise SourceError(msg) from None
    except OSError as e:
        msg = f"{source}: cannot read the source ({e.strerror or e})"
        raise SourceError(msg) from None
    if stat.S_ISDIR(mode):
        found = sorted(_directory(source, recursive), key=_name_order)
        if not found:
            how = " (or below it)" if recursive else ""
            more = "" if recursive else "; --recursive reads its subdirectories too"
            msg = f"{source}: no source file in it{how} (names read: {NAMES_TEXT}){more}"
            raise SourceError(msg)
        return found
    return [source]


def _matches(pattern: str, recursive: bool) -> list[str]:
    found: list[str] = []
    for match in sorted(glob.glob(pattern, recursive=True), key=_name_order):
        if os.path.isdir(match):
            found += sorted(_directory(match, recursive), key=_name_order)
        else:
            found.append(match)
    if not found:
        msg = f"{pattern}: the pattern matches no file"
        raise SourceError(msg)
    return found


def _directory(directory: str, recursive: bool, seen: set[str] | None = None) -> Iterator[str]:
    """The source files of ``directory`` (and below it, with ``recursive``), unordered.

    A directory reached again through a link (a loop, or a second way to the same
    place) is read once: its files are the same files.
    """
    seen = set() if seen is None else seen
    seen.add(os.path.realpath(directory))
    try:
        entries = list(os.scandir(directory))
    except OSError as e:
        msg = f"{directory}: cannot list the directory ({e.strerror or e})"
        raise SourceError(msg) from None
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if _is_dir(entry):
            if recursive and os.path.realpath(entry.path) not in seen:
                yield from _directory(entry.path, recursive, seen)
        elif counts_as_source(entry.name):
            yield entry.path


def _is_dir(entry: os.DirEntry[str]) -> bool:
    """Whether ``entry`` is a directory (or a link to one; a broken link is not)."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def _by_mtime(files: Iterable[str]) -> list[str]:
    listed = list(files)

    def key(item: tuple[int, str]) -> tuple[int, int]:
        place, path = item
        if path == STDIN:
            return (sys.maxsize, place)
        try:
            return (os.stat(path).st_mtime_ns, place)
        except OSError:
            return (0, place)  # opening it will say what is wrong

    return [path for _, path in sorted(enumerate(listed), key=key)]
