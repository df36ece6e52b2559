"""Narrow output never divides a run of digits: snapshot paths, ids and ``line N`` at 60,
80 and 120 columns; titles use the screen's width; the HTML report shows the source as
``--json`` does and groups and aligns the figures of its event tables."""

from __future__ import annotations

import io
import json
import re
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from htmlparse import parse
from rich.console import Console
from rich.text import Text

from eventfold.cli import main
from eventfold.reports.fold import Folded, fold, glued
from eventfold.reports.layout import Col, FigureTable
from eventfold.reports.text import grouped

WIDTHS = (60, 80, 120)
LONG = "a category with a rather long name that has to fold"
ROWS = [
    {
        "id": f"evt-{i:09d}",
        "category": LONG if i % 3 == 1 and i < 1000 else ["food", "rent"][i % 2],
        "value": f"{9000 + i}.{i % 90 + 10}",
    }
    for i in range(1, 1101)
]
EXTRA = [{"id": f"payment-2026-{17000 + i:012d}", "category": "food", "value": "1417.68"}
         for i in range(3)]  # fmt: skip
MISSING = range(1000, 1040)  # indexes of rows the store never saw: lines 1,001..1,040
CHANGED = (200, 500, 800)  # rows the store saw with other content: lines 201, 501, 801


def write(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps({**row, "value": 0})[:-2] + row["value"] + "}\n")
    return path


@pytest.fixture
def store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A store that missed 40 events of ``archive.jsonl``, saw 3 with other content and
    3 of another source (extra); with snapshots of its projection."""
    write(tmp_path / "archive.jsonl", ROWS)
    feed = [
        {**row, "category": "other", "value": "1.5"} if i in CHANGED else row
        for i, row in enumerate(ROWS)
        if i not in MISSING
    ]
    store = tmp_path / "store"
    assert main(["ingest", str(write(tmp_path / "feed.jsonl", feed)), "--store", str(store)]) == 0
    other = write(tmp_path / "another-source-of-events.jsonl", EXTRA)
    assert main(["ingest", str(other), "--store", str(store)]) == 0
    assert main(["catchup", "--store", str(store)]) == 0
    capsys.readouterr()
    return store


def output(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, width: int, *args: str
) -> str:
    monkeypatch.setenv("COLUMNS", str(width))
    main(list(args))
    return capsys.readouterr().out


def json_of(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    main([*args, "--json"])
    return json.loads(capsys.readouterr().out)


def assert_digits_whole(out: str, path: str) -> None:
    """The file name of ``path`` is whole, and so is each of its runs of digits."""
    name = Path(path).name
    assert name in out, f"{name!r} is divided in:\n{out}"
    for run in re.findall(r"\d{4,}", path):
        assert re.search(rf"(?<!\d){run}(?!\d)", out), f"{run!r} is divided in:\n{out}"


@pytest.mark.parametrize("width", WIDTHS)
def test_snapshot_file_names_never_split_inside_a_number(
    width: int,
    store: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    snapshots = json_of(capsys, "snapshots", "--store", str(store))["snapshots"]
    assert snapshots
    listed = output(capsys, monkeypatch, width, "snapshots", "--store", str(store))
    checked = output(capsys, monkeypatch, width, "check", "--store", str(store))
    for snapshot in snapshots:
        assert_digits_whole(listed, snapshot["path"])
        assert_digits_whole(checked, snapshot["path"])
        # a path folds only after a separator: put back together, it is whole
        assert snapshot["path"] in re.sub(r"(?<=[/\-_.])\n", "", listed), listed


@pytest.mark.parametrize("width", WIDTHS)
def test_ids_and_line_numbers_of_events_stay_whole(
    width: int,
    store: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    args = ["verify", "--store", str(store), "--source", str(store.parent / "archive.jsonl")]
    doc = json_of(capsys, *args)
    assert doc["missing_events"] == 40 and doc["conflicting_events"] == doc["extra_events"] == 3
    out = output(capsys, monkeypatch, width, *args)
    for event in doc["missing"] + doc["extra"]:
        assert grouped(event["value"]) in out and grouped(event["line"]) in out
        for run in re.findall(r"\d+", event["id"]):  # an id may fold, but not in a number
            assert re.search(rf"(?<!\d){run}(?!\d)", out), f"{event['id']} divided in:\n{out}"
    assert all(event["id"] in out for event in doc["missing"])
    for event in doc["conflicting"]:
        assert event["id"] in out, out
        for side in ("source", "store"):
            assert f"line {grouped(event[side]['line'])}" in out, out
            assert grouped(event[side]["value"]) in out
    assert "\xa0" not in out
    # a title takes the screen's width, not its table's (which is narrower at 120)
    for title in (
        "in the source, not in the store (missing): 40",
        "in the store, not in the source (extra): 3",
        "same id, different content (conflicting): 3",
    ):
        assert re.search(rf"^{re.escape(title)} *$", out, re.MULTILINE), out


@pytest.mark.parametrize("width", [12, 20, 30, 60])
def test_fold_breaks_at_separators_and_never_inside_a_number(width: int) -> None:
    path = "/tmp/store/projections/category_totals/gen-00000001/snap-000000028833.json"
    said = Text("food  9,687.52  " + glued("line", "1,201"))
    for text in (Text(path), said):
        lines = [line.plain for line in fold(text, width)]
        assert "".join(lines).replace(" ", "") == text.plain.replace(" ", "").replace("\xa0", "")
        for line, after in pairwise(lines):  # no number divided
            assert not (line[-1].isdigit() and after[0].isdigit()), lines
            assert not (line[-1] in ",." and after[0].isdigit()), lines
    pieces = [line.plain for line in fold(Text(path), 30)]
    assert pieces == [
        "/tmp/store/projections/",
        "category_totals/gen-00000001/",
        "snap-000000028833.json",
    ]
    assert [line.plain for line in fold(said, 16)] == ["food  9,687.52", "line 1,201"]


def test_a_caption_wider_than_its_table_is_not_wrapped_to_the_table() -> None:
    table = FigureTable(
        [Col("id", "key"), Col("n")],
        [["a", "1"]],
        title="in the source, not in the store (missing): 12,345",
        caption="first 1 of 12,345 shown (--limit 0 for all)",
    )
    console = Console(file=io.StringIO(), width=120, highlight=False)
    console.print(table)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert "in the source, not in the store (missing): 12,345\n" in out, out
    assert "first 1 of 12,345 shown (--limit 0 for all)\n" in out, out
    console = Console(file=io.StringIO(), width=20, highlight=False)
    console.print(Folded(Text("in the source, not in the store (missing): 12,345")))
    assert "12,345" in console.file.getvalue()  # type: ignore[attr-defined]


def test_the_html_report_shows_the_absolute_source_and_grouped_aligned_events(
    store: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(store.parent)
    args = ["verify", "--store", "store", "--source", "archive.jsonl"]
    doc = json_of(capsys, *args)
    assert main([*args, "--html", "report.html"]) == 1
    text = (store.parent / "report.html").read_text(encoding="utf-8")
    page = parse(text)
    assert doc["source"] == str(store.parent / "archive.jsonl")
    assert f"source {doc['source']}" in page.visible, page.visible
    missing = page.tables["missing-table"][1:]
    assert missing == [
        [e["id"], e["category"], grouped(e["value"]), grouped(e["line"])] for e in doc["missing"]
    ]
    values = [row[2] for row in page.cells["missing-table"][1:]]
    assert [v["data-value"] for v in values] == [e["value"] for e in doc["missing"]]
    start = text.index('id="missing-table"')
    section = text[start : text.index("</table>", start)]
    pads = re.findall(r'<span class="frac" style="min-width:(\d+)ch">', section)
    assert len(pads) == 2 * len(missing)  # value and line, each aligned on the point
    assert set(pads[0::2]) == {"3"} and set(pads[1::2]) == {"0"}
    conflicting = page.tables["conflicting-table"][1:]
    assert [row[1] for row in conflicting] == [
        f"{e['source']['category']} {grouped(e['source']['value'])} "
        f"line {grouped(e['source']['line'])}"
        for e in doc["conflicting"]
    ]


def test_a_summary_folds_between_words_before_it_folds_a_path() -> None:
    """A command to paste in a summary keeps its paths whole when the line can fold
    between words; a path wider than the screen folds after a ``/``, never in a number."""
    from rich.console import Console
    from rich.text import Text

    from eventfold.reports.layout import Summary

    path = "/data/projections/category_totals/gen-00000007/snap-000000028833.json"
    line = Text(f"next: inspect them with eventfold verify --source {path} --store /data")
    for width, whole in ((80, True), (40, False)):
        console = Console(file=io.StringIO(), width=width, color_system=None)
        console.print(Summary([line], title="reconcile"), crop=False)
        shown = console.file.getvalue()  # type: ignore[attr-defined]
        assert (path in shown) is whole, shown
        assert "000000028833" in shown and "00000007" in shown, shown
