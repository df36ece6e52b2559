"""The timeline of ``verify --by hour|day``: a line per bucket, with a bar.

The bar shows each bucket's actual count against the expected one on one
scale: ``█`` for events on both sides, ``░`` for events expected and missing,
``▓`` for events the store has beyond what was expected. It reads without
colour; colour only repeats it. Totals are in ``--json`` and the HTML page.
"""

from __future__ import annotations

from decimal import Decimal

from rich.console import Group, RenderableType
from rich.text import Text

from eventfold.application.proving.timeline import Bucket, Timeline
from eventfold.projections.base import canonical_decimal
from eventfold.reports.layout import Col, FigureTable
from eventfold.reports.text import grouped, plain, plural, signed

BAR = 12  # characters of the longest bar


def render_timeline(timeline: Timeline) -> RenderableType:
    """The table of every bucket, then where the bad buckets' events come from."""
    largest = max((max(b.expected[0], b.actual[0]) for b in timeline.buckets), default=0)
    columns = [
        Col(f"{timeline.by} (UTC)", "key"),
        Col("status", "word"),
        Col("expected"),
        Col("actual"),
        Col("Δ total"),
        Col("bar", "text"),
    ]
    cells: list[list[str | Text]] = []
    for b in timeline.buckets:
        total = b.delta[1]
        cells.append(
            [
                label(b.start),
                Text("CHANGED", style="yellow") if b.bad else Text("MATCH", style="green"),
                grouped(b.expected[0]) if timeline.counts else "-",
                grouped(b.actual[0]),
                signed(_text(total)),
                bar(b, largest),
            ]
        )
    bad = [b for b in timeline.bad if b.start != "none"]
    differ = "differs" if len(timeline.bad) == 1 else "differ"
    buckets = f"{plural(len(timeline.bad), 'bucket')} of {len(timeline.buckets):,}"
    title = f"by {timeline.by}: {buckets} {differ}"
    if bad:
        title += f", first {label(bad[0].start)}, last {label(bad[-1].start)}"
    legend = "counts of events; bar: █ on both sides, ░ expected and missing, ▓ extra"
    parts: list[RenderableType] = [FigureTable(columns, cells, title=title, caption=legend)]
    origins = [line for b in timeline.bad for line in origin_lines(b)]
    if origins:
        parts.append(Group(*(plain(line) for line in origins)))
    untimed = timeline.untimed
    if untimed is not None:
        parts.append(
            plain(
                f"events without a timestamp: {untimed.expected[0]:,} expected, "
                f"{untimed.actual[0]:,} in the store (their own bucket)"
            )
        )
    return Group(*parts)


def label(start: str) -> str:
    """A bucket as the table shows it: ``2026-11-30 13:00``, ``2026-11-30``, ``no timestamp``."""
    if start == "none":
        return "no timestamp"
    return start[:16].replace("T", " ")


def bar(bucket: Bucket, largest: int) -> Text:
    """``█`` both sides, ``░`` expected and missing, ``▓`` beyond expected."""
    if not largest:
        return Text("")
    scale = BAR / largest
    both = min(bucket.expected[0], bucket.actual[0])
    solid = round(both * scale)
    missing = round(bucket.expected[0] * scale) - solid if bucket.expected[0] > both else 0
    extra = round(bucket.actual[0] * scale) - solid if bucket.actual[0] > both else 0
    if bucket.expected[0] > both and not missing:
        missing = 1  # a difference is never drawn as nothing
    if bucket.actual[0] > both and not extra:
        extra = 1
    return Text.assemble(
        ("█" * solid, "green" if not bucket.bad else ""),
        ("░" * missing, "red"),
        ("▓" * extra, "magenta"),
    )


def origin_lines(bucket: Bucket) -> list[str]:
    """Where a bad bucket's missing and extra events are: per file, lines first to last."""
    lines = []
    for kind, spans in (("missing", bucket.missing), ("extra", bucket.extra)):
        for source, span in spans.items():
            where = (
                f"line {span.first_line:,}"
                if span.first_line == span.last_line
                else f"lines {span.first_line:,}-{span.last_line:,}"
            )
            events = plural(span.events, "event")
            lines.append(f"{label(bucket.start)}: {events} {kind}, {source} {where}")
    return lines


def _text(value: Decimal) -> str:
    return canonical_decimal(value)
