"""The section of the HTML page of ``verify`` on totals resting on reconstructions."""

from __future__ import annotations

from html import escape

from eventfold.application.proving.verify import VerifyReport
from eventfold.reports.text import grouped, plural, signed


def resting_section(report: VerifyReport) -> str:
    """Each standing reconstruction's part in the rows compared: the summary, and what
    the sources hold in its period (with sources); empty when no total rests on one."""
    docs = report.to_json()["reconstructions"]
    if not docs:
        return ""
    with_sources = any(row["source_count"] is not None for d in docs for row in d["rows"])
    columns = ["reconstruction", "category", "summary count", "summary total"]
    if with_sources:
        columns += ["sources count", "sources total", "Δ total"]
    head = "".join(f'<th scope="col">{escape(c)}</th>' for c in columns)
    rows = []
    for d in docs:
        for row in d["rows"]:
            figures = [grouped(row["count"]), grouped(row["total"])]
            if with_sources:
                figures += [
                    "-" if row["source_count"] is None else grouped(row["source_count"]),
                    "-" if row["source_total"] is None else grouped(row["source_total"]),
                    "-" if row["difference"] is None else signed(row["difference"]),
                ]
            cells = "".join(f'<td class="num">{escape(f)}</td>' for f in figures)
            rows.append(
                f'<tr><td class="text">{escape(d["id"])}</td>'
                f'<td class="text">{escape(row["category"])}</td>{cells}</tr>'
            )
    periods = "; ".join(
        f"{d['id']}: {d['start']}/{d['end']}, summary {d['summary']['path']} (sha256 "
        f"{d['summary']['sha256']}), {grouped(d['count'])} events, total "
        f"{grouped(d['total'])}"
        for d in docs
    )
    resting = len(report.resting_rows)
    return "\n".join(
        [
            '<section id="reconstructions">',
            "<h2>Totals resting on reconstructions</h2>",
            f"<p>{escape(plural(resting, 'total'))} rest in part on a summary that stands for "
            "the lost raw events of a period: that part is not proven from raw events. "
            f"{escape(periods)}.</p>",
            '<div class="scroll"><table id="reconstruction-table">',
            f"<thead><tr>{head}</tr></thead>",
            "<tbody>",
            *rows,
            "</tbody></table></div>",
            "</section>",
        ]
    )


def rests_on(report: VerifyReport) -> dict[tuple[str, ...], str]:
    """The rows whose actual value rests in part on reconstructions: their ids, joined."""
    return {key: ", ".join(ids) for key, ids in report.resting_rows.items()}
