"""`verify --html` and `--svg`: the report page read with the standard library's parser,
the SVG's box lines, and a report file that cannot be written."""

from __future__ import annotations

import html
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from htmlparse import Page, parse

from clihelpers import run, write_rows
from eventfold.reports.html import BAR_WIDTH

HOSTILE = "<script>alert(1)</script>"
BIG = "12345678901234567890.123456789"  # more digits than a float holds


ROWS = [(i, ["rent", "food", HOSTILE][i % 3], f"{i}.25") for i in range(60)] + [
    ("big", "huge", BIG)
]


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    return write_rows(tmp_path / "archive.jsonl", ROWS)


@pytest.fixture
def store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A store that missed events 20..29 and the big one, holds one extra event, and
    recorded event 4 with another value (a conflict)."""
    changed = [(4, "food", "99")]
    feed = [*ROWS[:4], *changed, *ROWS[5:20], *ROWS[30:60], ("x1", "food", "-3.5")]
    write_rows(tmp_path / "feed.jsonl", feed)
    ingest = ("ingest", str(tmp_path / "feed.jsonl"), "--store", str(tmp_path / "store"))
    assert run(capsys, *ingest)[0] == 0
    return tmp_path / "store"


def verify_html(
    capsys: pytest.CaptureFixture[str], store: Path, archive: Path, *extra: str
) -> tuple[int, str, Page, dict[str, Any]]:
    page = store.parent / "report.html"
    args = ("verify", "--store", str(store), "--source", str(archive))
    code, _, _ = run(capsys, *args, "--html", str(page), *extra)
    doc = json.loads(run(capsys, *args, "--json")[1])
    text = page.read_text(encoding="utf-8")
    return code, text, parse(text), doc


def test_the_page_opens_with_title_and_verdict_then_says_when_where_and_what(
    store: Path, archive: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, text, page, doc = verify_html(capsys, store, archive)
    assert code == 1
    assert page.title == "eventfold verify: MISMATCH (category_totals)"
    verdict = page.texts["verdict"]
    assert verdict.startswith("MISMATCH")
    assert doc["expected_checksum"] in verdict and doc["actual_checksum"] in verdict
    assert page.visible.index("MISMATCH") < page.visible.index("Differing categories")
    made = re.search(r"made \(UTC\) (\S+)", page.visible)
    assert made and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", made.group(1))
    assert f"store file:{store}" in page.visible and "backend file" in page.visible
    assert f"source {archive}" in page.visible
    assert "category_totals at position" in page.visible
    assert text.lstrip().startswith("<!DOCTYPE html>")


def test_differing_categories_are_a_table_with_exact_figures_and_signed_bars(
    store: Path, archive: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, page, doc = verify_html(capsys, store, archive)
    rows = page.tables["category-table"]
    header, body = rows[0], rows[1:]
    assert header[:8] == [
        "category",
        "status",
        "expected count",
        "expected total",
        "actual count",
        "actual total",
        "Δ count",
        "Δ total",
    ]
    assert sorted(r[0] for r in body) == sorted(d["category"] for d in doc["differences"])
    by_name = {r[0]: r for r in body}
    huge = by_name["huge"]
    assert huge[1:8] == [
        "MISSING",
        "1",
        "12,345,678,901,234,567,890.123456789",
        "-",
        "-",
        "-1",
        "-12,345,678,901,234,567,890.123456789",
    ]
    for d in doc["differences"]:
        row = by_name[d["category"]]
        assert row[7].replace(",", "") == (
            d["delta"]["total"]
            if d["delta"]["total"].startswith("-")
            else "+" + d["delta"]["total"]
        )
    attributes = page.cells["category-table"][1:]
    widths = {}
    for row, attrs in zip(body, attributes, strict=True):
        delta_cell = attrs[7]
        assert delta_cell["data-value"] == next(
            d["delta"]["total"] for d in doc["differences"] if d["category"] == row[0]
        )
        sign = "neg" if delta_cell["data-value"].startswith("-") else "pos"
        assert sign in delta_cell["class"].split()
        widths[row[0]] = delta_cell["data-value"]
    bars = re.findall(
        r'<rect class="(neg|pos)" x="[\d.]+" y="2" width="([\d.]+)"', page_text(store)
    )
    assert len(bars) == len(body)
    largest = max(abs(Decimal(v)) for v in widths.values())
    half = BAR_WIDTH // 2
    for (side, width), value in zip(bars, widths.values(), strict=True):
        assert side == ("neg" if value.startswith("-") else "pos")
        expected = max(Decimal(1), (abs(Decimal(value)) * half / largest).quantize(Decimal("0.1")))
        assert Decimal(width) == expected


def page_text(store: Path) -> str:
    return (store.parent / "report.html").read_text(encoding="utf-8")


def test_event_tables_list_missing_and_extra_events(
    store: Path, archive: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, page, doc = verify_html(capsys, store, archive)
    missing = page.tables["missing-table"]
    assert missing[0] == ["id", "category", "value", "line"]
    assert [r[0] for r in missing[1:]] == [str(m["id"]) for m in doc["missing"]]
    assert ["big", "huge", "12,345,678,901,234,567,890.123456789", "61"] in missing
    assert page.tables["extra-table"][1][:3] == ["x1", "food", "-3.5"]
    stored = f"food 99 {store.parent / 'feed.jsonl'} line 5"  # the store side names its file
    assert page.tables["conflicting-table"][1:] == [["4", "food 4.25 line 5", stored]]
    assert f"In the source, not in the store (missing): {doc['missing_events']}" in page.visible
    assert "reconcile" in page.texts["next"] and str(archive) in page.texts["next"]


def test_untrusted_text_is_escaped_and_the_page_needs_no_network(
    store: Path, archive: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, text, page, _ = verify_html(capsys, store, archive)
    assert [tag for tag, _ in page.tags].count("script") == 1  # ours, inline
    assert HOSTILE in [r[0] for r in page.tables["category-table"]]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    for tag, attrs in page.tags:
        for key in ("src", "href"):
            assert not attrs.get(key, "").lower().startswith(("http:", "https:", "//")), tag
        assert tag not in ("link", "iframe", "img", "object")
    assert not re.search(r"url\(|@import", text)


def test_a_match_and_a_checksum_only_mismatch(
    tmp_path: Path, archive: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "full"
    assert run(capsys, "ingest", str(archive), "--store", str(store))[0] == 0
    code, _, page, doc = verify_html(capsys, store, archive)
    assert code == 0 and page.title == "eventfold verify: MATCH (category_totals)"
    assert page.texts["verdict"].startswith("MATCH") and doc["actual_checksum"] in page.visible
    assert "category-table" not in page.tables and "every category matches" in page.visible
    html = tmp_path / "checksum.html"
    code, _, _ = run(
        capsys,
        "verify",
        "--store",
        str(store),
        "--expected-checksum",
        "0" * 64,
        "--html",
        str(html),
    )
    page = parse(html.read_text(encoding="utf-8"))
    assert code == 1 and page.texts["verdict"].startswith("MISMATCH the checksum differs")
    assert "0" * 64 in page.texts["verdict"]


def test_all_lists_matching_categories_too(
    store: Path, archive: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, page, doc = verify_html(capsys, store, archive, "--all")
    statuses = [r[1] for r in page.tables["category-table"][1:]]
    assert len(statuses) == doc["categories_compared"]


@pytest.mark.parametrize("option", ["--html", "--svg"])
def test_a_report_that_cannot_be_written_fails_after_the_verdict(
    store: Path, archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str
) -> None:
    target = tmp_path / "no such directory" / "report.out"
    args = ("verify", "--store", str(store), "--source", str(archive))
    code, out, err = run(capsys, *args, option, str(target))
    assert code == 2
    assert "MISMATCH" in out and "differing categories" in out  # the report, as usual
    assert err.count("\n") == 1 and str(target) in err and "Traceback" not in err
    assert err.startswith(f"eventfold: write failed: {target}: cannot write the ")
    code, out, err = run(capsys, *args, option, str(target), "--json")
    assert code == 2 and json.loads(out)["status"] == "mismatch" and str(target) in err


def vertical_segments(svg: str) -> dict[float, list[tuple[float, float]]]:
    """The drawn vertical lines of an SVG, by x."""
    found: dict[float, list[tuple[float, float]]] = {}
    for x1, y1, x2, y2 in re.findall(
        r'<line x1="([\d.]+)" y1="([\d.]+)" x2="([\d.]+)" y2="([\d.]+)"', svg
    ):
        if x1 == x2:
            found.setdefault(float(x1), []).append(tuple(sorted((float(y1), float(y2)))))  # type: ignore[arg-type]
    return found


def test_svg_vertical_rules_are_drawn_joined_between_rows(
    store: Path, archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Box-drawing glyphs are shorter than Rich's line height (gaps between rows in a
    browser): the SVG draws them as lines that overlap from row to row."""
    svg = tmp_path / "report.svg"
    code, _, _ = run(
        capsys, "verify", "--store", str(store), "--source", str(archive), "--svg", str(svg)
    )
    assert code == 1
    text = svg.read_text(encoding="utf-8")
    glyphs = "".join(re.findall(r"<text[^>]*>([^<]*)</text>", text))
    assert not set(glyphs) & set("│┃┏┓┗┛┡┩╇┳┻╭╮╰╯─━")
    assert "differing" in glyphs and "MISMATCH" in glyphs
    columns = vertical_segments(text)
    runs: list[list[float]] = []  # joined stretches of the left-most vertical rule
    for start, end in sorted(columns[min(columns)]):
        if runs and start <= runs[-1][1]:
            runs[-1][1] = max(runs[-1][1], end)
        else:
            runs.append([start, end])
    # the differing categories' table: top, header, rule, 4 categories, bottom (24.4 px each)
    first = runs[0][1] - runs[0][0]
    assert first >= 7 * 24.4, f"the table's left rule is broken: {runs[:3]}"


def test_reconcile_html_shows_the_final_verdict_and_what_it_replayed(
    store: Path, archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = tmp_path / "plan.html"
    args = ("reconcile", str(archive), "--store", str(store))
    assert run(capsys, *args, "--dry-run", "--html", str(plan))[0] == 1
    page = parse(plan.read_text(encoding="utf-8"))
    assert page.title == "eventfold reconcile: MISMATCH (category_totals)"
    assert page.texts["verdict"].startswith("MISMATCH")
    assert "dry run: would replay 11 events; nothing written" in page.visible
    assert [r[0] for r in page.tables["plan-table"][1:]] == [str(i) for i in range(20, 30)] + [
        "big"
    ]
    assert page.tables["gaps-table"][1:] == [["21", "30", "10"], ["61", "61", "1"]]
    after = tmp_path / "after.html"
    code, _, _ = run(capsys, *args, "--html", str(after))
    page = parse(after.read_text(encoding="utf-8"))
    assert code == 1  # the extra event stays: reconcile only adds
    assert "replayed 11" in page.visible and "after MISMATCH" in page.visible
    assert page.tables["extra-table"][1][:3] == ["x1", "food", "-3.5"]
    assert "missing-table" not in page.tables
    code, out, err = run(capsys, *args, "--html", str(tmp_path / "none" / "r.html"))
    assert code == 2 and "reconcile" in out and err.count("\n") == 1 and "r.html" in err


def test_the_page_suggests_what_the_terminal_report_suggests(
    store: Path, archive: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # no wrapping inside the terminal's panel
    _, text, _, _ = verify_html(capsys, store, archive)
    suggested = re.findall(r"<li><pre><code>(.*?)</code></pre>(.*?)</li>", text)
    assert suggested
    _, out, _ = run(capsys, "verify", "--store", str(store), "--source", str(archive))
    for command, what in suggested:
        assert f"{html.unescape(command)} {html.unescape(what)}" in out
