"""The reconstructions in ``eventfold explain``'s report: which part of a total they are.

``split_lines`` are the summary's lines that tell the raw events counted from
those held out and from the summaries standing; ``reconstructions`` the table
of the category's reconstructions (standing and retired: the summary's part,
the raw events of the period replaced and held since) and, under it, each one's
summary file, checksum, who made (and retired) it, when, and why;
``held_columns`` and ``held_cells`` the columns of the events held out in the
source and hour tables. Paths, names and notes are untrusted: shown with
``plain``.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.text import Text

from eventfold.application.proving.lineage import Lineage, Share
from eventfold.application.proving.split import Figures, PartShare
from eventfold.projections.base import canonical_decimal
from eventfold.reports.fold import Folded
from eventfold.reports.layout import Col, FigureTable
from eventfold.reports.text import grouped, plain, plural, shortest_path


def _figures(figures: Figures) -> str:
    return f"{plural(figures.count, 'event')}, total {grouped(canonical_decimal(figures.total))}"


def _ids(shares: list[PartShare]) -> str:
    return ", ".join(s.reconstruction.ident for s in shares)


def split_lines(lineage: Lineage) -> list[Text]:
    """The summary's lines on reconstructions (none when the category has none)."""
    split = lineage.split
    if not split.shares:
        return []
    standing = [s for s in split.shares if s.standing]
    if not split.folds:
        text = (
            f"reconstructions: {lineage.caught_up.projection} folds none: its totals are of "
            "raw events alone"
        )
        if standing:
            verb = "stands" if len(standing) == 1 else "stand"
            text += f" ({_ids(standing)} {verb} for part of category_totals' total only)"
        return [plain(text)]
    if not (standing or split.held.count):
        return [
            plain(
                f"reconstructions: {_ids(split.shares)} retired: every raw event of the "
                "category is counted"
            )
        ]
    return [
        plain(f"  counted: {_figures(lineage.counted)} (raw events, in the total)"),
        plain(
            f"  held out: {_figures(split.held)} (raw events a standing reconstruction "
            "stands for: not in the total)",
            style="yellow" if split.held.count else "",
        ),
        plain(
            f"reconstructed: {_figures(split.reconstructed)} ({_ids(standing)}: "
            f"{'a summary' if len(standing) == 1 else 'summaries'}, not proven from raw events)",
            style="yellow",
        ),
    ]


def reconstructions(lineage: Lineage) -> RenderableType:
    """The category's reconstructions: a table of their figures, then each one's origin."""
    columns = [
        Col("reconstruction", "key"),
        Col("period", "text"),
        Col("status", "word"),
        Col("summary count", group="summary", measure="count"),
        Col("summary total", group="summary", measure="total"),
        Col("replaced count", group="replaced", measure="count"),
        Col("replaced total", group="replaced", measure="total"),
        Col("held since count", group="held since", measure="count"),
        Col("held since total", group="held since", measure="total"),
    ]
    rows: list[list[str | Text]] = []
    for share in lineage.split.shares:
        r = share.reconstruction
        rows.append(
            [
                r.ident,
                f"{r.start.isoformat()}/{r.end.isoformat()}",
                "standing" if share.standing else "retired",
                grouped(share.summary.count),
                grouped(canonical_decimal(share.summary.total)),
                grouped(share.replaced.count),
                grouped(canonical_decimal(share.replaced.total)),
                grouped(share.held_since.count),
                grouped(canonical_decimal(share.held_since.total)),
            ]
        )
    table = FigureTable(
        columns,
        rows,
        title=plain(f"reconstructions of {lineage.category}"),
        caption="summary: its figures for this category; replaced: the raw events of the "
        "period in the store when it was made; held since: those recorded after (out of "
        "the total while it stands, counted again once it is retired)",
    )
    return Group(table, *(_origin(share) for share in lineage.split.shares))


def _origin(share: PartShare) -> Folded:
    """Where a reconstruction comes from: its summary file and checksum, who made it and
    when, why; who retired it, when and why."""
    r = share.reconstruction
    text = f"{r.ident}: summary {shortest_path(r.path)}, sha256 {r.digest}; made "
    text += f"{r.made_on.isoformat()} by {r.by}" + (f": {r.note}" if r.note else "")
    if r.retired_on is not None:
        text += f"; retired {r.retired_on.isoformat()} by {r.retired_by}"
        text += f": {r.retire_note}" if r.retire_note else ""
    return Folded(plain(text))


def held_columns(lineage: Lineage) -> list[Col]:
    """The columns of the events held out of the total (none when none is)."""
    if not lineage.split.held.count:
        return []
    return [Col("held out"), Col("held out total")]


def held_cells(lineage: Lineage, share: Share) -> list[str | Text]:
    """A source's or an hour's cells in ``held_columns``."""
    if not lineage.split.held.count:
        return []
    return [grouped(share.held.count), grouped(canonical_decimal(share.held.total))]
