"""The HTML report of ``verify`` (``--html FILE``): one self-contained page.

Built from the result's ``to_json()`` document: figures are the report's exact
decimal strings, never floats, and are never cut. Every piece of untrusted text
(category names, ids, paths) is escaped, with control characters made visible.
The page needs no network (inline style and script); its one script sorts the
tables, and the content is complete without it. It prints without dark
backgrounds, and a table row is never split across pages.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from eventfold.application.proving.verify import VerifyReport
from eventfold.application.sources import SourceList
from eventfold.reports.html_assets import SCRIPT, STYLE
from eventfold.reports.html_resting import resting_section, rests_on
from eventfold.reports.html_timeline import timeline_section
from eventfold.reports.suggestions import Step, conflict_steps, next_steps
from eventfold.reports.text import grouped, plural, visible
from eventfold.reports.text import signed as with_sign
from eventfold.reports.verify import about_expectation

BAR_WIDTH = 120  # the width of a delta bar's drawing; each side of the axis gets half
BAR_HEIGHT = 14
_DECIMAL = re.compile(r"^[+-]?\d+(\.\d+)?$")


@dataclass(frozen=True)
class ReportContext:
    """What the result object does not know: when and where the report was made."""

    store: str  # the backend's description of the store (file:/path, postgres://...)
    backend: str
    sources: Sequence[tuple[str, str]] = ()  # (what, value): ("source", path), ...
    store_options: Sequence[str] = ()  # --store/--backend, for the commands suggested
    asked: SourceList | None = None  # the sources as given, for the commands suggested
    files_read: int | None = None  # how many files the sources named (shown when given)
    program: str | None = "eventfold"  # how a suggested command starts (None: as this run)
    show_all: bool = False  # list matching categories too (--all)
    made_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def render_verify_html(report: VerifyReport, context: ReportContext) -> str:
    """The whole page of a verify report, as text to write to a file."""
    doc = report.to_json()
    word = "MATCH" if report.matches else "MISMATCH"
    title = f"eventfold verify: {word} ({doc['projection']})"
    body = [
        "<header>",
        "<h1>eventfold verify</h1>",
        verdict_section(report),
        facts_list(context_rows(context, report.source) + verify_rows(report)),
        "</header>",
        "<main>",
        category_section(report, context.show_all),
        resting_section(report),
        timeline_section(report.timeline),
        *event_sections(doc),
        next_section(report, context),
        "</main>",
        f"<footer>Made by eventfold at {escape(iso_utc(context.made_at))}.</footer>",
    ]
    return page(title, body)


def page(title: str, body: Iterable[str]) -> str:
    """A complete HTML document: ``title`` (escaped here) and ``body`` (already markup)."""
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(title)}</title>",
            f"<style>{STYLE}</style>",
            "</head>",
            "<body>",
            *body,
            f"<script>{SCRIPT}</script>",
            "</body>",
            "</html>",
            "",
        ]
    )


def escape(value: object) -> str:
    """Untrusted text as HTML: escaped, control characters made visible."""
    return html.escape(visible(str(value)), quote=True)


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def verdict_section(report: VerifyReport) -> str:
    """The verdict, first on the page: MATCH or MISMATCH and both checksums, whole."""
    doc = report.to_json()
    status = "match" if report.matches else "mismatch"
    if report.matches:
        what = f"the store's {doc['projection']} equals the expected state"
        if doc["resting_rows"]:
            what += (
                f"; {plural(doc['resting_rows'], 'total')} rest in part on reconstructions, "
                "not on raw events"
            )
    elif report.checksum_only:
        what = "the checksum differs"
    else:
        differing, compared = grouped(doc["differing"]), grouped(doc["categories_compared"])
        noun = "categories" if report.key_names == ("category",) else "rows"
        what = f"{differing} of {compared} {noun} differ"
    return "\n".join(
        [
            f'<section class="verdict {status}" id="verdict">',
            f'<p><span class="word">{status.upper()}</span> {escape(what)}</p>',
            '<dl class="facts">',
            f"<dt>expected checksum</dt><dd><code>{escape(doc['expected_checksum'])}</code></dd>",
            f"<dt>actual checksum</dt><dd><code>{escape(doc['actual_checksum'])}</code></dd>",
            "</dl>",
            "</section>",
        ]
    )


def context_rows(context: ReportContext, source: str | None = None) -> list[tuple[str, str]]:
    """When and where: the first rows of a report's facts (markup); the source as the
    report read it (``source``: its absolute path, as in ``--json``) when given."""
    made = iso_utc(context.made_at)
    rows = [
        ("made (UTC)", f'<time datetime="{escape(made)}">{escape(made)}</time>'),
        ("store", f"<code>{escape(context.store)}</code>"),
        ("backend", escape(context.backend)),
    ]
    rows += [
        (what, f"<code>{escape(source if what == 'source' and source else value)}</code>")
        for what, value in context.sources
    ]
    if context.files_read is not None:
        rows.append(("files read", grouped(context.files_read)))
    return rows


def facts_list(rows: Iterable[tuple[str, str]]) -> str:
    """A definition list of ``(term, markup)`` rows; terms are ours, not escaped."""
    items = "".join(f"<dt>{what}</dt><dd>{value}</dd>" for what, value in rows)
    return f'<dl class="facts">{items}</dl>'


def verify_rows(report: VerifyReport) -> list[tuple[str, str]]:
    """What a verify compared: projection, categories and events (markup)."""
    doc = report.to_json()
    rows = [
        (
            "projection",
            f"{escape(doc['projection'])} at position {grouped(doc['position'])} "
            f"(caught up {grouped(report.projection.events_applied)} events)",
        )
    ]
    noun = "categories" if report.key_names == ("category",) else "rows"
    if report.checksum_only:
        rows.append(("compared", f"only a checksum was given: {noun} cannot be compared"))
    else:
        rows.append(
            (
                noun if noun == "categories" else f"rows ({escape(', '.join(report.key_names))})",
                f"{grouped(doc['categories_compared'])} compared, "
                f"{grouped(doc['matching'])} matching, {grouped(doc['differing'])} differing",
            )
        )
    rows += [("note", escape(line)) for line in about_expectation(report)]
    if report.events is not None:
        e = report.events
        rows.append(
            (
                "events",
                f"{grouped(e.missing_count)} missing from the store, "
                f"{grouped(e.extra_count)} extra, {grouped(e.conflicting_count)} conflicting, "
                f"{grouped(e.duplicated_count)} recorded twice",
            )
        )
    return rows


def _number(decimal: str | None, fraction_width: int, *, signed: bool = False) -> str:
    """A right-aligned number cell; its fraction padded so the column aligns on the point."""
    if decimal is None:
        return '<td class="num" data-value="">-</td>'
    shown = with_sign(decimal) if signed else grouped(decimal)
    whole, dot, fraction = shown.partition(".")
    sign = "" if not signed or decimal == "0" else (" neg" if decimal.startswith("-") else " pos")
    pad = f"{fraction_width}ch"
    return (
        f'<td class="num{sign}" data-value="{escape(decimal)}">{escape(whole)}'
        f'<span class="frac" style="min-width:{pad}">{escape(dot + fraction)}</span></td>'
    )


def _fraction_width(values: Iterable[str | None]) -> int:
    """Characters of the longest fraction (with its point) among ``values``."""
    widths = [len(v) - v.index(".") for v in values if v is not None and "." in v]
    return max(widths, default=0)


def _bar(delta: Decimal, largest: Decimal) -> str:
    """A diverging bar: left of the axis (red) for a negative delta, right (blue) for a
    positive one; its length is proportional to |delta| (at least 1 unit when not zero)."""
    half = BAR_WIDTH // 2
    axis = f'<line class="axis" x1="{half}" y1="0" x2="{half}" y2="{BAR_HEIGHT}"/>'
    rect = ""
    if delta and largest:
        length = max(Decimal(1), (abs(delta) * half / largest).quantize(Decimal("0.1")))
        x = Decimal(half) - length if delta < 0 else Decimal(half)
        side = "neg" if delta < 0 else "pos"
        rect = f'<rect class="{side}" x="{x}" y="2" width="{length}" height="{BAR_HEIGHT - 4}"/>'
    return (
        f'<svg class="bar" width="{BAR_WIDTH}" height="{BAR_HEIGHT}" '
        f'viewBox="0 0 {BAR_WIDTH} {BAR_HEIGHT}" aria-hidden="true">{rect}{axis}</svg>'
    )


def category_section(report: VerifyReport, show_all: bool) -> str:
    """The compared rows: a column per key part, then each measure's expected, actual
    and Δ (or, for a projection without measures, each side's value whole)."""
    rows = report.compared if show_all else report.differences
    noun = "categories" if report.key_names == ("category",) else "rows"
    heading = noun.capitalize() if show_all else f"Differing {noun}"
    if not rows:
        empty = (
            f"none: every {'category' if noun == 'categories' else 'row'} matches"
            if not report.checksum_only
            else ("none can be shown: only a checksum was given (--expected FILE or --source can)")
        )
        return f'<section id="categories"><h2>{heading}</h2><p>{escape(empty)}</p></section>'
    docs = [d.to_json() for d in rows]
    measures = list(rows[0].measures or {})
    columns = [(name, "text") for name in report.key_names] + [("status", "text")]
    marks = rests_on(report)
    marked = any(d.key in marks for d in rows)
    if marked:
        columns.append(("rests on", "text"))
    for side in ("expected", "actual", "Δ"):
        columns += [(f"{side} {m}", "number") for m in measures]
    if not measures:
        columns += [("expected", "text"), ("actual", "text")]
    sides = {
        m: [
            [None if d[side] is None or d[side].get(m) is None else str(d[side][m]) for d in docs]
            for side in ("expected", "actual", "delta")
        ]
        for m in measures
    }
    widths = {m: [_fraction_width(v) for v in sides[m]] for m in measures}
    barred = "total" if "total" in measures else None
    largest = Decimal(0)
    if barred:
        deltas = [v for v in sides[barred][2] if v is not None]
        largest = max((abs(Decimal(v)) for v in deltas), default=Decimal(0))
    head = "".join(
        f'<th scope="col" data-type="{kind}"{" class=r" if kind == "number" else ""}>'
        f"{escape(name)}</th>"
        for name, kind in columns
    )
    if barred:
        head += f'<th scope="col">Δ {barred} (bar)</th>'
    body = []
    for i, (d, difference) in enumerate(zip(docs, rows, strict=True)):
        cells = "".join(f'<td class="text">{escape(part)}</td>' for part in difference.key)
        cells += f'<td class="status {escape(d["status"])}">{escape(d["status"].upper())}</td>'
        if marked:
            cells += f'<td class="text">{escape(marks.get(difference.key, "-"))}</td>'
        for column, side in enumerate(("expected", "actual", "delta")):
            for m in measures:
                cells += _number(sides[m][column][i], widths[m][column], signed=side == "delta")
        if not measures:
            for side in ("expected", "actual"):
                shown = "-" if d[side] is None else json.dumps(d[side], sort_keys=True)
                cells += f'<td class="text">{escape(shown)}</td>'
        if barred:
            delta = sides[barred][2][i]
            cells += f"<td>{_bar(Decimal(delta or 0), largest)}</td>"
        body.append(f"<tr>{cells}</tr>")
    return "\n".join(
        [
            '<section id="categories">',
            f"<h2>{heading} ({grouped(len(rows))})</h2>",
            '<div class="scroll"><table class="sortable" id="category-table">',
            "<caption>Δ is actual minus expected: negative (red, bar to the left) where the "
            "store has less than expected, positive (blue, bar to the right) where it has more."
            '<span class="sort-hint" hidden> Click a heading to sort.</span></caption>',
            f"<thead><tr>{head}</tr></thead>",
            "<tbody>",
            *body,
            "</tbody></table></div>",
            "</section>",
        ]
    )


EVENT_TABLES = (
    ("missing", "In the source, not in the store (missing)", ("id", "category", "value", "line")),
    (
        "extra",
        "In the store, not in the source (extra)",
        ("id", "category", "value", "source", "line"),
    ),
    (
        "duplicated",
        "Recorded again in the store (duplicated: counted twice)",
        ("id", "category", "value", "notification_id", "line"),
    ),
)
NUMERIC_KEYS = {"value", "line", "notification_id"}


def event_sections(doc: dict[str, Any]) -> list[str]:
    if "missing" not in doc:
        return []
    sections = []
    many = len(doc.get("sources", ())) > 1  # then a missing event names its file
    for kind, title, keys in EVENT_TABLES:
        if kind == "missing" and many:
            keys = ("id", "category", "value", "source", "line")
        count: int = doc[f"{kind}_events"]
        if count:
            rows = [[(str(row[k]), k in NUMERIC_KEYS) for k in keys] for row in doc[kind]]
            sections.append(event_table(kind, title, count, keys, rows))
    if doc["conflicting_events"]:
        says = ("id", "source says", "store says")
        rows = [
            [
                (str(row["id"]), False),
                (_says(row["source"], many), False),
                (_says(row["store"], True), False),  # its file: any the store recorded
            ]
            for row in doc["conflicting"]
        ]
        title = "Same id, different content (conflicting)"
        sections.append(event_table("conflicting", title, doc["conflicting_events"], says, rows))
    return sections


def _says(side: dict[str, Any], named: bool = False) -> str:
    where = f"  {side['source']}" if named else ""
    return f"{side['category']}  {grouped(side['value'])}{where}  line {grouped(side['line'])}"


def event_table(
    kind: str, title: str, count: int, keys: Sequence[str], rows: list[list[tuple[str, bool]]]
) -> str:
    shown = f"first {grouped(len(rows))} of {grouped(count)} shown" if count > len(rows) else ""
    numeric_columns = [numeric for _, numeric in rows[0]] if rows else [False] * len(keys)
    head = "".join(
        f'<th scope="col"{" class=r" if numeric else ""}>{escape(k)}</th>'
        for k, numeric in zip(keys, numeric_columns, strict=True)
    )
    fractions = [
        _fraction_width(v for v, numeric in column if numeric and _DECIMAL.match(v))
        for column in zip(*rows, strict=True)
    ]
    body = "\n".join(
        "<tr>"
        + "".join(
            _event_cell(v, fraction) if numeric else f'<td class="text">{escape(v)}</td>'
            for (v, numeric), fraction in zip(row, fractions, strict=True)
        )
        + "</tr>"
        for row in rows
    )
    caption = f"<caption>{escape(shown)}</caption>" if shown else ""
    return "\n".join(
        [
            f'<section id="{kind}">',
            f"<h2>{escape(title)}: {grouped(count)}</h2>",
            f'<div class="scroll"><table id="{kind}-table">{caption}',
            f"<thead><tr>{head}</tr></thead>",
            f"<tbody>{body}</tbody></table></div>",
            "</section>",
        ]
    )


def _event_cell(value: str, fraction_width: int) -> str:
    """A figure of an event table: grouped and aligned on the point as the category
    table's (``-`` when there is none)."""
    if _DECIMAL.match(value):
        return _number(value, fraction_width)
    return f'<td class="num">{escape("-" if value == "None" else value)}</td>'


def next_section(report: VerifyReport, context: ReportContext, notes: Sequence[Step] = ()) -> str:
    """What to run next: the commands ``report`` suggests, then ``notes`` (what is left
    and how to decide it); by default, what the terminal says of conflicting events."""
    steps = next_steps(report, context.store_options, context.program, context.asked)
    notes = notes or conflict_steps(report)
    items = "".join(
        f"<li><pre><code>{escape(command)}</code></pre>{escape(what)}</li>"
        for command, what in steps
    )
    content = f"<ul>{items}</ul>" if items else ""
    content += "".join(
        f'<p class="step">{escape(before)}'
        + (f"<code>{escape(command)}</code>" if command else "")
        + f"{escape(after)}</p>"
        for before, command, after in notes
    )
    if not content:
        content = (
            "<p>Nothing: the totals are proven.</p>"
            if report.matches
            else "<p>No command to suggest: the tables above show what differs.</p>"
        )
    return f'<section id="next"><h2>What to run next</h2>{content}</section>'
