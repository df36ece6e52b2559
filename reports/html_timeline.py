"""The timeline section of the HTML page of ``verify --by hour|day``."""

from __future__ import annotations

from decimal import Decimal
from html import escape

from eventfold.application.proving.timeline import Timeline
from eventfold.projections.base import canonical_decimal
from eventfold.reports.text import grouped, plural
from eventfold.reports.timeline import label, origin_lines

COLUMNS = ("expected count", "expected total", "actual count", "actual total", "Δ count", "Δ total")


def timeline_section(timeline: Timeline | None) -> str:
    """A row per bucket (both sides' count and exact total, the deltas, a bar of the
    actual count against the expected one), then where the bad buckets' events are."""
    if timeline is None:
        return ""
    largest = max((max(b.expected[0], b.actual[0]) for b in timeline.buckets), default=0)
    head = f'<th scope="col">{escape(timeline.by)} (UTC)</th><th scope="col">status</th>'
    head += "".join(f'<th scope="col" class="r">{escape(c)}</th>' for c in COLUMNS)
    head += '<th scope="col">actual against expected</th>'
    rows = []
    for b in timeline.buckets:
        count, total = b.delta
        status = "changed" if b.bad else "match"
        figures = (
            grouped(b.expected[0]) if timeline.counts else "-",
            grouped(canonical_decimal(b.expected[1])),
            grouped(b.actual[0]),
            grouped(canonical_decimal(b.actual[1])),
            f"{count:+,}" if timeline.counts and count else ("0" if timeline.counts else "-"),
            _signed(total),
        )
        cells = "".join(f'<td class="num">{escape(f)}</td>' for f in figures)
        rows.append(
            f'<tr><td class="text">{escape(label(b.start))}</td>'
            f'<td class="status {status}">{status.upper()}</td>{cells}'
            f"<td>{_bar(b.expected[0], b.actual[0], largest)}</td></tr>"
        )
    bad = [b for b in timeline.bad if b.start != "none"]
    summary = f"{plural(len(timeline.bad), 'bucket')} of {len(timeline.buckets):,} differ"
    if bad:
        summary += f": first {label(bad[0].start)}, last {label(bad[-1].start)}"
    origins = [line for b in timeline.bad for line in origin_lines(b)]
    listed = "".join(f"<li>{escape(line)}</li>" for line in origins)
    return "\n".join(
        [
            '<section id="timeline">',
            f"<h2>By {escape(timeline.by)}</h2>",
            f"<p>{escape(summary)}</p>",
            '<div class="scroll"><table id="timeline-table">',
            f"<thead><tr>{head}</tr></thead>",
            "<tbody>",
            *rows,
            "</tbody></table></div>",
            f"<ul>{listed}</ul>" if listed else "",
            "</section>",
        ]
    )


def _signed(value: Decimal) -> str:
    text = grouped(canonical_decimal(value))
    return text if text.startswith("-") or text == "0" else f"+{text}"


def _bar(expected: int, actual: int, largest: int) -> str:
    """Both sides' counts on one scale: shared (green), missing (red), extra (blue)."""
    width = 160
    if not largest:
        return ""
    both = min(expected, actual)
    parts = [("both", both), ("neg", expected - both), ("pos", actual - both)]
    x, rects = Decimal(0), []
    for css, n in parts:
        if not n:
            continue
        length = max(Decimal(1), (Decimal(n) * width / largest).quantize(Decimal("0.1")))
        rects.append(f'<rect class="{css}" x="{x}" y="2" width="{length}" height="10"/>')
        x += length
    return (
        f'<svg class="bar" width="{width}" height="14" viewBox="0 0 {width} 14" '
        f'role="img" aria-label="expected {expected}, actual {actual}">{"".join(rects)}</svg>'
    )
