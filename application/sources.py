"""The sources a command reads: the files a source list names, each checked before
anything is recorded.

``resolve_sources`` expands the list (``infra/sourceset.py``: files,
directories, patterns, ``-``, ``--sources-from``; name or modification-time
order) and opens every file once to look at it: a file that is not JSON Lines
(binary, an archive, an unknown compression) is refused by
``infra/sourcefile.open_source``; a file whose first lines are mostly invalid
is refused here, unless ``force``. Either way the error names the file and
nothing has been read from any source yet.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, replace

from eventfold.application.ingest.rules import is_blank, parse_event
from eventfold.infra.lines import MAX_LINE_BYTES, read_lines, skip_bom
from eventfold.infra.sourcefile import SourceError, open_source
from eventfold.infra.sourceset import STDIN, expand_sources

SAMPLE_LINES = 1000  # the first non-blank lines looked at
SAMPLE_BYTES = 16 << 20  # and at most this much of the file
SAMPLE_MINIMUM = 20  # a file with fewer lines than this is never refused as mostly invalid


class MostlyInvalidError(SourceError):
    """Most of a source's first lines are not valid events (exit code 2)."""


@dataclass(frozen=True)
class SourceList:
    """How a command was asked to find its sources (its command-line options)."""

    sources: Sequence[str]
    recursive: bool = False
    order: str = "name"
    sources_from: str | None = None
    force: bool = False

    def absolute(self) -> SourceList:
        """The same list with every path absolute (``-``, standard input, stays): for a
        command suggested to a reader elsewhere (an HTML page, ``--json``)."""
        return replace(
            self,
            sources=[_absolute(s) for s in self.sources],
            sources_from=None if self.sources_from is None else _absolute(self.sources_from),
        )

    def arguments(self, flag: str | None = None) -> list[str]:
        """The list as command-line words, as it was given: each source (after ``flag``,
        such as ``--source``, when given; a name that starts with ``-`` as ``./-name``,
        so it is not taken for an option), then the options that are not the defaults
        (``-r``, ``--order mtime``, ``--sources-from LIST``, ``--force``)."""
        words: list[str] = []
        for source in self.sources:
            words += [flag, _not_an_option(source)] if flag else [_not_an_option(source)]
        words += ["-r"] if self.recursive else []
        words += ["--order", self.order] if self.order != "name" else []
        if self.sources_from is not None:
            words += ["--sources-from", _not_an_option(self.sources_from)]
        return words + (["--force"] if self.force else [])


def _absolute(path: str) -> str:
    return path if path == STDIN else os.path.abspath(path)


def _not_an_option(path: str) -> str:
    return os.path.join(".", path) if path.startswith("-") and path != STDIN else path


def resolve_sources(asked: SourceList, max_line: int = MAX_LINE_BYTES) -> list[str]:
    """The files ``asked`` names, in reading order, each one looked at and usable.

    ``SourceError`` (exit 2) naming every file that is not: missing, not JSON
    Lines, or (unless ``asked.force``) mostly invalid lines.
    """
    paths = expand_sources(
        asked.sources, recursive=asked.recursive, order=asked.order, sources_from=asked.sources_from
    )
    problems: list[SourceError] = []
    for path in paths:
        if _regular(path):  # a stream (stdin, a FIFO) is read once: looked at as it is read
            try:
                check_source(path, force=asked.force, max_line=max_line)
            except SourceError as e:
                problems.append(e)
    if len(problems) == 1:
        raise problems[0]
    if problems:
        listed = "; ".join(str(p) for p in problems)
        mostly = all(isinstance(p, MostlyInvalidError) for p in problems)
        error = MostlyInvalidError if mostly else SourceError
        msg = f"{len(problems):,} of {len(paths):,} sources cannot be read: {listed}"
        raise error(msg)
    return paths


def _regular(path: str) -> bool:
    if path == STDIN:
        return False
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return True  # opening it says what is wrong


def check_source(path: str, *, force: bool = False, max_line: int = MAX_LINE_BYTES) -> None:
    """Open ``path`` and look at its first lines; ``SourceError`` when it cannot be a
    source, ``MostlyInvalidError`` when more than half of its first ``SAMPLE_LINES``
    non-blank lines are invalid (unless ``force``)."""
    with open_source(path) as source:
        if force:
            return
        skip_bom(source.stream, 0)
        sampled = invalid = 0
        first_reason: tuple[int, str] | None = None
        for line in read_lines(source.stream, max_line=max_line):
            if line.offset > SAMPLE_BYTES or sampled >= SAMPLE_LINES:
                break
            if line.overlong is None and is_blank(line.raw):
                continue
            sampled += 1
            reason = (
                "a line longer than the limit"
                if line.overlong is not None
                else parse_event(line.raw)
            )
            if isinstance(reason, str):
                invalid += 1
                first_reason = first_reason or (line.number, reason)
    if sampled >= SAMPLE_MINIMUM and invalid * 2 > sampled and first_reason is not None:
        number, reason = first_reason
        msg = (
            f"{path}: {invalid:,} of its first {sampled:,} lines are not valid events "
            f"(line {number:,}: {reason}); is it the right file? --force reads it anyway"
        )
        raise MostlyInvalidError(msg)
