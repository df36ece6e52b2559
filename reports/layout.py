"""Layouts that never cut a figure: the choice is made at render time, from the width.

A figure (a count, total, delta, position or checksum) is printed whole on one
line. ``FigureTable`` is a whole table when it fits; when the width is short,
its untrusted text columns fold first; then, when its figures form a grid
(expected, actual, delta x count, total), it becomes a longer table with a
line per measure; then it stacks: one block per row, the row's key as a
heading and its figures beneath (as that grid, or as ``label value`` pairs, as
many to a line as fit; text a line each). ``Summary`` is a panel when every line
fits in it, else the same lines without a frame, wrapped between words. A figure wider
than the whole width goes on a line of its own, whole (the terminal wraps it).
Totals align on the decimal point.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, JustifyMethod, RenderableType, RenderResult
from rich.panel import Panel
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from eventfold.reports.fold import ANYWHERE, PARTS, PATHS, Folded, fold, folded, narrowest
from eventfold.reports.text import plain

Cell = str | Text
_NUMBER = re.compile(r"^[+-]?[\d,]+(\.\d+)?$")
_TEXT_MIN = 8  # a text column folds down to this width before the table stacks
_WORD = 20  # a word up to this long is never folded inside, a longer one may be
_GAP = 3  # between two label and value pairs on a line (stacked)
_INDENT = 2
_FIGURES = ("figure", "aligned")
_WHOLE = (*_FIGURES, "word")  # never cut
_FOLDS = ("key", "text")  # folded by ``fold``: never inside a number


@dataclass(frozen=True)
class Col:
    """A column. ``kind``: ``key`` (untrusted text naming the row: folds; the heading
    when stacked), ``figure`` (never cut; right-aligned on the decimal point),
    ``word`` (a short word such as a status: never cut; in the heading when stacked),
    ``text`` (folds) or ``aligned`` (figures aligned already, kept as they are)."""

    header: str
    kind: str = "figure"
    group: str = ""  # when every stacked figure has a group and a measure, a row's
    measure: str = ""  # figures stack as a small grid: a line per measure, a column per group


def _text(cell: Cell) -> Text:
    return cell.copy() if isinstance(cell, Text) else Text(cell)


def aligned(cells: Sequence[Cell]) -> list[Text]:
    """``cells`` of one column as Texts of one width, aligned on the decimal point."""
    texts = [_text(c) for c in cells]
    fractions = [
        len(m.group(1)) if (m := _NUMBER.match(t.plain)) and m.group(1) else 0 for t in texts
    ]
    numeric = [bool(_NUMBER.match(t.plain)) for t in texts]
    widest = max(fractions, default=0)
    for t, fraction, is_number in zip(texts, fractions, numeric, strict=True):
        if is_number and widest:
            t.append(" " * (widest - fraction))
    width = max((t.cell_len for t in texts), default=0)
    for t in texts:
        t.pad_left(width - t.cell_len)
    return texts


class FigureTable:
    """Rows of figures: a table when it fits the width, else a block per row."""

    def __init__(
        self,
        columns: Sequence[Col],
        rows: Iterable[Sequence[Cell]],
        *,
        title: Cell | None = None,
        caption: Cell | None = None,
        show_header: bool = True,
        section: int = 0,
    ) -> None:
        self.section = section  # rows per section (a rule between sections), 0: none
        self.columns = list(columns)
        self.rows = [list(r) for r in rows]
        self.title = title
        self.caption = caption
        self.show_header = show_header
        self.cells = self._cells()
        self._groups: list[str] = []
        self._measures: list[str] = []

    def _cells(self) -> list[list[Text]]:
        """The cells by column; figures aligned, untrusted text made safe."""
        by_column: list[list[Text]] = []
        for i, column in enumerate(self.columns):
            values = [row[i] for row in self.rows]
            if column.kind == "figure":
                by_column.append(aligned(values))
            elif column.kind == "aligned":  # figures aligned already: right-aligned as they are
                texts = [_text(v) for v in values]
                width = max((t.cell_len for t in texts), default=0)
                by_column.append([_padded(t, width) for t in texts])
            else:
                by_column.append([v.copy() if isinstance(v, Text) else plain(v) for v in values])
        return by_column

    def _natural(self, i: int) -> int:
        header = self.columns[i].header if self.show_header else ""
        words = [cell_len(w) for w in header.split()] or [0]
        cells = [t.cell_len for t in self.cells[i]]
        if self.columns[i].kind in _WHOLE:
            return max([*cells, *words, 1])
        return max([*cells, cell_len(header), 1])

    def _floor(self, i: int, within: int = PARTS) -> int:
        """How narrow text column ``i`` may fold: never inside a number (see ``fold``), nor
        at a place ranked below ``within`` (``PARTS``: never inside a word) unless that
        piece is wider than ``_WORD`` cells (then at that width)."""
        cells = self.cells[i]
        least = max([_TEXT_MIN, *(narrowest(t, within=ANYWHERE) for t in cells)])
        pieces = max([0, *(narrowest(t, within=within) for t in cells)])
        return max(least, min(pieces, _WORD))

    def _least(self, i: int) -> int:
        """The narrowest a value of column ``i`` may be shown, beside its label (stacked)."""
        if self.columns[i].kind in _FOLDS:
            return self._floor(i)
        return max([1, *(t.cell_len for t in self.cells[i])])

    def widths(self, width: int) -> list[int] | None:
        """Column widths for a whole table within ``width``, or None when it must stack."""
        overhead = 3 * len(self.columns) + 1
        header = [cell_len(c.header) if self.show_header else 0 for c in self.columns]
        roomy = [max(self._natural(i), header[i]) for i in range(len(self.columns))]
        if sum(roomy) + overhead <= width:  # headers on one line
            return roomy
        widths = [self._natural(i) for i in range(len(self.columns))]
        excess = sum(widths) + overhead - width
        folds = [i for i, c in enumerate(self.columns) if c.kind in _FOLDS]
        texts = [i for i in folds if self.columns[i].kind == "text"]
        keys = [i for i in folds if i not in texts]
        stages = [
            {i: max(self._floor(i), _WORD) for i in texts},  # text to a few words
            {i: self._floor(i, PATHS) for i in keys},  # a key (a path) after a "/"
            {i: self._floor(i) for i in texts},  # text to its longest word
            {i: self._floor(i) for i in keys},  # a key after "-", "_" or "." too
        ]  # then, rather than fold a word, the table stacks
        for floors in stages:
            while excess > 0:  # the widest column that may still fold gives up a quarter
                wide = [i for i in floors if widths[i] > floors[i]]
                if not wide:
                    break
                widest = max(wide, key=lambda i: widths[i])
                cut = min(excess, widths[widest] - floors[widest], max(1, widths[widest] // 4))
                widths[widest] -= cut
                excess -= cut
        if excess > 0:
            return None
        return widths

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        """The title and caption take the whole width (not the table's)."""
        if self.title is not None:
            yield _caption(self.title, "table.title")
        widths = self.widths(options.max_width)
        long = None if widths is not None else self._long()
        long_widths = None if long is None else long.widths(options.max_width)
        if widths is not None:
            yield self._table(widths)
        elif long is not None and long_widths is not None:
            yield long._table(long_widths)
        else:
            yield from self._stacked(options.max_width)
        if self.caption is not None:
            yield _caption(self.caption, "table.caption")

    def _long(self) -> FigureTable | None:
        """When the figures form a grid (groups and measures): the same table with a row
        per measure and a column per group (a section per row), else None."""
        keys = [i for i, c in enumerate(self.columns) if c.kind in ("key", "word")]
        pairs = [i for i in range(len(self.columns)) if i not in keys]
        matrix = self._matrix(pairs, None)
        if matrix is None:
            return None
        columns = [self.columns[i] for i in keys] + [Col("", "word")]
        columns += [Col(group, "aligned") for group in self._groups]
        rows: list[list[Cell]] = []
        for r, row in enumerate(self.rows):
            for m, (measure, where) in enumerate(zip(self._measures, matrix, strict=True)):
                cells: list[Cell] = [row[i] if not m else "" for i in keys] + [measure]
                # figures keep the alignment of their own column (counts, totals)
                rows.append(cells + [Text("-") if i is None else self.cells[i][r] for i in where])
        return FigureTable(columns, rows, section=len(self._measures))

    def _table(self, widths: list[int]) -> Table:
        table = Table(show_header=self.show_header, expand=False)
        for column, width in zip(self.columns, widths, strict=True):
            figure = column.kind in _WHOLE
            table.add_column(
                Text(  # a header wraps between words
                    column.header, no_wrap=False, justify=_justify(column)
                ),
                width=width,
                no_wrap=figure,
                overflow="ellipsis" if figure else "fold",  # the widths leave room for figures
            )
        for r in range(len(self.rows)):
            table.add_row(
                *(self._cell(i, r, widths[i]) for i in range(len(self.columns))),
                end_section=bool(self.section) and (r + 1) % self.section == 0,
            )
        return table

    def _cell(self, i: int, r: int, width: int) -> Text:
        """A cell; a figure right-aligned by padding (Rich's right justification would drop
        the spaces that align it on the decimal point)."""
        cell = self.cells[i][r]
        if self.columns[i].kind in _FOLDS:
            return folded(cell, width)
        if self.columns[i].kind not in _FIGURES:
            return cell
        return _padded(cell, width)

    def _stacked(self, width: int) -> Iterator[RenderableType]:
        """A block per row: its key as a heading, then its other cells as ``label value``
        pairs, as many to a line as fit, in columns that line up from block to block
        (text: a line each, folded beside its label); a value too wide to go beside its
        label has lines of its own."""
        keys = [i for i, c in enumerate(self.columns) if c.kind == "key"] or [0]
        heading_words = [i for i, c in enumerate(self.columns) if c.kind == "word"]
        pairs = [i for i in range(len(self.columns)) if i not in keys and i not in heading_words]
        matrix = self._matrix(pairs, width)
        label_width = max((cell_len(self.columns[i].header) for i in pairs), default=0)
        room = width - _INDENT - label_width - 1  # a value beside its label
        fits = [i for i in pairs if self._least(i) <= room]
        apart = [i for i in pairs if i not in fits]  # wider than that: lines of their own
        texts = [i for i in fits if self.columns[i].kind in _FOLDS]  # a line each
        fits = [i for i in fits if i not in texts]
        value_width = max((self._least(i) for i in fits), default=1)
        per_line = max(1, (width - _INDENT + _GAP) // (label_width + 1 + value_width + _GAP))
        for r in range(len(self.rows)):
            heading = Text("  ").join(self.cells[i][r] for i in keys + heading_words)
            heading.stylize("bold", 0, len(heading.plain))
            yield Folded(heading)
            if matrix is not None:
                yield self._grid(matrix, r)
                continue
            if fits:
                yield self._pairs(fits, r, label_width, value_width, per_line)
            if texts:
                yield self._pairs(texts, r, label_width, room, 1)
            for i in apart:
                yield Folded(Text(self.columns[i].header + ":"), _INDENT + 1)
                if self.columns[i].kind in _FOLDS:  # folds, never inside a number
                    yield Folded(self.cells[i][r], _INDENT + 1)
                else:
                    yield _apart(self.cells[i][r], width, _INDENT + 1)

    def _matrix(self, pairs: list[int], width: int | None) -> list[list[int | None]] | None:
        """The columns as a grid (a row per measure, a column per group) when they all
        have a group and a measure and the grid fits ``width`` (None: any); else None."""
        columns = [self.columns[i] for i in pairs]
        if not pairs or not all(c.group and c.measure for c in columns):
            return None
        groups = list(dict.fromkeys(c.group for c in columns))
        measures = list(dict.fromkeys(c.measure for c in columns))
        where = {(c.group, c.measure): i for c, i in zip(columns, pairs, strict=True)}
        grid = [[where.get((g, m)) for g in groups] for m in measures]
        self._groups, self._measures = groups, measures
        needed = _INDENT + max(map(cell_len, measures))
        needed += sum(2 + w for w in self._group_widths(grid))
        return grid if width is None or needed <= width else None

    def _group_widths(self, matrix: list[list[int | None]]) -> list[int]:
        widths = []
        for g, group in enumerate(self._groups):
            cells = [self._natural(i) for row in matrix if (i := row[g]) is not None]
            widths.append(max([cell_len(group), *cells]))
        return widths

    def _grid(self, matrix: list[list[int | None]], r: int) -> Table:
        grid = Table.grid(padding=(0, 0, 0, 2), pad_edge=False, collapse_padding=False)
        grid.add_column(no_wrap=True)
        widths = self._group_widths(matrix)
        for width in widths:
            grid.add_column(width=width, no_wrap=True)
        grid.add_row("", *(Text(g, style="dim", justify="right") for g in self._groups))
        for measure, row in zip(self._measures, matrix, strict=True):
            cells = [
                _padded(Text("-") if i is None else self.cells[i][r], w)
                for i, w in zip(row, widths, strict=True)
            ]
            grid.add_row(" " * _INDENT + measure, *cells)
        return grid

    def _pairs(
        self, pairs: list[int], r: int, label_width: int, value_width: int, per_line: int
    ) -> Table:
        """Label and value pairs, ``per_line`` to a line: an indent, then per pair a label
        and a space (label_width + 1), the value (value_width), and a gap before the next
        pair: _INDENT + per_line * (label_width + 1 + value_width + _GAP) - _GAP cells.
        A figure is right-aligned in the value's column; text folds to its width."""
        shown = min(per_line, len(pairs))
        grid = Table.grid(padding=0, pad_edge=False, collapse_padding=False)
        grid.add_column(width=_INDENT, no_wrap=True)
        for n in range(shown):
            grid.add_column(width=label_width + 1, no_wrap=True)
            grid.add_column(width=value_width, overflow="fold")  # folded to fit already
            if n < shown - 1:
                grid.add_column(width=_GAP, no_wrap=True)
        for start in range(0, len(pairs), per_line):
            cells: list[Cell] = [""]
            for i in pairs[start : start + per_line]:
                value = self.cells[i][r]
                if self.columns[i].kind in _FIGURES:
                    value = _padded(value, value_width)
                elif self.columns[i].kind in _FOLDS:
                    value = folded(value, value_width)
                cells += [Text(self.columns[i].header), value, ""]
            grid.add_row(*cells[: 1 + 3 * shown - 1])
        return grid


def _justify(column: Col) -> JustifyMethod:
    return "right" if column.kind in _FIGURES else "left"


def _caption(cell: Cell, style: str) -> Folded:
    """A title or caption: the screen's width, folded between words, never in a number."""
    text = _text(cell)
    text.stylize_before(style)
    return Folded(text)


def _padded(cell: Text, width: int) -> Text:
    padded = cell.copy()
    padded.pad_left(max(0, width - padded.cell_len))
    return padded


def _apart(cell: Text, width: int, indent: int) -> _Whole:
    """A figure on a line of its own: indented and aligned when that fits the width,
    else as it is, whole (wider than the width, the terminal wraps it)."""
    if indent + cell.cell_len <= width:
        return _Whole(cell, indent)
    bare = cell.copy()
    bare.plain = bare.plain.strip()
    return _Whole(bare, indent if indent + bare.cell_len <= width else 0)


class _Whole:
    """One line, never wrapped nor cut by Rich (the terminal may wrap it)."""

    def __init__(self, text: Text, indent: int = 0) -> None:
        self.text, self.indent = text, indent

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if self.indent:
            yield Segment(" " * self.indent)
        yield from self.text.render(console)
        yield Segment.line()


class Summary:
    """Lines in a panel when they fit, else the same lines unframed, wrapped between words."""

    def __init__(self, lines: Sequence[Text], *, title: str, border_style: str = "") -> None:
        self.lines, self.title, self.border_style = list(lines), title, border_style

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        if all(line.cell_len <= width - 4 for line in self.lines):
            yield Panel(
                Text("\n").join(self.lines),
                title=Text(self.title),  # as written: never parsed as markup
                expand=False,
                border_style=self.border_style,
            )
            return
        yield Text(f"── {self.title} ──", style=self.border_style)
        for line in self.lines:
            for piece in fold(line, width):
                yield _Whole(piece)
