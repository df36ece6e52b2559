"""What ``eventfold reconstruct`` made, retired or lists."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.text import Text

from eventfold.application.reconstructing.making import Outcome
from eventfold.application.reconstructing.plan import Reconstruction
from eventfold.projections.base import canonical_decimal
from eventfold.reports.layout import Col, FigureTable
from eventfold.reports.text import (
    command_line,
    grouped,
    plain,
    plural,
    shortest_path,
    signed,
    visible,
)


def render_outcome(outcome: Outcome, store_options: list[str]) -> RenderableType:
    """The reconstruction, and per category the summary beside the raw events: those it
    replaces (made) or every raw event of the period the store holds now (retired)."""
    r = outcome.reconstruction
    raw = "replaced" if outcome.action == "made" else "raw"
    columns = [
        Col("category", "key"),
        Col("summary count"),
        Col("summary total"),
        Col(f"{raw} count"),
        Col(f"{raw} total"),
    ]
    if outcome.action == "retired":
        columns.append(Col("Δ total (raw - summary)"))
    rows = []
    for row in outcome.rows:
        cells = [
            row.category,
            grouped(row.count),
            grouped(canonical_decimal(row.total)),
            grouped(row.raw_count),
            grouped(canonical_decimal(row.raw_total)),
        ]
        if outcome.action == "retired":
            cells.append(signed(canonical_decimal(row.difference)))
        rows.append(cells)
    heading = describe(r)
    if outcome.action == "made":
        after = Text(
            f"{r.ident} stands for these categories' events of its period: while it stands, "
            "category_totals counts the summary and holds out their raw events (those "
            "replaced, and any recorded later). Undo with: "
            + command_line("reconstruct", "--retire", r.ident, *store_options)
        )
        title = f"reconstruction {r.ident} made"
    else:
        after = Text(
            f"{r.ident} is retired: the raw events of its period count again; the Δ column is "
            "how far the summary was from them."
        )
        title = f"reconstruction {r.ident} retired"
    table = FigureTable(columns, rows, title=plain(title), caption=None)
    return Group(heading, table, after)


def describe(r: Reconstruction) -> Text:
    """A reconstruction in a few lines: its id and status, period, figures, summary file,
    and who made (and retired) it."""
    status = "standing" if r.retired_on is None else f"retired {r.retired_on.isoformat()}"
    text = Text()
    text.append(f"{r.ident}", style="bold")
    text.append(f" ({status}): {r.start.isoformat()}/{r.end.isoformat()}\n")
    text.append(f"  {plural(len(r.parts), 'category', 'categories')}, ")
    text.append(f"{plural(r.count, 'event')}, total {grouped(canonical_decimal(r.total))}\n")
    text.append(f"  summary {visible(shortest_path(r.path))} sha256 {r.digest}\n")
    text.append(f"  made {r.made_on.isoformat()} by {visible(r.by)}")
    if r.note:
        text.append(f": {visible(r.note)}")
    if r.retired_on is not None:
        text.append(f"\n  retired by {visible(r.retired_by)}")
        if r.retire_note:
            text.append(f": {visible(r.retire_note)}")
    return text


def render_listing(reconstructions: list[Reconstruction]) -> RenderableType:
    """Every reconstruction of the store, oldest first."""
    if not reconstructions:
        return plain("no reconstruction in this store")
    return Group(*(describe(r) for r in reconstructions))


def outcome_line(outcome: Outcome) -> Text:
    """The one-line result (``--quiet``)."""
    r = outcome.reconstruction
    return plain(
        f"reconstruction {r.ident} {outcome.action}: {r.start.isoformat()}/{r.end.isoformat()}, "
        f"{plural(len(r.parts), 'category', 'categories')}, {plural(r.count, 'event')}, "
        f"total {grouped(canonical_decimal(r.total))}"
    )
