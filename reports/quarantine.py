"""The report of ``eventfold quarantine``: the quarantined lines as a table, and a count.

Raw text is untrusted: shown through ``plain`` (no markup, controls visible),
folded to the width, and clipped with a visible ``…`` beyond ``RAW_WIDTH``
characters, as ``ingest``'s report shows invalid lines (``--jsonl`` and
``--raw`` give it whole).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Group
from rich.text import Text

from eventfold.application.admin.quarantine import QuarantineReport
from eventfold.reports.layout import Col, FigureTable
from eventfold.reports.text import grouped, plain, plural

RAW_WIDTH = 200


def render_quarantine(report: QuarantineReport) -> Group:
    clipped = any(len(q.raw) > RAW_WIDTH for q in report.lines)
    caption = None
    if clipped:
        caption = f"raw text clipped at {RAW_WIDTH:,} characters (…): --jsonl shows it whole"
    table = quarantined_table(report.lines, "quarantined lines", caption)
    return Group(table, count_line(report))


def quarantined_table(lines: Iterable[Any], title: str, caption: str | None) -> FigureTable:
    """Quarantined lines (each with ``source``, ``line``, ``offset``, ``reason``,
    ``raw``): where each is, why, and its raw text clipped at ``RAW_WIDTH``."""
    columns = [
        Col("source", "key"),
        Col("line"),
        Col("byte offset"),
        Col("reason", "text"),
        Col("raw", "text"),
    ]
    rows: list[list[str | Text]] = [
        [plain(q.source), grouped(q.line), grouped(q.offset), plain(q.reason), plain(_clip(q.raw))]
        for q in lines
    ]
    return FigureTable(columns, rows, title=title, caption=caption)


def _clip(raw: str) -> str:
    return raw if len(raw) <= RAW_WIDTH else raw[: RAW_WIDTH - 1] + "…"


def count_line(report: QuarantineReport) -> Text:
    """How many lines match, and how many are shown."""
    text = plural(report.count, "quarantined line")
    if len(report.lines) < report.count:
        text += f", the first {len(report.lines):,} shown (--limit 0 shows all)"
    return plain(text, style="yellow" if report.count else "green")
