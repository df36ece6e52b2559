"""Folding text that may hold numbers, paths and ids: never inside a run of digits.

Text folds between words first, then after a ``/`` (a path stays whole on a line of
its own when it can), then after an id separator (``-``, ``_``, ``.``, ``,``), and
only as a last resort between two other characters. It never folds inside a number
(``000000028833``, ``9,687.52``), a date or time (``2026-11-30``) or a checksum (32
or more hex digits), nor beside a non-breaking space (``line\u00a0201`` stays together,
shown with a plain space).
A piece that cannot be folded small enough stays whole on a line of its own.
"""

from __future__ import annotations

import re
from itertools import pairwise

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.text import Text

GLUE = "\u00a0"  # joins words that must stay on one line, such as ``line 201``
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
_DIGEST = re.compile(r"[0-9a-f]{32,}")  # a checksum: whole, or on a line of its own
_DATE = re.compile(r"\d+(?:[-:T]\d+)+")  # a date or a time (2026-11-30T10:30:00): whole
_SEPARATORS = "/-_.,"
_WORDS, _PATH, _PARTS, _ANYWHERE = 1, 2, 3, 4  # how good a place to fold is, best first
PATHS, PARTS, ANYWHERE = _PATH, _PARTS, _ANYWHERE  # for ``narrowest``


def glued(*words: str) -> str:
    """``words`` joined so that they are never folded apart."""
    return GLUE.join(words)


def _breaks(value: str) -> dict[int, int]:
    """Offsets where ``value`` may fold (a new line starts there), with their rank."""
    unbroken = [*_NUMBER.finditer(value), *_DIGEST.finditer(value), *_DATE.finditer(value)]
    inside = {i for m in unbroken for i in range(m.start() + 1, m.end())}
    breaks: dict[int, int] = {}
    for i in range(1, len(value)):
        before, after = value[i - 1], value[i]
        if i in inside or GLUE in (before, after) or after.isspace():
            continue
        if before.isspace():
            breaks[i] = _WORDS
        elif before == "/":  # a path stays whole on its own line when it can
            breaks[i] = _PATH
        elif before in _SEPARATORS:
            breaks[i] = _PARTS
        else:
            breaks[i] = _ANYWHERE
    return breaks


def _shown(piece: Text) -> Text:
    piece.rstrip()
    piece.plain = piece.plain.replace(GLUE, " ")
    return piece


def fold(text: Text, width: int) -> list[Text]:
    """``text`` as lines of at most ``width`` cells (where it can), folded at the best
    place that fits; a number, a checksum, or glued words, is never divided."""
    value = text.plain
    breaks = _breaks(value)
    offsets: list[int] = []
    start = 0
    while cell_len(value[start:].rstrip()) > max(width, 1):
        fitting = [i for i in breaks if i > start and cell_len(value[start:i].rstrip()) <= width]
        if fitting:
            rank = min(breaks[i] for i in fitting)
            cut = max(i for i in fitting if breaks[i] == rank)
        else:
            later = [i for i in breaks if i > start]
            if not later:
                break
            cut = min(later)  # too wide to fold: whole on a line of its own
        offsets.append(cut)
        start = cut
    return [_shown(piece) for piece in text.divide(offsets)]


def folded(text: Text, width: int) -> Text:
    """``fold(text, width)`` as one Text of lines (for a table cell of that width)."""
    return Text("\n").join(fold(text, width))


def narrowest(text: Text, *, within: int = ANYWHERE) -> int:
    """The width below which ``text`` cannot fold without overflowing (its widest
    piece between places where it may fold); folding only at places ranked ``within``
    or better: ``PATHS`` (between words, after a ``/``), ``PARTS`` (and after an id
    separator: never inside a word) or ``ANYWHERE``."""
    value = text.plain
    breaks = _breaks(value)
    edges = [0, *sorted(i for i, rank in breaks.items() if rank <= within), len(value)]
    return max(cell_len(value[a:b].rstrip()) for a, b in pairwise(edges))


class Folded:
    """Text folded to the width it is given (the screen's), never inside a number."""

    def __init__(self, text: Text, indent: int = 0) -> None:
        self.text, self.indent = text, indent

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for line in fold(self.text, options.max_width - self.indent):
            if self.indent:
                yield Segment(" " * self.indent)
            yield from line.render(console)
            yield Segment.line()
