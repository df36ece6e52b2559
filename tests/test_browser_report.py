"""The HTML report in a real headless browser: what a person sees, on screen and on paper."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from browser import dom_after_scripts, pdf_text, pdf_title, print_to_pdf, require_browser
from htmlparse import parse

from clihelpers import write_rows
from eventfold.cli import main

CATEGORIES = ["rent", "food", "<script>alert(1)</script>", "Überweisung"]
ROWS = [(i, CATEGORIES[i % 4], f"{1000 + i}.{i % 100:02d}") for i in range(80)]
BIG = [(200, "big-a", "9007199254740993.1"), (201, "big-b", "9007199254740993.2")]  # floats: equal


@pytest.fixture
def browser() -> str:
    return require_browser()


@pytest.fixture
def report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, dict[str, object]]:
    """The HTML report of a store that missed events 20..39 and the big ones, and its
    --json document."""
    archive = write_rows(tmp_path / "archive.jsonl", ROWS + BIG)
    feed = write_rows(tmp_path / "feed.jsonl", ROWS[:20] + ROWS[40:])
    store = str(tmp_path / "store")
    assert main(["ingest", str(feed), "--store", store]) == 0
    page = tmp_path / "report.html"
    verify = ["verify", "--store", store, "--source", str(archive)]
    assert main([*verify, "--html", str(page)]) == 1
    capsys.readouterr()
    assert main([*verify, "--json"]) == 1
    return page, json.loads(capsys.readouterr().out)


def test_a_person_sees_the_title_verdict_and_each_differing_categorys_figures(
    browser: str, report: tuple[Path, dict[str, object]], tmp_path: Path
) -> None:
    page, doc = report
    pdf = print_to_pdf(browser, page, tmp_path)
    assert pdf_title(pdf) == "eventfold verify: MISMATCH (category_totals)"
    printed = pdf_text(pdf)
    lines = printed.splitlines()
    assert "MISMATCH" in printed.split("Differing categories")[0]
    for checksum in (doc["expected_checksum"], doc["actual_checksum"]):
        assert isinstance(checksum, str) and checksum in printed  # whole, on one line
    differences = doc["differences"]
    assert isinstance(differences, list) and len(differences) == 6
    for d in differences:
        expected, actual, delta = d["expected"], d["actual"], d["delta"]
        figures = [
            d["status"].upper(),
            f"{expected['count']:,}",
            grouped(expected["total"]),
            "-" if actual is None else f"{actual['count']:,}",
            "-" if actual is None else grouped(actual["total"]),
            f"{delta['count']:+,}",
            grouped(delta["total"]),
        ]
        row = next((line for line in lines if all(f in line.split() for f in figures)), None)
        assert row is not None, (figures, printed)
        assert row.split()[-1] == figures[-1], row  # the Δ total, with its sign, not cut
    assert "<script>alert(1)</script>" in printed  # shown as text, not run


def grouped(decimal: str) -> str:
    """``decimal`` with its integer digits grouped, sign kept (+ for a positive delta)."""
    sign = "-" if decimal.startswith("-") else ""
    whole, dot, fraction = decimal.removeprefix("-").partition(".")
    return f"{sign}{int(whole):,}{dot}{fraction}"


def test_the_table_sorts_in_the_browser_exactly(
    browser: str, report: tuple[Path, dict[str, object]], tmp_path: Path
) -> None:
    """Clicking "Δ total" sorts the rows by the exact decimal (two figures a float cannot
    tell apart among them)."""
    page, doc = report
    clicked = tmp_path / "clicked.html"
    click = (
        "<script>var b = document.querySelectorAll('#category-table th button')[7];"
        "b.click();</script>"
    )
    clicked.write_text(page.read_text(encoding="utf-8").replace("</body>", click + "</body>"))
    dom_text = dom_after_scripts(browser, clicked, tmp_path)
    rows = parse(dom_text).tables["category-table"][1:]
    differences = doc["differences"]
    assert isinstance(differences, list)
    ascending = sorted(differences, key=lambda d: Decimal(d["delta"]["total"]))
    assert [r[0] for r in rows] == [d["category"] for d in ascending]
    assert rows[0][0] == "big-b"  # -9007199254740993.2 < -9007199254740993.1, exactly
    assert 'aria-sort="ascending"' in dom_text


def test_every_printed_page_repeats_the_whole_heading_row(
    browser: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Sixty differing categories fill more than one page: each page's table starts with
    every heading (the sort buttons the script puts in them must not hide them on paper)."""
    rows = [(i, f"cat-{i % 60:02d}", f"{i}.5") for i in range(120)]
    source = write_rows(tmp_path / "all.jsonl", rows)
    half = write_rows(tmp_path / "half.jsonl", rows[::2])
    store = str(tmp_path / "store")
    assert main(["ingest", str(half), "--store", store]) == 0
    page = tmp_path / "long.html"
    assert main(["verify", "--store", store, "--source", str(source), "--html", str(page)]) == 1
    capsys.readouterr()
    pages = pdf_text(print_to_pdf(browser, page, tmp_path)).split("\f")
    with_rows = [p for p in pages if "MISSING" in p]
    assert len(with_rows) >= 2, pages
    for printed in with_rows:
        table = printed[printed.index("category") :] if "Differing" in printed else printed
        head = table.split("MISSING")[0].split()
        for word in ("category", "status", "expected", "actual", "count", "total", "(bar)"):
            assert word in head, (word, printed[:400])
